"""One training step, data parallel: compute per rank on the SimPy system model, gradient
synchronisation over the interconnect overlapped with backward, memory footprint per device.

What is modelled
- Each of `dp` data-parallel ranks runs the training trace (`simulator.training.build`) on its
  own device or system (`simulator.system.simulate_system`; an arch is a one-core system).
  Ranks are identical, so one is simulated; forward, backward and optimizer times are the
  sums of their ops' simulated times.
- Gradient sync (DDP / ZeRO-1/2 / ZeRO-3, Rajbhandari et al. 2020): only the last micro-batch's
  backward synchronises. Within it, a backward-weight op makes its gradient ready when it ends;
  a block op repeated over L layers is taken as L equal slices (layer i's gradients ready after
  i + 1 slices), which is how the per-layer interleaving of a real backward looks in time. The
  buckets queue on the link (`collectives.overlap_sync`); what runs past the end of backward is
  exposed. ZeRO-0: all-reduce; ZeRO-1/2: reduce-scatter in backward plus an all-gather of the
  updated parameters after the optimizer (exposed); ZeRO-3: no post-optimizer gather, but each
  layer's parameters are all-gathered before its backward (on the link, with the reduce-scatter
  of its gradients) and before its forward (prefetched: exposed only beyond the forward's
  compute), 1.5x the traffic of plain data parallelism, as the ZeRO paper counts it. With ZeRO >= 1
  the optimizer updates 1/dp of the parameters (its time and energy scale by 1/dp).
- MFU (Chowdhery et al. 2022, PaLM, App. B): model FLOPs (2 x MACs of forward and backward,
  recomputation excluded) per second over the device's dense peak FLOP/s for the op precision.
- SM contention: on a GPU, `comm_sms` SMs run the collective kernels (one CTA per NCCL channel)
  while gradient buckets overlap backward, so backward grows by the overlapped seconds x
  comm_sms / SMs (`collectives.sm_contention_s`; reported as `sm_contention_s`).
Approximations: interconnect energy is not counted; the SM contention is first order and leaves
out ZeRO-3's prefetched forward gathers; the optimizer's 1/dp scaling is linear (a streaming pass).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from simulator.engines import load_engine
from simulator.errors import SparsimInputError
from simulator.simulate import simulate
from simulator.spec import Arch
from simulator.system import System, replicate, simulate_system
from simulator.system.jobs import op_cost
from simulator.trace import OperandSparsity
from simulator.training.build import TrainingTrace
from simulator.training.collectives import (COLLECTIVES, allreduce_s, half_collective_s, overlap_sync,
                                           sm_contention_s)
from simulator.training.footprint import (Footprint, TransformerShape, activation_bytes, device_capacity_bytes,
                                          model_state_bytes)


MODEL = ("training step: ops on the SimPy system model per rank; gradient sync alpha-beta (Thakur et al. 2005) "
         "in buckets overlapped with backward; activations Korthikanti et al. 2022; model state ZeRO (Rajbhandari "
         "et al. 2020); overlapped collectives hold comm_sms SMs (first order); vector kernels eager or fused "
         "per the recipe; interconnect energy not counted")


@dataclass(frozen=True)
class DataParallel:
    """Data-parallel ranks and the interconnect their gradients cross."""
    ranks: int = 1
    zero: int = 0
    collective: str = "ring"
    link_bytes_per_s: float | None = None
    latency_s: float = 5e-6
    bucket_bytes: float = 25e6
    overlap: bool = True
    comm_sms: int = 0          # SMs (NCCL channels x 1 CTA) a collective kernel holds on a GPU rank

    def check(self) -> "DataParallel":
        if isinstance(self.ranks, bool) or not isinstance(self.ranks, int) or self.ranks < 1:
            raise SparsimInputError(f"data-parallel ranks must be a positive integer (got {self.ranks!r})", field="--dp")
        if self.zero not in (0, 1, 2, 3):
            raise SparsimInputError(f"unknown ZeRO stage {self.zero}", field="--zero", hint="0, 1, 2 or 3 (3 = FSDP)")
        if self.collective not in COLLECTIVES:
            raise SparsimInputError(f"unknown collective '{self.collective}'", field="--collective",
                                    hint="ring or tree")
        if isinstance(self.comm_sms, bool) or not isinstance(self.comm_sms, int) or self.comm_sms < 0:
            raise SparsimInputError(f"communication SMs must be a non-negative integer (got {self.comm_sms!r})",
                                    field="--comm-sms", hint="the CTAs NCCL runs a collective with, e.g. 24; 0 = none")
        if self.ranks > 1 and not self.link_bytes_per_s:
            raise SparsimInputError("data parallelism needs the interconnect bandwidth", field="--link-gb-s",
                                    hint="give --link-gb-s (per-rank link bandwidth, GB/s), or a system with a noc")
        return self


@dataclass
class TrainResult:
    workload: str
    system: str
    step_s: float
    tokens_per_step: int
    tokens_per_s: float
    tokens_per_s_per_device: float
    mfu: float
    energy_per_step_j: float
    energy_per_token_j: float
    split_s: dict[str, float]
    footprint: Footprint | None
    data_parallel: dict
    rows: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    model: str = MODEL

    def to_dict(self) -> dict:
        return {"workload": self.workload, "system": self.system, "model": self.model, "step_s": self.step_s,
                "tokens_per_step": self.tokens_per_step, "tokens_per_s": self.tokens_per_s,
                "tokens_per_s_per_device": self.tokens_per_s_per_device, "mfu": self.mfu,
                "energy_per_step_j": self.energy_per_step_j, "energy_per_token_j": self.energy_per_token_j,
                "split_s": self.split_s, "data_parallel": self.data_parallel,
                "footprint": self.footprint.to_dict() if self.footprint else None, "notes": self.notes}


def _is_recompute(name: str) -> bool:
    return name.startswith("recompute.") or ".recompute_" in name


def model_flops(tt: TrainingTrace) -> float:
    """2 x MACs of the forward and backward GEMMs, recomputation excluded (per rank, per step)."""
    return 2.0 * sum(op.dense_macs * op.executions for op in tt.trace.ops
                     if op.phase in ("forward", "backward") and not _is_recompute(op.name))


def peak_flops_per_s(arch: Arch, tt: TrainingTrace) -> float:
    """The device's dense peak FLOP/s at the precision of the largest forward GEMM (engine's own peak)."""
    macs = [op for op in tt.trace.ops if op.phase == "forward" and not op.is_vector]
    if not macs:
        return 0.0
    big = max(macs, key=lambda op: op.dense_macs)
    dense = big.model_copy(update={"sparsity": OperandSparsity()})
    cost = load_engine(arch.compute.kind).estimate(dense, arch)
    return 2.0 * cost.peak_macs_per_cycle * arch.clock_hz


def _grad_ready(tt: TrainingTrace, rows: list[dict]) -> tuple[list[tuple[float, float]], float]:
    """(ready time, gradient bytes) in the last micro-batch's backward, and that backward's length."""
    G = tt.recipe.micro_batches
    ops = {op.name: op for op in tt.trace.ops}
    grad_bytes = tt.param_bits / 8.0
    bwd = [(ops[r["op"]], r["latency_s"] / G) for r in rows if ops[r["op"]].phase == "backward"
           and r["op"] != "grad_accumulate"]
    ready, t, i = [], 0.0, 0
    while i < len(bwd):
        op = bwd[i][0]
        j = i
        while j < len(bwd) and bwd[j][0].layer == op.layer and bwd[j][0].repeat == op.repeat:
            j += 1
        seg = bwd[i:j] if op.layer else bwd[i:i + 1]
        j = i + len(seg)
        span = sum(dt for _, dt in seg)
        slices = max(1, op.repeat // G) if op.layer else 1
        nbytes = sum(o.operand_elements()["outputs"] * grad_bytes for o, _ in seg
                     if o.name.split(".")[-1].startswith("bwd_weight") and "bwd_weight_dense" not in o.name)
        if nbytes:
            ready += [(t + (k + 1) * span / slices, nbytes) for k in range(slices)]
        t += span
        i = j
    rest = tt.params * grad_bytes - sum(b for _, b in ready)   # embeddings, norms: ready when backward ends
    if rest > 0:
        ready.append((t, rest))
    if tt.recipe.sparse_state and tt.params:   # only the kept weights' gradients are synchronised
        ready = [(when, b * tt.kept_params / tt.params) for when, b in ready]
    return ready, t


def _sync(tt: TrainingTrace, dp: DataParallel, rows: list[dict], phase_s: dict) -> dict:
    """Seconds of gradient/parameter communication and how much of it is exposed."""
    n, bw, lat = dp.ranks, dp.link_bytes_per_s or 1.0, dp.latency_s
    grad_total = (tt.kept_params if tt.recipe.sparse_state else tt.params) * tt.param_bits / 8.0
    if n <= 1:
        return {"total_s": 0.0, "exposed_s": 0.0, "bytes": 0.0, "overlapped_s": 0.0}
    if dp.zero == 0:
        per = lambda b: allreduce_s(b, n, bw, lat, dp.collective)  # noqa: E731
    elif dp.zero in (1, 2):
        per = lambda b: half_collective_s(b, n, bw, lat)  # noqa: E731 - reduce-scatter
    else:   # ZeRO-3: each layer's parameters are all-gathered on the same link before its backward
        per = lambda b: 2.0 * half_collective_s(b, n, bw, lat)  # noqa: E731
    ready, bwd_s = _grad_ready(tt, rows)
    overlapped = 0.0
    if dp.overlap:
        end, busy = overlap_sync(ready, per, dp.bucket_bytes)
        exposed = max(0.0, end - bwd_s)
        overlapped = max(0.0, busy - exposed)
    else:
        busy = per(grad_total)
        exposed = busy
    extra = 0.0
    if dp.zero in (1, 2):   # all-gather of the updated parameters after the optimizer
        gather = half_collective_s(grad_total, n, bw, lat)
        busy += gather
        extra += gather
    if dp.zero == 3:   # parameters all-gathered before use in every forward, prefetched (hidden up to compute)
        G = tt.recipe.micro_batches
        gather = G * half_collective_s(grad_total, n, bw, lat)
        busy += gather
        extra += max(0.0, gather - phase_s["forward"])
        if G > 1:      # earlier micro-batches' backward gathers, hidden up to their backward compute
            gather = (G - 1) * half_collective_s(grad_total, n, bw, lat)
            busy += gather
            extra += max(0.0, gather - phase_s["backward"] * (G - 1) / G)
    return {"total_s": busy, "exposed_s": exposed + extra, "bytes": grad_total, "overlapped_s": overlapped}


def footprint_for(tt: TrainingTrace, arch: Arch, dp: DataParallel, shape: TransformerShape | None,
                  capacity_bytes: float | None = None) -> Footprint:
    """Per-device memory: model state under ZeRO, stashed activations, attention workspace."""
    density = tt.kept_params / tt.params if tt.params else 1.0
    moments = 4.0 * tt.recipe.moments
    state = model_state_bytes(tt.params, stage=dp.zero, dp=dp.ranks, param_bytes=tt.param_bits / 8.0,
                              grad_bytes=tt.param_bits / 8.0, master_bytes=4.0 if tt.recipe.master_weights else 0.0,
                              moment_bytes=moments, density=density,
                              index_bytes=0.25 if density < 1 else 0.0, sparse_sharded=tt.recipe.sparse_state)
    comps = dict(state)
    if shape is not None:
        acts = activation_bytes(shape, tt.recipe.recompute)
        comps["activations (blocks)"] = acts["blocks"]
        comps["activations (embedding, head, logits)"] = acts["embedding and output layer"]
        # FlashAttention-2 backward keeps an fp32 dQ accumulator for the layer in flight
        comps["attention workspace"] = 4.0 * shape.seq * shape.micro_batch * shape.hidden
    cap = capacity_bytes if capacity_bytes is not None else device_capacity_bytes(arch)
    return Footprint(comps, cap)


def simulate_training(tt: TrainingTrace, target: System | Arch, *, dp: DataParallel | None = None,
                      shape: TransformerShape | None = None, capacity_bytes: float | None = None) -> TrainResult:
    """Simulate one optimizer step of `tt` on every data-parallel rank of `target`."""
    dp = (dp or DataParallel()).check()
    system = target if isinstance(target, System) else replicate(target, 1)
    if dp.link_bytes_per_s is None and system.noc_bytes_per_s:
        dp = dataclasses.replace(dp, link_bytes_per_s=system.noc_bytes_per_s)
    arch = system.cores[0].arch
    run = simulate_system(tt.trace, system)
    analytic = simulate(tt.trace, arch, estimate=op_cost)   # the costs the system run just estimated
    phases = {op.name: op.phase for op in tt.trace.ops}
    split = {p: 0.0 for p in ("forward", "backward", "optimizer")}
    energy = {p: 0.0 for p in split}
    for r in run.ops:
        split[phases[r["op"]]] += r["latency_s"]
        energy[phases[r["op"]]] += r["energy_pj"] * 1e-12
    scale = 1.0 / dp.ranks if dp.zero >= 1 else 1.0
    split["optimizer"] *= scale
    energy["optimizer"] *= scale
    sync = _sync(tt, dp, run.ops, split)
    sms = getattr(arch.compute, "sm_count", 0) if arch.compute.kind == "gpu" else 0
    contention = sm_contention_s(sync["overlapped_s"], dp.comm_sms, sms)
    split["backward"] += contention
    split["communication (exposed)"] = sync["exposed_s"]
    step = sum(split.values())
    static_j = run.static_energy_pj * 1e-12 * (step / run.makespan_s if run.makespan_s else 1.0)
    energy_step = (sum(energy.values()) + static_j) * dp.ranks
    tokens = (tt.tokens_per_micro_batch or 0) * tt.recipe.micro_batches * dp.ranks
    peak = sum(peak_flops_per_s(core.arch, tt) for core in system.cores)   # a rank's whole system
    mfu = model_flops(tt) / (step * peak) if step > 0 and peak > 0 else 0.0
    notes = sorted({n for r in analytic.rows for n in (r["notes"] or "").split("; ") if n} | set(tt.notes.values()))
    rows = [{**r, "recipe_note": tt.notes.get(r["op"], "")} for r in analytic.rows]
    return TrainResult(workload=tt.trace.name, system=system.name, step_s=step, tokens_per_step=tokens,
                       tokens_per_s=tokens / step if step else 0.0,
                       tokens_per_s_per_device=tokens / step / dp.ranks if step else 0.0, mfu=mfu,
                       energy_per_step_j=energy_step, energy_per_token_j=energy_step / tokens if tokens else 0.0,
                       split_s=split, footprint=footprint_for(tt, arch, dp, shape, capacity_bytes),
                       data_parallel={"ranks": dp.ranks, "zero": dp.zero, "collective": dp.collective,
                                      "link_gb_per_s": (dp.link_bytes_per_s or 0) / 1e9,
                                      "communication_s": sync["total_s"], "gradient_bytes": sync["bytes"],
                                      "comm_sms": dp.comm_sms, "sm_contention_s": contention},
                       rows=rows, notes=notes)


__all__ = ["simulate_training", "TrainResult", "DataParallel", "model_flops", "peak_flops_per_s", "footprint_for"]
