"""Whole-trace totals of one simulation, typed, and the numeric keys a simulation may produce.

`Totals` is a dict (so JSON, CLI and table output stay exactly as they were, and engine- or
trace-specific keys such as `energy_sram_read_pj` or `tokens_per_s` sit beside the core ones)
whose core keys are also attributes: `result.totals.energy_pj`. `totals_keys(trace, arch)`
names its numeric keys from the arch, the engine's declared energy components and a walk of
the trace, without simulating (sweeps validate objective names with it).
"""

from __future__ import annotations

import math
from typing import Generic, TypeVar

T = TypeVar("T")

SUMMED = ("cycles", "compute_cycles", "stall_cycles", "macs", "dense_macs", "energy_pj", "latency_s")


class _Key(Generic[T]):
    """A dict key read as an attribute."""

    def __set_name__(self, owner, name: str) -> None:
        self.key = name

    def __get__(self, obj, owner=None) -> T:
        return self if obj is None else obj[self.key]


class Totals(dict):
    """Totals keyed as before; the keys every simulation has are typed attributes too."""
    cycles = _Key[float]()
    compute_cycles = _Key[float]()
    stall_cycles = _Key[float]()
    macs = _Key[float]()
    dense_macs = _Key[float]()
    energy_pj = _Key[float]()
    latency_s = _Key[float]()
    utilization = _Key[float]()       # MACs / (cycles x peak MACs per cycle), over the whole trace
    area_mm2 = _Key[float]()
    ops = _Key[int]()
    edp_js = _Key[float]()
    power_w = _Key[float]()

    @classmethod
    def of_rows(cls, rows: list[dict], peaks: list[float]) -> "Totals":
        """Sums over per-op rows, the whole-trace utilization (`peaks`: each op's peak MACs per
        cycle), and every energy component; a row without a component gets 0 pJ for it (not NaN
        in tables)."""
        t = cls({k: float(sum(r[k] for r in rows)) for k in SUMMED})
        peak_cycles = sum(r["cycles"] * p for r, p in zip(rows, peaks))
        t["utilization"] = t["macs"] / peak_cycles if peak_cycles else 0.0
        energy_keys = dict.fromkeys(k for r in rows for k in r if k.startswith("energy_") and k != "energy_pj")
        for key in energy_keys:
            t[key] = float(sum(r.get(key, 0.0) for r in rows))
            for r in rows:
                r.setdefault(key, 0.0)
        return t


DERIVED = ("utilization", "area_mm2", "ops", "edp_js", "power_w")   # what `simulate` adds to the sums


def totals_keys(trace, arch) -> tuple[str, ...]:
    """The numeric totals keys `simulate(trace, arch)` can produce, known without simulating.

    Exact except for the engine's optional energy components (`Engine.energy_components`): those
    are named whenever the engine can produce them, while a run has one only when some op incurs
    it (no `energy_index_select_pj` for a dense trace); a component a run lacks is 0 pJ.
    tests/test_totals_keys.py checks this against real simulations of every engine.
    """
    from simulator.engines import load_engine
    from simulator.power import board_tdp_w, trace_tokens

    engine = load_engine(arch.compute.kind)
    # every op's components (simulator.energy.op_energy_pj), then the engine's own
    parts = ["mac", "gated_mac", "leakage", *(f"{level}_{way}" for level in arch.memory for way in ("read", "write")),
             *engine.energy_components(arch)]
    keys = [*SUMMED, *DERIVED, *(f"energy_{p}_pj" for p in parts)]
    if board_tdp_w(arch) is not None:
        keys += ["board_tdp_w", "within_tdp"]
    if trace_tokens(trace):
        keys.append("energy_per_token_j")
    bound = engine.memory_bound(trace, arch)     # a walk over the trace's weights, not a simulation
    if bound:
        keys.append("tokens_per_s")
        if math.isfinite(bound["bound_tokens_per_s"]):
            keys.append("memory_bound_tokens_per_s")
    return tuple(dict.fromkeys(keys))


__all__ = ["Totals", "SUMMED", "DERIVED", "totals_keys"]
