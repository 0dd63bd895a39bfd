"""How a measured kernel was timed, as data: the per-call floor belongs to the timing method, not the GPU.

The GPU spec's `launch_overhead_us` is the hardware's launch-to-launch time of back-to-back
kernels. What a measurement adds on top depends on how it was taken:

- `kernel`: a profiler's kernel duration (ncu, nsys, torch.profiler device time). No launch
  gap and no host time: the model is evaluated with `launch_overhead_us = 0`.
- `events_sync`: CUDA events around one framework call, synchronised after each call (the
  sparsim harness, `analysis.measure.harness.time_call`). The start event fires at once on an
  idle GPU, the kernel only after the host has dispatched it, so the host's per-call time
  adds to the kernel: observed = model + per_call.
- `host_sync`: host wall clock around a synchronised call: the same additive form (host
  dispatch plus the synchronisation round trip in `per_call_us`).
- `events_queued`: events around many back-to-back calls, divided by their number (loops,
  `torch.utils.benchmark`): the host runs ahead, so a call costs the larger of its host time
  and its GPU time: observed = max(per_call, model).

`per_call_us` is the host time of one call beyond the GPU's own launch time. The harness
measures it on the machine it runs on (`floor_us`: a one-element add timed the same way; the
per-call time is that floor minus the spec's launch overhead, since the trivial kernel itself
costs about one launch). A set that does not state it gets the method's default
(`DEFAULT_PER_CALL_US`, an estimate: PyTorch eager dispatch of a matmul costs tens of us per
call; the shipped MI210 set's smallest GEMMs take 33-35 us).
"""

from __future__ import annotations

from dataclasses import dataclass

from simulator.errors import SparsimInputError

METHODS = ("kernel", "events_sync", "events_queued", "host_sync")
DEFAULT_PER_CALL_US = {"kernel": 0.0, "events_sync": 25.0, "events_queued": 25.0, "host_sync": 30.0}


@dataclass(frozen=True)
class TimingMethod:
    """A measured set's timing method and the host time per call it adds (None = the method's default)."""
    method: str = "kernel"
    per_call_us: float | None = None
    floor_us: float | None = None         # a measured trivial-call time (harness); per-call = floor - launch

    def __post_init__(self):
        if self.method not in METHODS:
            raise SparsimInputError(f"unknown timing method '{self.method}'", field="timing",
                                    hint="one of " + ", ".join(METHODS))
        for name in ("per_call_us", "floor_us"):
            value = getattr(self, name)
            if value is not None and not value >= 0:
                raise SparsimInputError(f"{name} must be >= 0 (got {value})", field=f"timing.{name}")

    def host_per_call_s(self, launch_overhead_us: float) -> float:
        """Host seconds one timed call adds beyond the GPU's launch time."""
        if self.method == "kernel":
            return 0.0
        if self.per_call_us is not None:
            return self.per_call_us * 1e-6
        if self.floor_us is not None:
            return max(0.0, self.floor_us - launch_overhead_us) * 1e-6
        return DEFAULT_PER_CALL_US[self.method] * 1e-6

    def observed_s(self, model_s: float, kernel_only_s: float, launch_overhead_us: float) -> float:
        """What this method would read for a kernel the model times at `model_s` (launches included)
        and `kernel_only_s` (no launch time)."""
        if self.method == "kernel":
            return kernel_only_s
        host = self.host_per_call_s(launch_overhead_us)
        if self.method == "events_queued":
            return max(host, model_s)
        return model_s + host

    def describe(self, launch_overhead_us: float) -> str:
        if self.method == "kernel":
            return "kernel-only timing (no launch gap, no host time)"
        host = self.host_per_call_s(launch_overhead_us) * 1e6
        origin = ("stated" if self.per_call_us is not None else
                  f"measured floor {self.floor_us:g} us" if self.floor_us is not None else "default")
        form = "max(host, model)" if self.method == "events_queued" else "model + host"
        return f"{self.method}: {form}, host {host:.1f} us per call ({origin})"


def from_mapping(data, where: str = "timing") -> TimingMethod:
    """A `timing:` entry of sets.yaml: a method name, or {method, per_call_us}."""
    if isinstance(data, str):
        return TimingMethod(data)
    if not isinstance(data, dict) or "method" not in data:
        raise SparsimInputError("timing must be a method name or {method, per_call_us}", field=where,
                                hint="methods: " + ", ".join(METHODS))
    unknown = sorted(set(data) - {"method", "per_call_us", "floor_us"})
    if unknown:
        raise SparsimInputError(f"unknown key(s) {', '.join(unknown)}", field=where,
                                hint="known: method, per_call_us, floor_us")
    return TimingMethod(str(data["method"]), data.get("per_call_us"), data.get("floor_us"))


__all__ = ["METHODS", "DEFAULT_PER_CALL_US", "TimingMethod", "from_mapping"]
