"""Sweep specs: what to vary, what to optimise, under which limits, and how to search.

A sweep spec (YAML) names a base arch, one or more weighted workloads, parameters as dotted
paths into the arch (`compute.rows`), objectives and constraints over the metrics the
engine produces, a strategy (`grid`, `random: N`, `nsga2: N`) and an executor (`serial`,
`local`, `dask://HOST:PORT`):

    name: edge_npu_resnet50
    base_arch: edge_npu_32x32_os        # a shipped name, or a path relative to this file
    workloads:
      - {path: resnet50, weight: 1}     # likewise
    parameters:
      compute.rows: [16, 32, 64]                 # a list: categorical / explicit values
      compute.cols: "=compute.rows"              # derived: an expression over other paths
      memory.sram.capacity_kib: {min: 64, max: 4096, log: true}   # grid: x2 steps
      memory.lpddr4.bandwidth_bytes_per_cycle: {min: 8, max: 32, step: 8}
    objectives: [latency, energy]                # or {metric: stall_cycles, direction: min}
    constraints: ["area_mm2 <= 4", "power_w <= 2"]
    strategy: grid                               # {random: 200} | {nsga2: 300, population: 40}
    seed: 0
    executor: local

Everything is validated here, before any point is evaluated (`resolve_sweep`): a dotted
path that does not exist (with the nearest valid one), a range with min > max, an
objective or constraint metric the engine does not produce, a workload that does not
load, an unreachable Dask scheduler. Each is one `SparsimInputError` naming the field.
The metric names come from the arch, the engine's declared energy components and the traces
(`simulator.totals.totals_keys`), without simulating; `run_sweep` then runs the base arch on
every workload once (which sizes its batches) before it writes anything, so a workload the
base arch cannot run is one clear error too.

Ranges: `min`, `max`, `log`, `step`, `num`, `type` (int|float, default: int when min and
max are ints). On a grid a range becomes `num` points, or values `step` apart (with
`log: true`, `step` is the ratio between neighbours, default 2). Random and NSGA-II
sample a range without `step`/`num` continuously (log-uniformly when `log`).

The code lives in one module per concept; this module keeps the names callers import:
`analysis.sweep_schema` (the YAML schema), `analysis.sweep_expr` (expressions),
`analysis.sweep_paths` (dotted arch paths), `analysis.sweep_resolved` (the resolved, plain-data
sweep and its hashes), `analysis.sweep_resolve` (the checks, stage by stage) and
`analysis.metrics` (the metric registry: names, directions, labels).
"""

from __future__ import annotations

from analysis.metrics import ALIASES as OBJECTIVE_ALIASES, METRICS, engine_metrics, sweep_derived
from analysis.sweep_expr import Expr, ExprError
from analysis.sweep_paths import apply_point, check_path, get_path, set_path
from analysis.sweep_resolve import arch_metrics, check_dask_scheduler, dask_address, resolve_sweep
from analysis.sweep_resolved import (SWEEP_FORMAT, Constraint, Objective, Param, ResolvedSweep, Workload,
                                     canonical_json, code_version, digest)
from analysis.sweep_schema import RangeParam, SweepSpec, load_sweep_spec

MAXIMISED_KEYS = {k for k, m in METRICS.items() if m.direction == "max"}
DERIVED_METRICS = sweep_derived()   # metrics the sweep derives from the engine's totals
CORE_METRICS = engine_metrics()     # totals keys every engine produces

__all__ = ["SweepSpec", "RangeParam", "ResolvedSweep", "Param", "Objective", "Constraint", "Workload", "Expr",
           "ExprError", "OBJECTIVE_ALIASES", "MAXIMISED_KEYS", "DERIVED_METRICS", "CORE_METRICS", "SWEEP_FORMAT",
           "resolve_sweep", "load_sweep_spec", "apply_point", "check_path", "get_path", "set_path", "arch_metrics",
           "code_version", "digest", "canonical_json", "check_dask_scheduler", "dask_address"]
