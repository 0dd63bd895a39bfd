"""Resolving a sweep spec: every check runs here, before any point is evaluated, each in one stage.

    spec -> base arch -> parameters (paths, derived references, values) -> workloads (loaded; the
    metrics they can yield on the base arch named without simulating, `simulator.totals.totals_keys`)
    -> objectives -> constraints -> strategy and budget -> colouring -> executor

Each stage raises one `SparsimInputError` naming the spec field; the result is a `ResolvedSweep`
of plain data.
"""

from __future__ import annotations

import ast
import json
import os
import math
from dataclasses import dataclass
from pathlib import Path

from analysis.metrics import ALIASES, direction, engine_metrics, metric_key, sweep_derived
from analysis.sweep_expr import Expr
from analysis.sweep_paths import apply_point, check_path, get_path, path_candidates, schema_check
from analysis.sweep_resolved import (Constraint, Objective, Param, ResolvedSweep, Workload, canonical_json,
                                     digest)
from analysis.sweep_schema import RangeParam, SweepSpec, load_sweep_spec, unique_in_order
from simulator.errors import SparsimInputError, install_hint, nearest


def _did_you_mean(guess: str | None, otherwise: str | None = None) -> str | None:
    return f"did you mean '{guess}'?" if guess else otherwise


@dataclass
class _Ctx:
    """What every stage needs to word its errors and look at the base arch."""
    spec: SweepSpec
    spec_path: Path | None
    arch_path: Path
    base_raw: dict
    kinds: list            # compute kinds the sweep may select (base + swept compute.kind values)
    _candidates: list | None = None

    def candidates(self) -> list[str]:
        if self._candidates is None:
            self._candidates = path_candidates(self.base_raw, self.kinds)
        return self._candidates

    def error(self, message: str, field: str, hint: str | None = None) -> SparsimInputError:
        return SparsimInputError(message, path=self.spec_path, field=field, hint=hint)

    def base_number(self, name: str):
        """The base arch's value at a dotted path when it is a number, else None."""
        try:
            v = get_path(self.base_raw, name)
        except KeyError:
            return None
        return v if isinstance(v, (int, float)) else None


def resolve_sweep(source, *, executor: str | None = None, jobs: int | None = None,
                  max_points: int | None = None, check_scheduler: bool = True) -> ResolvedSweep:
    """Validate a sweep completely and load what it needs; raises one SparsimInputError on a mistake."""
    from simulator.spec import arch_from_dict, read_yaml

    spec, spec_path, spec_dict = load_sweep_spec(source)
    spec_dir = spec_path.parent if spec_path else None
    arch_path = _resolve_file(spec.base_arch, spec_dir, "base arch", spec_path, "base_arch")
    base_raw = read_yaml(arch_path, "arch spec")
    base_arch = arch_from_dict(base_raw, path=arch_path)

    params = [_param_from(p, v, spec_path) for p, v in spec.parameters.items()]
    ctx = _Ctx(spec, spec_path, arch_path, base_raw, _compute_kinds(base_raw, params))
    _check_paths(ctx, params)
    _check_derived(ctx, params)
    _check_values(ctx, params)
    workloads, metric_names = _load_workloads(ctx, spec_dir, base_arch)
    objectives = _objectives(ctx, metric_names)
    constraints = _constraints(ctx, params, metric_names)
    strategy, n_points, population = _strategy(ctx, params, max_points)
    _check_color_by(ctx, params)
    ex = _executor(spec, spec_path, executor, check_scheduler)
    if jobs is not None and jobs < 1:
        raise SparsimInputError("--jobs must be >= 1", field="--jobs")

    return ResolvedSweep(
        name=spec.name, spec_path=str(spec_path) if spec_path else None, base_arch_path=str(arch_path),
        base_raw=base_raw, base_digest=digest(base_raw), workloads=workloads, params=params,
        objectives=objectives, constraints=constraints, strategy=strategy, n_points=n_points,
        population=population, seed=spec.seed, executor=ex, jobs=jobs or spec.jobs, color_by=spec.color_by,
        metric_names=sorted(metric_names), spec_dict=json.loads(canonical_json(spec_dict)))


# ----------------------------------------------------------------------------- parameters

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
        return Param(path, "values", values=tuple(unique_in_order(list(raw))))
    # a single scalar: a fixed override
    return Param(path, "values", values=(raw,))


def _compute_kinds(base_raw: dict, params: list[Param]) -> list:
    kinds = [base_raw.get("compute", {}).get("kind")]
    for p in params:
        if p.path == "compute.kind" and p.kind == "values":
            kinds += [v for v in p.values if isinstance(v, str)]
    return kinds


def _check_paths(ctx: _Ctx, params: list[Param]) -> None:
    """Every parameter names a field of the arch (for any compute kind the sweep selects)."""
    for p in params:
        if not check_path(p.path, ctx.base_raw, ctx.kinds):
            raise ctx.error(f"'{p.path}' is not a field of the arch", f"parameters.{p.path}",
                            _did_you_mean(nearest(p.path, ctx.candidates()), "see the base arch for valid paths"))


def _check_derived(ctx: _Ctx, params: list[Param]) -> None:
    """A derived parameter refers only to swept parameters or numbers set in the base arch."""
    searched = [p.path for p in params if p.kind != "derived"]
    derived = [p for p in params if p.kind == "derived"]
    for p in derived:
        for name in p.expr.names:
            if name == p.path:
                raise ctx.error("a derived parameter cannot refer to itself", f"parameters.{p.path}")
            if name not in searched and ctx.base_number(name) is None:
                guess = nearest(name, list(dict.fromkeys(searched)) + ctx.candidates())
                raise ctx.error(f"'{name}' in '={p.expr.text}' is neither a swept parameter nor a number "
                                f"set in the base arch", f"parameters.{p.path}", _did_you_mean(guess))
    derived_names = [p.path for p in derived]
    for p in derived:
        if any(n in derived_names for n in p.expr.names):
            raise ctx.error("a derived parameter may refer only to swept parameters or base values",
                            f"parameters.{p.path}")


def _grid_values(ctx: _Ctx, p: Param) -> list:
    """A range's grid values, or the one error saying why it has none."""
    try:
        return p.range.grid_values()
    except ValueError as exc:
        raise ctx.error(str(exc), f"parameters.{p.path}") from None


def _check_values(ctx: _Ctx, params: list[Param]) -> None:
    """Each explicit value is valid for its own field (cross-field failures are left to the points)."""
    for p in params:
        if p.kind == "derived":
            continue
        if p.kind == "range":
            probe = [p.range.cast(p.range.min), p.range.cast(p.range.max)]
            if ctx.spec.strategy == "grid":
                probe = _grid_values(ctx, p)
        else:
            probe = list(p.values)
        for v in probe:
            try:
                schema_check(apply_point(ctx.base_raw, {p.path: v}), ctx.arch_path)
            except SparsimInputError as exc:
                if exc.field and (exc.field == p.path or exc.field.startswith(p.path + ".")):
                    raise ctx.error(f"value {v!r}: {exc.message}", f"parameters.{p.path}", exc.hint) from None


# ----------------------------------------------------------------------------- workloads and metrics

def _load_workloads(ctx: _Ctx, spec_dir: Path | None, base_arch) -> tuple[list[Workload], set[str]]:
    """Load each workload once (errors before any work; shipped to workers as plain data) and name
    the metrics objectives may use: the totals keys a simulation of it on the base arch can have
    (from the arch, the engine's declared energy components and the trace; nothing is simulated),
    the design's own metrics and the sweep's derived ones. Whether the base arch runs every
    workload is checked by `run_sweep` before it writes anything (`analysis.sweep.base_point_seconds`,
    the run that also sizes its batches)."""
    from simulator.totals import totals_keys
    from simulator.trace import load_trace, trace_to_dict

    workloads = []
    names_seen: set[str] = set()
    metric_names: set[str] = set(engine_metrics()) | set(sweep_derived()) | set(arch_metrics(base_arch))
    for i, w in enumerate(ctx.spec.workloads):
        wpath = _resolve_file(w.path, spec_dir, "workload", ctx.spec_path, f"workloads[{i}].path", "traces")
        trace = load_trace(wpath)
        name = w.name or trace.name or wpath.stem
        if name in names_seen:
            name = f"{name}_{i}"
        names_seen.add(name)
        data = trace_to_dict(trace)
        workloads.append(Workload(name=name, path=str(wpath), weight=w.weight, data=data, digest=digest(data)))
        metric_names |= set(totals_keys(trace, base_arch))
    return workloads, metric_names


def arch_metrics(arch) -> dict[str, float]:
    """Metrics of the design itself (not of a run): peak MACs/cycle and, for engines that report
    FPGA resources, `<resource>_used` / `<resource>_utilization` (dsp, bram36, uram, lut, ff), so
    constraints such as `dsp_utilization <= 0.9` can be written."""
    from simulator.engines import load_engine
    out: dict[str, float] = {"peak_macs_per_cycle": float(arch.compute.peak_macs_per_cycle)}
    for key, v in load_engine(arch.compute.kind).resources_report(arch).items():
        if isinstance(v, dict) and "used" in v:
            out[f"{key}_used"] = float(v["used"])
            out[f"{key}_utilization"] = float(v.get("utilization", math.nan))
    return out


def _objectives(ctx: _Ctx, metric_names: set[str]) -> list[Objective]:
    objectives: list[Objective] = []
    for i, o in enumerate(ctx.spec.objectives):
        name, way = (o, None) if isinstance(o, str) else (o.metric, o.direction)
        key = metric_key(name)
        if key not in metric_names:
            guess = nearest(name, list(ALIASES) + sorted(metric_names))
            raise ctx.error(f"objective '{name}' is not a metric the engine produces", f"objectives[{i}]",
                            (f"did you mean '{guess}'? " if guess else "") +
                            "names: " + ", ".join(ALIASES) + ", or any totals key")
        if any(x.key == key for x in objectives):
            raise ctx.error(f"objective '{name}' is listed twice", f"objectives[{i}]")
        objectives.append(Objective(name, key, way or direction(name)))
    return objectives


def _constraints(ctx: _Ctx, params: list[Param], metric_names: set[str]) -> list[Constraint]:
    """Names in a constraint are metrics (or their friendly names), parameters, or numbers of the base arch."""
    searched = {p.path for p in params if p.kind != "derived"}
    derived = {p.path for p in params if p.kind == "derived"}
    constraints = []
    for i, text in enumerate(ctx.spec.constraints):
        fld = f"constraints[{i}]"
        try:
            expr = Expr(text)
        except ValueError as exc:
            raise ctx.error(str(exc), fld, "e.g. 'area_mm2 <= 4'") from None
        if not isinstance(expr.tree, ast.Compare):
            raise ctx.error(f"constraint '{text}' has no comparison", fld, "e.g. 'area_mm2 <= 4' or 'power_w < 2'")
        metrics = []
        for name in expr.names:
            if name in ALIASES or name in metric_names:
                metrics.append(name)
            elif name not in searched and name not in derived and ctx.base_number(name) is None:
                guess = nearest(name, list(ALIASES) + sorted(metric_names) + sorted(searched))
                raise ctx.error(f"'{name}' in constraint '{text}' is not a metric the engine produces "
                                f"nor a parameter", fld, _did_you_mean(guess))
        constraints.append(Constraint(text, expr, tuple(metrics)))
    return constraints


# ----------------------------------------------------------------------------- strategy, colouring, executor

def _strategy(ctx: _Ctx, params: list[Param], max_points: int | None) -> tuple[str, int | None, int | None]:
    """The search strategy and its budget, with the grid's size and --max-points within bounds."""
    from simulator.bounds import MAX_GRID_POINTS
    strategy, n_points, population = _parse_strategy(ctx.spec.strategy, ctx.spec_path)
    if strategy == "grid":
        for p in params:
            if p.kind == "range":
                _grid_values(ctx, p)
        size = math.prod(p.grid_count() for p in params if p.kind != "derived")
        if size > MAX_GRID_POINTS and max_points is None:
            raise ctx.error(f"the grid has {size:,} points, over the limit of {MAX_GRID_POINTS:,}", "parameters",
                            "give --max-points N (an evenly spread subset), or strategy: {random: N}")
    if max_points is not None:
        if max_points < 1:
            raise SparsimInputError("--max-points must be >= 1", field="--max-points")
        if max_points > MAX_GRID_POINTS:
            raise SparsimInputError(f"--max-points {max_points:,} is over the limit of {MAX_GRID_POINTS:,}",
                                    field="--max-points")
        if n_points is not None:
            n_points = min(n_points, max_points)
    return strategy, n_points, population


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


def _check_color_by(ctx: _Ctx, params: list[Param]) -> None:
    color_by = ctx.spec.color_by
    paths = [p.path for p in params]
    if color_by is not None and color_by not in paths:
        raise ctx.error(f"color_by '{color_by}' is not a parameter of this sweep", "color_by",
                        _did_you_mean(nearest(color_by, paths)))


def _executor(spec: SweepSpec, spec_path, override: str | None, check_scheduler: bool) -> str:
    """The executor (the command line's --executor wins over the spec's), its scheduler reachable."""
    where, fld = (spec_path, "executor") if override is None else (None, "--executor")
    ex = _parse_executor(override if override is not None else spec.executor, where, fld)
    addr = dask_address(ex)
    if addr and check_scheduler:
        check_dask_scheduler(addr, spec_path=where, field_name=fld)
    return ex


# ----------------------------------------------------------------------------- files and executors


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


__all__ = ["resolve_sweep", "arch_metrics", "dask_address", "check_dask_scheduler"]
