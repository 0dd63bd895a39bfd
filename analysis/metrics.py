"""The metric registry: every quantity a sweep can optimise, constrain, tabulate or plot, in one place.

Each `Metric` says which way is better (`direction`), how a design's value combines over its
weighted workloads (`combine`), and how it is shown (`label`, `unit`, `scale` into that unit).
Sweeps (objective names and default directions, combined totals), the Pareto table and the
plots/reports read this table; adding an objective is one entry here.

`combine` values:
- `sum`: weighted sum over workloads (cycles, energy, latency, MAC counts);
- `design`: a property of the design, the same for every workload (area), taken once;
- `mean`: weighted mean over workloads (utilization);
- `count`: unweighted sum (ops simulated);
- `ratio`: recomputed from the combined totals (EDP, power, throughput, efficiency).

A totals key not registered here (an energy component `energy_<part>_pj`, an engine's own key,
a resource metric such as `dsp_utilization`) is still a metric: it is summed over workloads and
minimised unless the objective says `direction: max`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Metric:
    key: str                              # the key in simulation totals / combined sweep metrics
    direction: Literal["min", "max"]      # which way is better (an objective's default)
    combine: Literal["sum", "design", "mean", "count", "ratio"]
    label: str | None = None              # axis/table name; None: shown as its key
    unit: str = ""                        # display unit (after `scale`)
    scale: float = 1.0                    # value x scale = value in `unit`
    aliases: tuple[str, ...] = ()         # friendly objective names (`latency` for latency_s)
    every_engine: bool = False            # a totals key every engine's simulation produces
    from_totals: bool = False             # derived by the sweep from combined totals (not an engine key)


# Order matters where users see it: objective names are listed (and matched) in this order, and
# combined metrics of a multi-workload point are written in it.
METRICS: dict[str, Metric] = {m.key: m for m in (
    Metric("latency_s", "min", "sum", "latency", "ms", 1e3, ("latency",), every_engine=True),
    Metric("energy_pj", "min", "sum", "energy", "mJ", 1e-9, ("energy",), every_engine=True),
    Metric("edp_js", "min", "ratio", "energy-delay product", "µJ·s", 1e6, ("edp",), every_engine=True),
    Metric("area_mm2", "min", "design", "area", "mm²", 1.0, ("area",), every_engine=True),
    Metric("ops", "min", "count", every_engine=True),
    Metric("power_w", "min", "ratio", "power", "W", 1.0, ("power",), every_engine=True),
    Metric("cycles", "min", "sum", "cycles", "", 1.0, ("cycles",), every_engine=True),
    Metric("throughput_macs_per_s", "max", "ratio", "effective throughput", "GMAC/s", 1e-9, ("throughput",),
           from_totals=True),
    Metric("macs_per_j", "max", "ratio", "efficiency", "GMAC/J", 1e-9,
           ("throughput_per_w", "perf_per_watt", "efficiency"), from_totals=True),
    Metric("utilization", "max", "mean", "utilization", "%", 100.0, ("utilization",), every_engine=True),
    Metric("inferences_per_s", "max", "ratio", "inferences", "1/s", 1.0, from_totals=True),
    Metric("stall_cycles", "min", "sum", "stall cycles", "", 1.0, every_engine=True),
    Metric("compute_cycles", "min", "sum", every_engine=True),
    Metric("macs", "min", "sum", every_engine=True),
    Metric("dense_macs", "min", "sum", every_engine=True),
)}

# Column orders users read (pareto.csv; per-workload columns of a multi-workload sweep).
PARETO_COLUMNS = ("latency_s", "energy_pj", "edp_js", "area_mm2", "power_w", "utilization", "cycles",
                  "throughput_macs_per_s", "macs_per_j")
PER_WORKLOAD = ("latency_s", "energy_pj", "edp_js", "cycles", "utilization", "power_w")
assert set(PARETO_COLUMNS) | set(PER_WORKLOAD) <= set(METRICS)

# friendly name -> (key, default direction), in registry order
ALIASES: dict[str, tuple[str, str]] = {a: (m.key, m.direction) for m in METRICS.values() for a in m.aliases}


def metric_key(name: str) -> str:
    """A friendly name's metrics key (`latency` -> `latency_s`); any other name is its own key."""
    return ALIASES[name][0] if name in ALIASES else name


def direction(name: str) -> str:
    """Which way is better for a name or key: the registry's, else 'min'."""
    m = METRICS.get(metric_key(name))
    return m.direction if m else "min"


def engine_metrics() -> tuple[str, ...]:
    """Totals keys every engine's simulation produces."""
    return tuple(k for k, m in METRICS.items() if m.every_engine)


def sweep_derived() -> tuple[str, ...]:
    """Metrics the sweep derives from combined totals."""
    return tuple(k for k, m in METRICS.items() if m.from_totals)


def combine_rule(key: str) -> str:
    """How `key` combines over workloads; an unregistered key is summed."""
    m = METRICS.get(key)
    return m.combine if m is not None else "sum"


def label(key: str) -> str:
    """'energy (mJ)' for a registered metric, the key with spaces otherwise."""
    m = METRICS.get(key)
    if m is None or m.label is None:
        return key.replace("_", " ")
    return f"{m.label} ({m.unit})" if m.unit else m.label


def short_label(key: str) -> str:
    """The name without the unit ('energy')."""
    m = METRICS.get(key)
    return m.label if m is not None and m.label is not None else key


def scale(key: str) -> float:
    m = METRICS.get(key)
    return m.scale if m is not None else 1.0


def displayed(key: str) -> bool:
    """True when the metric has a display label and unit (tables show it scaled)."""
    m = METRICS.get(key)
    return m is not None and m.label is not None


__all__ = ["Metric", "METRICS", "ALIASES", "PARETO_COLUMNS", "PER_WORKLOAD", "metric_key", "direction",
           "engine_metrics", "sweep_derived", "combine_rule", "label", "short_label", "scale", "displayed"]
