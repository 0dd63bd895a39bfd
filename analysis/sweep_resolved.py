"""A resolved sweep: validated, plain data that every worker receives (parameters, objectives,
constraints, workloads as trace dicts), plus the content hashes that key stored results."""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from analysis.metrics import metric_key
from analysis.sweep_expr import Expr
from analysis.sweep_schema import RangeParam

SWEEP_FORMAT = 1  # bump when the meaning of stored metrics changes



@dataclass(frozen=True)
class Param:
    """One swept parameter. kind: 'values' (explicit list), 'range', or 'derived' (an expression)."""
    path: str
    kind: str
    values: tuple = ()
    range: RangeParam | None = None
    expr: Expr | None = None

    def grid_values(self) -> list:
        if self.kind == "values":
            return list(self.values)
        return self.range.grid_values()

    def grid_count(self) -> int:
        return len(self.values) if self.kind == "values" else self.range.grid_count()


@dataclass(frozen=True)
class Objective:
    name: str        # as the user wrote it
    key: str         # metrics key
    direction: str   # 'min' | 'max'


@dataclass(frozen=True)
class Constraint:
    text: str
    expr: Expr
    metric_names: tuple[str, ...]   # names resolved to metrics (empty: checkable before simulating)


@dataclass(frozen=True)
class Workload:
    name: str
    path: str
    weight: float
    data: dict       # the trace as a plain dict (shipped to workers; no shared filesystem needed)
    digest: str      # content hash of the validated trace


@dataclass
class ResolvedSweep:
    """A validated sweep, ready to run: everything a worker needs is plain data."""
    name: str
    spec_path: str | None
    base_arch_path: str
    base_raw: dict
    base_digest: str
    workloads: list[Workload]
    params: list[Param]
    objectives: list[Objective]
    constraints: list[Constraint]
    strategy: str                # grid | random | nsga2
    n_points: int | None         # random/nsga2 budget (grid: None)
    population: int | None
    seed: int
    executor: str                # serial | local | dask://...
    jobs: int | None
    color_by: str | None
    metric_names: list[str] = field(default_factory=list)
    spec_dict: dict = field(default_factory=dict)

    @property
    def searched(self) -> list[Param]:
        return [p for p in self.params if p.kind != "derived"]

    @property
    def derived(self) -> list[Param]:
        return [p for p in self.params if p.kind == "derived"]

    def grid_size(self) -> int:
        """Points of the full grid, counted without building any axis."""
        return math.prod(p.grid_count() for p in self.searched)

    def metric_key(self, name: str) -> str:
        return metric_key(name)

    def zero_if_absent(self) -> list[str]:
        """Energy components the objectives and constraints name. A point whose ops never incur one
        (index selects of a dense run) has no such totals key; its value there is 0 pJ."""
        used = [o.key for o in self.objectives] + [metric_key(n) for c in self.constraints for n in c.metric_names]
        return [k for k in dict.fromkeys(used) if k.startswith("energy_") and k.endswith("_pj") and k != "energy_pj"]


def canonical_json(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def digest(obj) -> str:
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:16]


_CODE_VERSION: str | None = None


def code_version() -> str:
    """A hash of the simulator's source, the sweep's metric code and the sweep format, so stale
    results are never reused.

    `SPARSIM_CODE_VERSION` pins it (tests, or to reuse results across a code change knowingly).
    """
    global _CODE_VERSION
    pinned = os.environ.get("SPARSIM_CODE_VERSION")
    if pinned:
        return pinned
    if _CODE_VERSION is None:
        import simulator
        h = hashlib.sha256(f"{simulator.__version__}/{SWEEP_FORMAT}".encode())
        root = Path(simulator.__file__).parent
        for f in sorted(root.rglob("*.py")):
            h.update(str(f.relative_to(root)).encode())
            h.update(f.read_bytes())
        # the sweep's own metric code (combined totals, derived and resource metrics) counts too
        here = Path(__file__).parent
        for f in sorted(here.glob("sweep*.py")) + [here / "metrics.py"]:
            h.update(f.name.encode())
            h.update(f.read_bytes())
        _CODE_VERSION = h.hexdigest()[:12]
    return _CODE_VERSION



__all__ = ["Param", "Objective", "Constraint", "Workload", "ResolvedSweep", "canonical_json", "digest",
           "code_version", "SWEEP_FORMAT"]
