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

Ranges: `min`, `max`, `log`, `step`, `num`, `type` (int|float, default: int when min and
max are ints). On a grid a range becomes `num` points, or values `step` apart (with
`log: true`, `step` is the ratio between neighbours, default 2). Random and NSGA-II
sample a range without `step`/`num` continuously (log-uniformly when `log`).
"""

from __future__ import annotations

import ast
import copy
import hashlib
import json
import math
import operator
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from simulator.inputs import StrictFields
from simulator.errors import SparsimInputError, from_validation_error, install_hint, nearest

# ----------------------------------------------------------------------------- objectives

# Friendly names -> the key in the combined metrics, and whether smaller is better.
OBJECTIVE_ALIASES: dict[str, tuple[str, str]] = {
    "latency": ("latency_s", "min"),
    "energy": ("energy_pj", "min"),
    "edp": ("edp_js", "min"),
    "area": ("area_mm2", "min"),
    "power": ("power_w", "min"),
    "cycles": ("cycles", "min"),
    "throughput": ("throughput_macs_per_s", "max"),
    "throughput_per_w": ("macs_per_j", "max"),
    "perf_per_watt": ("macs_per_j", "max"),
    "efficiency": ("macs_per_j", "max"),
    "utilization": ("utilization", "max"),
}
MAXIMISED_KEYS = {"throughput_macs_per_s", "macs_per_j", "utilization", "inferences_per_s"}
# Metrics the sweep derives from the engine's totals (see analysis.sweep.combine_totals).
DERIVED_METRICS = ("throughput_macs_per_s", "macs_per_j", "inferences_per_s")
# Totals keys every engine produces (simulator.simulate.simulate).
CORE_METRICS = ("cycles", "compute_cycles", "stall_cycles", "macs", "dense_macs", "energy_pj", "latency_s",
                "utilization", "area_mm2", "ops", "edp_js", "power_w")

SWEEP_FORMAT = 1  # bump when the meaning of stored metrics changes


class _Strict(StrictFields):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RangeParam(_Strict):
    """A numeric range; see the module docstring for how each strategy reads it."""
    min: float
    max: float
    log: bool = False
    step: float | None = Field(default=None, gt=0)
    num: int | None = Field(default=None, ge=1)
    type: Literal["int", "float"] | None = None

    @model_validator(mode="before")
    @classmethod
    def _remember_types(cls, data):
        if isinstance(data, dict) and "type" not in data and "min" in data and "max" in data:
            ints = all(isinstance(data[k], int) and not isinstance(data[k], bool) for k in ("min", "max"))
            step = data.get("step")
            if ints and (step is None or isinstance(step, int) or data.get("log")):
                data = {**data, "type": "int"}
        return data

    @model_validator(mode="after")
    def _check(self):
        if self.min > self.max:
            raise ValueError(f"range has min {self.min:g} > max {self.max:g}")
        if self.log and self.min <= 0:
            raise ValueError(f"a log range needs min > 0, got {self.min:g}")
        if self.log and self.step is not None and self.step <= 1:
            raise ValueError(f"with log: true, step is the ratio between values and must be > 1, got {self.step:g}")
        if self.step is not None and self.num is not None:
            raise ValueError("give step or num, not both")
        return self

    @property
    def is_int(self) -> bool:
        return self.type == "int"

    @property
    def discrete(self) -> bool:
        return self.step is not None or self.num is not None

    def grid_count(self) -> int:
        """How many values `grid_values` builds (an upper bound before de-duplication), without building them."""
        lo, hi = self.min, self.max
        if self.num is not None:
            return self.num
        if self.log:
            return int(math.floor(math.log(hi / lo) / math.log(self.step or 2.0) + 1e-9)) + 1
        if self.step is not None:
            return int(math.floor((hi - lo) / self.step + 1e-9)) + 1
        if self.is_int and hi - lo <= 64:
            return int(hi) - int(lo) + 1
        raise ValueError("a grid needs 'step' or 'num' for this range (or log: true for x2 steps)")

    def grid_values(self) -> list:
        """The values a grid visits (ascending, unique)."""
        from simulator.bounds import MAX_GRID_POINTS
        lo, hi = self.min, self.max
        if self.grid_count() > MAX_GRID_POINTS:
            raise ValueError(f"this range has {self.grid_count():,} values, over the limit of {MAX_GRID_POINTS:,}; "
                             "use a larger step, num, or log: true")
        if self.num is not None:
            vals = np.geomspace(lo, hi, self.num) if self.log else np.linspace(lo, hi, self.num)
        elif self.log:
            ratio = self.step or 2.0
            n = int(math.floor(math.log(hi / lo) / math.log(ratio) + 1e-9)) + 1
            vals = lo * ratio ** np.arange(n)
        elif self.step is not None:
            n = int(math.floor((hi - lo) / self.step + 1e-9)) + 1
            vals = lo + self.step * np.arange(n)
        elif self.is_int and hi - lo <= 64:
            vals = np.arange(int(lo), int(hi) + 1)
        else:
            raise ValueError("a grid needs 'step' or 'num' for this range (or log: true for x2 steps)")
        return _unique([self.cast(v) for v in vals])

    def cast(self, v: float):
        if self.is_int:
            return int(round(float(v)))
        v = float(v)
        return float(f"{v:.12g}")  # strip float noise so hashes and labels are stable


def _unique(values: list) -> list:
    out = []
    for v in values:
        if v not in out:
            out.append(v)
    return out


class WorkloadEntry(_Strict):
    path: str
    weight: float = Field(default=1.0, gt=0)
    name: str | None = None


class ObjectiveEntry(_Strict):
    metric: str
    direction: Literal["min", "max"] | None = None


class SweepSpec(_Strict):
    """The YAML sweep spec as written by the user (paths not yet resolved)."""
    name: str = "sweep"
    description: str | None = None
    base_arch: str
    workloads: list[WorkloadEntry] = Field(min_length=1)
    parameters: dict[str, Union[RangeParam, list, str, int, float, bool]] = Field(min_length=1)
    objectives: list[Union[str, ObjectiveEntry]] = Field(min_length=1)
    constraints: list[str] = Field(default_factory=list)
    strategy: Union[str, dict[str, int]] = "grid"
    seed: int = 0
    executor: str = "local"
    jobs: int | None = Field(default=None, ge=1)
    color_by: str | None = Field(default=None, description="parameter colouring the Pareto plot")

    @field_validator("workloads", mode="before")
    @classmethod
    def _workload_shorthand(cls, v):
        if isinstance(v, (str, dict)):
            v = [v]
        if isinstance(v, list):
            v = [{"path": w} if isinstance(w, str) else w for w in v]
        return v

    @field_validator("executor", mode="before")
    @classmethod
    def _executor_mapping(cls, v):
        # `executor: {dask: tcp://host:8786}` (YAML reads `dask: tcp://...` as a mapping)
        if isinstance(v, dict) and len(v) == 1 and "dask" in v:
            return f"dask://{v['dask']}"
        return v

    @field_validator("constraints", mode="before")
    @classmethod
    def _constraint_shorthand(cls, v):
        if isinstance(v, str):
            return [v]
        if isinstance(v, dict):  # {area_mm2: "<= 4"} or {area_mm2: {max: 4}}
            out = []
            for k, c in v.items():
                if isinstance(c, dict):
                    if "max" in c:
                        out.append(f"{k} <= {c['max']}")
                    if "min" in c:
                        out.append(f"{k} >= {c['min']}")
                else:
                    out.append(f"{k} {c}")
            return out
        return v



# ----------------------------------------------------------------------------- expressions

_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_CMPOPS = {ast.LtE: operator.le, ast.Lt: operator.lt, ast.GtE: operator.ge, ast.Gt: operator.gt,
           ast.Eq: operator.eq, ast.NotEq: operator.ne}
_FUNCS = {"min": min, "max": max, "int": int, "round": round, "float": float, "abs": abs,
          "ceil": math.ceil, "floor": math.floor, "log2": math.log2, "sqrt": math.sqrt}


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


MAX_EXPR_CHARS = 1000        # an expression longer than this is not a design rule
MAX_EXPR_INT = 2 ** 256       # no intermediate integer beyond this (no 9**9**9)
MAX_EXPONENT = 256            # `**` with a larger exponent is refused before it is computed


class ExprError(ValueError):
    """An expression that cannot be evaluated (division by zero, a number too large, a string in arithmetic)."""


def _number(v):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ExprError(f"arithmetic needs numbers, got {str(v)[:40]!r}")
    return v


def _checked(v):
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) > MAX_EXPR_INT:
        raise ExprError("an intermediate value exceeds 2**256")
    if isinstance(v, float) and not math.isfinite(v):
        raise ExprError("the value is not a finite number")
    return v


def _power(a, b):
    if abs(b) > MAX_EXPONENT:
        raise ExprError(f"exponent {b} is larger than {MAX_EXPONENT}")
    if abs(a) > MAX_EXPR_INT:
        raise ExprError("the base exceeds 2**256")
    if isinstance(a, int) and isinstance(b, int) and b >= 0 and abs(a) > 1 and b * math.log2(abs(a)) > 256:
        raise ExprError(f"{a} ** {b} exceeds 2**256")
    return a ** b


class Expr:
    """A small, bounded arithmetic expression over dotted names: numbers only (no string
    repetition), `**` with a bounded exponent, no value beyond 2**256, a few math functions;
    any failure is an `ExprError` (a ValueError)."""

    def __init__(self, text: str):
        self.text = text.strip()
        if len(self.text) > MAX_EXPR_CHARS:
            raise ValueError(f"expression is {len(self.text):,} characters long, over the limit of {MAX_EXPR_CHARS}")
        try:
            self.tree = ast.parse(self.text, mode="eval").body
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            raise ValueError(f"cannot parse expression '{self.text[:80]}'") from None
        self.names: list[str] = []
        self._collect(self.tree)

    def _collect(self, node):
        name = _dotted(node)
        if name is not None:
            if name not in self.names:
                self.names.append(name)
            return
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str)) \
                and not isinstance(node.value, bool):
            return
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            self._collect(node.left)
            self._collect(node.right)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            self._collect(node.operand)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS \
                and not node.keywords:
            for a in node.args:
                self._collect(a)
        elif isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _CMPOPS:
            self._collect(node.left)
            self._collect(node.comparators[0])
        else:
            raise ValueError(f"unsupported syntax in expression '{self.text[:80]}' (use + - * / // ** %, "
                             f"min/max/ceil/floor/log2/sqrt, and one comparison)")

    def evaluate(self, env: dict[str, Any]):
        try:
            return self._eval(self.tree, env)
        except ExprError as exc:
            raise ExprError(f"'{self.text[:80]}': {exc}") from None
        except ZeroDivisionError:
            raise ExprError(f"'{self.text[:80]}' divides by zero") from None
        except (ArithmeticError, TypeError, ValueError) as exc:
            raise ExprError(f"'{self.text[:80]}' cannot be evaluated ({exc})") from None

    def _eval(self, node, env):
        name = _dotted(node)
        if name is not None:
            return env[name]
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.BinOp):
            a, b = _number(self._eval(node.left, env)), _number(self._eval(node.right, env))
            op = type(node.op)
            return _checked(_power(a, b) if op is ast.Pow else _BINOPS[op](a, b))
        if isinstance(node, ast.UnaryOp):
            v = _number(self._eval(node.operand, env))
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.Call):
            return _checked(_FUNCS[node.func.id](*(_number(self._eval(a, env)) for a in node.args)))
        if isinstance(node, ast.Compare):
            return _CMPOPS[type(node.ops[0])](self._eval(node.left, env), self._eval(node.comparators[0], env))
        raise ValueError(self.text)


def arch_metrics(arch) -> dict[str, float]:
    """Metrics of the design itself (not of a run): peak MACs/cycle and, for engines that report
    FPGA resources, `<resource>_used` / `<resource>_utilization` (dsp, bram36, uram, lut, ff), so
    constraints such as `dsp_utilization <= 0.9` can be written."""
    from simulator.engines import engine_module
    out: dict[str, float] = {}
    peak = getattr(arch.compute, "peak_macs_per_cycle", None)
    if isinstance(peak, (int, float)):
        out["peak_macs_per_cycle"] = float(peak)
    report = getattr(engine_module(arch.compute.kind), "resources_report", None)
    if report is not None:
        for key, v in report(arch).items():
            if isinstance(v, dict) and "used" in v:
                out[f"{key}_used"] = float(v["used"])
                out[f"{key}_utilization"] = float(v.get("utilization", math.nan))
    return out


# ----------------------------------------------------------------------------- resolved sweep

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
        return OBJECTIVE_ALIASES[name][0] if name in OBJECTIVE_ALIASES else name


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
        for name in ("sweep.py", "sweep_spec.py"):
            h.update(name.encode())
            h.update((here / name).read_bytes())
        _CODE_VERSION = h.hexdigest()[:12]
    return _CODE_VERSION


# ----------------------------------------------------------------------------- path checks

def _strip_optional(ann):
    origin = typing.get_origin(ann)
    if origin in (Union, getattr(__import__("types"), "UnionType", Union)):
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        if len(args) == 1:
            return _strip_optional(args[0])
        return args
    return ann


def _compute_models(kinds: list[str]) -> list[type[BaseModel]]:
    from simulator.engines import ENGINE_KINDS, engine_module
    models = []
    for k in kinds:
        if k in ENGINE_KINDS:
            try:
                models.append(engine_module(k).ComputeSpec)
            except ImportError:
                pass
    return models


def _path_candidates(base_raw: dict, compute_kinds: list[str]) -> list[str]:
    """Every dotted path a parameter could name (for 'did you mean' hints)."""
    from simulator.spec import Arch, MemoryLevel

    out: list[str] = []

    def walk_model(model, prefix):
        for fname, finfo in model.model_fields.items():
            p = f"{prefix}.{fname}" if prefix else fname
            out.append(p)
            ann = _strip_optional(finfo.annotation)
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                walk_model(ann, p)

    for fname in Arch.model_fields:
        if fname == "compute":
            for m in _compute_models(compute_kinds):
                walk_model(m, "compute")
        elif fname == "memory":
            for lvl in (base_raw.get("memory") or {}):
                out.append(f"memory.{lvl}")
                walk_model(MemoryLevel, f"memory.{lvl}")
        else:
            out.append(fname)
            ann = _strip_optional(Arch.model_fields[fname].annotation)
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                walk_model(ann, fname)

    def walk_raw(node, prefix):
        if isinstance(node, dict):
            for k, v in node.items():
                p = f"{prefix}.{k}" if prefix else str(k)
                out.append(p)
                walk_raw(v, p)
    walk_raw(base_raw, "")
    return list(dict.fromkeys(out))


def check_path(path: str, base_raw: dict, compute_kinds: list[str]) -> bool:
    """True when `path` names a field of the arch (set in the base spec or a valid model field)."""
    from simulator.spec import Arch, MemoryLevel

    keys = path.split(".")
    if keys[0] not in Arch.model_fields:
        return False
    if keys[0] == "compute":
        models: list = _compute_models(compute_kinds)
        rest = keys[1:]
    elif keys[0] == "memory":
        if len(keys) < 2 or keys[1] not in (base_raw.get("memory") or {}):
            return False
        models, rest = [MemoryLevel], keys[2:]
    else:
        ann = _strip_optional(Arch.model_fields[keys[0]].annotation)
        if not keys[1:]:
            return True
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return False
        models, rest = [ann], keys[1:]
    if not rest:
        return True
    return any(_path_in_model(m, rest) for m in models)


def _path_in_model(model, keys: list[str]) -> bool:
    key, rest = keys[0], keys[1:]
    if key not in model.model_fields:
        return False
    if not rest:
        return True
    ann = _strip_optional(model.model_fields[key].annotation)
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return _path_in_model(ann, rest)
    origin = typing.get_origin(ann)
    return origin is dict and len(rest) == 1  # e.g. energy.mac_pj.8, memory.sram.formats.weights


def get_path(raw: dict, path: str):
    node = raw
    for k in path.split("."):
        if not isinstance(node, dict):
            raise KeyError(path)
        if k in node:
            node = node[k]
        elif k.isdigit() and int(k) in node:
            node = node[int(k)]
        else:
            raise KeyError(path)
    return node


def set_path(raw: dict, path: str, value) -> None:
    """Set a dotted path in place, creating missing sections (the arch model decides validity)."""
    keys = path.split(".")
    node = raw
    for k in keys[:-1]:
        nxt = node.get(k)
        if not isinstance(nxt, dict):
            nxt = {}
            node[k] = nxt
        node = nxt
    leaf = keys[-1]
    node[int(leaf) if leaf.isdigit() and any(isinstance(x, int) for x in node) else leaf] = value


def apply_point(base_raw: dict, overrides: dict[str, Any]) -> dict:
    out = copy.deepcopy(base_raw)
    for path, value in overrides.items():
        set_path(out, path, copy.deepcopy(value))
    return out


# ----------------------------------------------------------------------------- loading

def _resolve_file(text: str, spec_dir: Path | None, what: str, spec_path, field_name: str,
                  kind: str = "specs") -> Path:
    p = Path(os.path.expanduser(text))  # "~unknown_user/x" stays as typed (Path.expanduser raises)
    tries = [p] if p.is_absolute() else ([spec_dir / p] if spec_dir else []) + [Path.cwd() / p]
    for t in tries:
        if t.exists():
            from simulator.inputs import check_file
            try:
                return check_file(t.resolve(), what)
            except SparsimInputError as exc:
                raise SparsimInputError(f"'{text}': {exc.message}", path=spec_path, field=field_name,
                                        hint=exc.hint) from None
    from simulator.shipped import find
    shipped = find(kind, text) if len(p.parts) == 1 else None
    if shipped is not None:  # a shipped spec or trace by name
        return shipped
    raise SparsimInputError(f"{what} '{text}' not found", path=spec_path, field=field_name,
                            hint=(f"paths are relative to the sweep spec's folder ({spec_dir}); " if spec_dir
                                  else "") + f"or give a shipped name (sparsim list {kind})")


def _parse_executor(text: str, spec_path, field_name: str) -> str:
    t = str(text).strip()
    if t in ("local", "serial"):
        return t
    if t.startswith("dask"):
        addr = t.split("://", 1)[1] if "://" in t else t.partition(":")[2].strip()
        if not addr:
            raise SparsimInputError(f"executor '{t}' has no scheduler address", path=spec_path, field=field_name,
                                    hint="e.g. dask://127.0.0.1:8786")
        if "://" not in addr:
            addr = f"tcp://{addr}"
        return f"dask:{addr}" if addr.startswith("tcp://") or "://" in addr else f"dask:tcp://{addr}"
    guess = nearest(t, ["local", "serial", "dask://HOST:PORT"])
    raise SparsimInputError(f"unknown executor '{t}'", path=spec_path, field=field_name,
                            hint=(f"did you mean '{guess}'? " if guess else "") + "use local, serial or dask://HOST:PORT")


def dask_address(executor: str) -> str | None:
    return executor[len("dask:"):] if executor.startswith("dask:") else None


def check_dask_scheduler(address: str, timeout_s: float = 5.0, spec_path=None, field_name="executor") -> None:
    """Fail fast (before any work) when the Dask scheduler cannot be reached."""
    import importlib.util
    if importlib.util.find_spec("distributed") is None:
        raise SparsimInputError("the dask executor needs dask.distributed", path=spec_path, field=field_name,
                                hint=install_hint("dask"))
    import socket
    from urllib.parse import urlparse
    u = urlparse(address)
    if u.scheme in ("tcp", "tls") and u.hostname:
        try:
            with socket.create_connection((u.hostname, u.port or 8786), timeout=timeout_s):
                pass
        except OSError as exc:
            raise SparsimInputError(f"cannot reach the Dask scheduler at {address} ({exc.strerror or exc})",
                                    path=spec_path, field=field_name,
                                    hint="start it with `dask scheduler` and workers with `dask worker ADDRESS`, "
                                         "or use --executor local") from None


def _param_from(path: str, raw, spec_path) -> Param:
    fld = f"parameters.{path}"
    if isinstance(raw, RangeParam):
        return Param(path, "range", range=raw)
    if isinstance(raw, str) and raw.strip().startswith("="):
        try:
            return Param(path, "derived", expr=Expr(raw.strip()[1:]))
        except ValueError as exc:
            raise SparsimInputError(str(exc), path=spec_path, field=fld) from None
    if isinstance(raw, list):
        if not raw:
            raise SparsimInputError("empty value list", path=spec_path, field=fld, hint="give at least one value")
        return Param(path, "values", values=tuple(_unique(list(raw))))
    # a single scalar: a fixed override
    return Param(path, "values", values=(raw,))


def load_sweep_spec(source: str | Path | dict | SweepSpec) -> tuple[SweepSpec, Path | None, dict]:
    """Read and schema-check a sweep spec; returns (spec, its path or None, the raw dict)."""
    spec_path: Path | None = None
    if isinstance(source, SweepSpec):
        return source, None, source.model_dump(mode="json")
    if isinstance(source, dict):
        data = source
    else:
        from simulator.spec import read_yaml
        spec_path = Path(source).resolve()
        data = read_yaml(spec_path, "sweep spec")
    if not isinstance(data, dict):
        raise SparsimInputError("a sweep spec must be a YAML mapping", path=spec_path,
                                hint="see analysis/sweeps/*.yaml")
    params = data.get("parameters")
    if isinstance(params, dict):  # ranges first, so a range's errors name its own fields
        checked = {}
        for k, v in params.items():
            if isinstance(v, dict):
                lo, hi = v.get("min"), v.get("max")
                nums = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (lo, hi))
                if nums and lo > hi:
                    raise SparsimInputError(f"range has min {lo:g} > max {hi:g}", path=spec_path,
                                            field=f"parameters.{k}",
                                            hint=f"swap them: {{min: {hi:g}, max: {lo:g}}}")
                if nums and v.get("log") is True and lo <= 0:
                    raise SparsimInputError(f"a log range needs min > 0, got {lo:g}", path=spec_path,
                                            field=f"parameters.{k}.min", hint="use log: false, or a positive min")
                try:
                    v = RangeParam.model_validate(v)
                except ValidationError as exc:
                    raise from_validation_error(exc, path=spec_path, field_prefix=f"parameters.{k}",
                                                allowed_keys={"": list(RangeParam.model_fields)}) from None
            checked[k] = v
    else:
        checked = params
    try:
        spec = SweepSpec.model_validate({**data, "parameters": checked} if params is not None else data)
    except ValidationError as exc:
        raise from_validation_error(exc, path=spec_path, allowed_keys={"": list(SweepSpec.model_fields)}) from None
    return spec, spec_path, data


def _check_point_count(params: list[Param], strategy: str, max_points: int | None, spec_path) -> None:
    """A grid's size is counted (not built) and bounded; --max-points is in 1..MAX_GRID_POINTS."""
    from simulator.bounds import MAX_GRID_POINTS
    if max_points is not None and not 1 <= max_points <= MAX_GRID_POINTS:
        raise SparsimInputError(f"--max-points must be in 1..{MAX_GRID_POINTS:,} (got {max_points:,})",
                                field="--max-points")
    size = math.prod(p.grid_count() for p in params if p.kind != "derived") if strategy == "grid" else 0
    if size > MAX_GRID_POINTS and max_points is None:
        raise SparsimInputError(f"the grid has {size:,} points, over the limit of {MAX_GRID_POINTS:,}",
                                path=spec_path, field="parameters",
                                hint="give --max-points N (an evenly spread subset), or strategy: {random: N}")


def resolve_sweep(source, *, executor: str | None = None, jobs: int | None = None,
                  max_points: int | None = None, check_scheduler: bool = True) -> ResolvedSweep:
    """Validate a sweep completely and load what it needs; raises one SparsimInputError on a mistake."""
    from simulator.simulate import simulate
    from simulator.spec import arch_from_dict, read_yaml
    from simulator.trace import load_trace, trace_to_dict

    spec, spec_path, spec_dict = load_sweep_spec(source)
    spec_dir = spec_path.parent if spec_path else None

    # base arch
    arch_path = _resolve_file(spec.base_arch, spec_dir, "base arch", spec_path, "base_arch")
    base_raw = read_yaml(arch_path, "arch spec")
    base_arch = arch_from_dict(base_raw, path=arch_path)

    # parameters
    params = [_param_from(p, v, spec_path) for p, v in spec.parameters.items()]
    kinds = [base_raw.get("compute", {}).get("kind")]
    for p in params:
        if p.path == "compute.kind" and p.kind == "values":
            kinds += [v for v in p.values if isinstance(v, str)]
    candidates = None
    for p in params:
        if not check_path(p.path, base_raw, kinds):
            candidates = candidates or _path_candidates(base_raw, kinds)
            guess = nearest(p.path, candidates)
            raise SparsimInputError(f"'{p.path}' is not a field of the arch", path=spec_path,
                                    field=f"parameters.{p.path}",
                                    hint=f"did you mean '{guess}'?" if guess else "see the base arch for valid paths")
    searched = {p.path for p in params if p.kind != "derived"}
    for p in params:
        if p.kind == "derived":
            for name in p.expr.names:
                if name == p.path:
                    raise SparsimInputError("a derived parameter cannot refer to itself", path=spec_path,
                                            field=f"parameters.{p.path}")
                if name in searched:
                    continue
                try:
                    v = get_path(base_raw, name)
                except KeyError:
                    v = None
                if not isinstance(v, (int, float)):
                    guess = nearest(name, list(searched) + _path_candidates(base_raw, kinds))
                    raise SparsimInputError(f"'{name}' in '={p.expr.text}' is neither a swept parameter nor a number "
                                            f"set in the base arch", path=spec_path, field=f"parameters.{p.path}",
                                            hint=f"did you mean '{guess}'?" if guess else None)
    derived_names = [p.path for p in params if p.kind == "derived"]
    for p in params:
        if p.kind == "derived" and any(n in derived_names for n in p.expr.names):
            raise SparsimInputError("a derived parameter may refer only to swept parameters or base values",
                                    path=spec_path, field=f"parameters.{p.path}")

    # each explicit value must be valid for its own field (cross-field failures are left to the points)
    for p in params:
        if p.kind == "derived":
            continue
        if p.kind == "range":
            probe = [p.range.cast(p.range.min), p.range.cast(p.range.max)]
            if spec.strategy == "grid" or (isinstance(spec.strategy, str) and spec.strategy == "grid"):
                try:
                    probe = p.range.grid_values()
                except ValueError as exc:
                    raise SparsimInputError(str(exc), path=spec_path, field=f"parameters.{p.path}") from None
        else:
            probe = list(p.values)
        for v in probe:
            try:
                _schema_check(apply_point(base_raw, {p.path: v}), arch_path)
            except SparsimInputError as exc:
                if exc.field and (exc.field == p.path or exc.field.startswith(p.path + ".")):
                    raise SparsimInputError(f"value {v!r}: {exc.message}", path=spec_path,
                                            field=f"parameters.{p.path}", hint=exc.hint) from None

    # workloads: load once here (errors before any work) and ship as plain data
    workloads = []
    names_seen: set[str] = set()
    metric_names: set[str] = set(CORE_METRICS) | set(DERIVED_METRICS)
    for i, w in enumerate(spec.workloads):
        wpath = _resolve_file(w.path, spec_dir, "workload", spec_path, f"workloads[{i}].path", "traces")
        trace = load_trace(wpath)
        name = w.name or trace.name or wpath.stem
        if name in names_seen:
            name = f"{name}_{i}"
        names_seen.add(name)
        data = trace_to_dict(trace)
        workloads.append(Workload(name=name, path=str(wpath), weight=w.weight, data=data, digest=digest(data)))
        try:
            metric_names |= set(simulate(trace, base_arch).totals) | set(arch_metrics(base_arch))
        except SparsimInputError as exc:
            raise SparsimInputError(f"the base arch cannot run this workload: {exc.one_line()}", path=spec_path,
                                    field=f"workloads[{i}]") from None

    # objectives
    objectives: list[Objective] = []
    for i, o in enumerate(spec.objectives):
        name, direction = (o, None) if isinstance(o, str) else (o.metric, o.direction)
        key = OBJECTIVE_ALIASES[name][0] if name in OBJECTIVE_ALIASES else name
        if key not in metric_names:
            guess = nearest(name, list(OBJECTIVE_ALIASES) + sorted(metric_names))
            raise SparsimInputError(f"objective '{name}' is not a metric the engine produces", path=spec_path,
                                    field=f"objectives[{i}]",
                                    hint=(f"did you mean '{guess}'? " if guess else "") +
                                    "names: " + ", ".join(OBJECTIVE_ALIASES) + ", or any totals key")
        if direction is None:
            direction = OBJECTIVE_ALIASES[name][1] if name in OBJECTIVE_ALIASES else \
                ("max" if key in MAXIMISED_KEYS else "min")
        if any(x.key == key for x in objectives):
            raise SparsimInputError(f"objective '{name}' is listed twice", path=spec_path, field=f"objectives[{i}]")
        objectives.append(Objective(name, key, direction))

    # constraints: names are metrics (or aliases) or arch paths (checked before simulating)
    constraints = []
    for i, text in enumerate(spec.constraints):
        fld = f"constraints[{i}]"
        try:
            expr = Expr(text)
        except ValueError as exc:
            raise SparsimInputError(str(exc), path=spec_path, field=fld, hint="e.g. 'area_mm2 <= 4'") from None
        if not isinstance(expr.tree, ast.Compare):
            raise SparsimInputError(f"constraint '{text}' has no comparison", path=spec_path, field=fld,
                                    hint="e.g. 'area_mm2 <= 4' or 'power_w < 2'")
        metrics = []
        for name in expr.names:
            if name in OBJECTIVE_ALIASES or name in metric_names:
                metrics.append(name)
            elif name in searched or name in derived_names:
                continue
            else:
                try:
                    v = get_path(base_raw, name)
                except KeyError:
                    v = None
                if not isinstance(v, (int, float)):
                    guess = nearest(name, list(OBJECTIVE_ALIASES) + sorted(metric_names) + sorted(searched))
                    raise SparsimInputError(f"'{name}' in constraint '{text}' is not a metric the engine produces "
                                            f"nor a parameter", path=spec_path, field=fld,
                                            hint=f"did you mean '{guess}'?" if guess else None)
        constraints.append(Constraint(text, expr, tuple(metrics)))

    # strategy
    strategy, n_points, population = _parse_strategy(spec.strategy, spec_path)
    if strategy == "grid":
        for p in params:
            if p.kind == "range":
                try:
                    p.range.grid_values()
                except ValueError as exc:
                    raise SparsimInputError(str(exc), path=spec_path, field=f"parameters.{p.path}") from None
    _check_point_count(params, strategy, max_points, spec_path)
    if max_points is not None:
        if n_points is not None:
            n_points = min(n_points, max_points)

    color_by = spec.color_by
    if color_by is not None and color_by not in [p.path for p in params]:
        guess = nearest(color_by, [p.path for p in params])
        raise SparsimInputError(f"color_by '{color_by}' is not a parameter of this sweep", path=spec_path,
                                field="color_by", hint=f"did you mean '{guess}'?" if guess else None)

    # executor
    ex = _parse_executor(executor if executor is not None else spec.executor, spec_path if executor is None else None,
                         "executor" if executor is None else "--executor")
    addr = dask_address(ex)
    if addr and check_scheduler:
        check_dask_scheduler(addr, spec_path=spec_path if executor is None else None,
                             field_name="executor" if executor is None else "--executor")
    if jobs is not None and jobs < 1:
        raise SparsimInputError("--jobs must be >= 1", field="--jobs")

    return ResolvedSweep(
        name=spec.name, spec_path=str(spec_path) if spec_path else None, base_arch_path=str(arch_path),
        base_raw=base_raw, base_digest=digest(base_raw), workloads=workloads, params=params,
        objectives=objectives, constraints=constraints, strategy=strategy, n_points=n_points,
        population=population, seed=spec.seed, executor=ex, jobs=jobs or spec.jobs, color_by=color_by,
        metric_names=sorted(metric_names), spec_dict=json.loads(canonical_json(spec_dict)))


def _schema_check(raw: dict, path) -> None:
    """Field-level validation of an arch (no cross-field engine checks, which depend on other parameters)."""
    from simulator.spec import Arch, compute_model as _compute_model
    compute_raw = raw.get("compute")
    if not isinstance(compute_raw, dict):
        return
    model = _compute_model(compute_raw.get("kind"), path)
    try:
        compute = model.model_validate(compute_raw)
    except ValidationError as exc:
        raise from_validation_error(exc, path=path, field_prefix="compute") from None
    try:
        Arch.model_validate({**raw, "compute": compute})
    except ValidationError as exc:
        raise from_validation_error(exc, path=path) from None


def _parse_strategy(raw, spec_path) -> tuple[str, int | None, int | None]:
    names = ("grid", "random", "nsga2")
    if isinstance(raw, str):
        s = raw.strip()
        if s == "grid":
            return "grid", None, None
        head, _, n = s.partition(":")
        if head.strip() in ("random", "nsga2") and n.strip().isdigit():
            return head.strip(), int(n), None
        guess = nearest(head.strip(), names)
        raise SparsimInputError(f"unknown strategy '{s}'", path=spec_path, field="strategy",
                                hint=(f"did you mean '{guess}'? " if guess else "") + "use grid, {random: N} or {nsga2: N}")
    keys = [k for k in raw if k != "population"]
    if len(keys) != 1 or keys[0] not in ("random", "nsga2", "grid"):
        guess = nearest(keys[0], names) if keys else None
        raise SparsimInputError(f"strategy needs exactly one of grid, random, nsga2 (got {', '.join(map(str, raw))})",
                                path=spec_path, field="strategy",
                                hint=f"did you mean '{guess}'?" if guess else "e.g. strategy: {nsga2: 200}")
    kind = keys[0]
    n = raw[kind]
    if kind == "grid":
        return "grid", None, None
    if not isinstance(n, int) or n < 1:
        raise SparsimInputError(f"{kind} needs a number of points >= 1", path=spec_path, field=f"strategy.{kind}")
    pop = raw.get("population")
    if pop is not None and (not isinstance(pop, int) or pop < 2):
        raise SparsimInputError("population must be an integer >= 2", path=spec_path, field="strategy.population")
    if pop is not None and kind != "nsga2":
        raise SparsimInputError("population applies to nsga2 only", path=spec_path, field="strategy.population")
    return kind, n, pop


__all__ = ["SweepSpec", "RangeParam", "ResolvedSweep", "Param", "Objective", "Constraint", "Workload", "Expr",
           "OBJECTIVE_ALIASES", "resolve_sweep", "load_sweep_spec", "apply_point", "code_version", "digest",
           "canonical_json", "check_dask_scheduler", "dask_address", "get_path"]
