"""Whole-trace totals of one simulation, typed.

`Totals` is a dict (so JSON, CLI and table output stay exactly as they were, and engine- or
trace-specific keys such as `energy_sram_read_pj` or `tokens_per_s` sit beside the core ones)
whose core keys are also attributes: `result.totals.energy_pj`.
"""

from __future__ import annotations

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


__all__ = ["Totals", "SUMMED"]
