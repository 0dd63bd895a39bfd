"""The sweep driver: generate design points, evaluate them in batches, keep every result.

    from analysis.sweep import run_sweep
    result = run_sweep("analysis/sweeps/edge_npu_resnet50.yaml", "out/edge", jobs=2)
    result.summary["pareto_size"], result.pareto  # DataFrame of the non-dominated points

Flow: `resolve_sweep` validates the whole spec first (nothing runs on a bad spec). Points
come from the strategy (grid: mixed-radix enumeration, evenly subsampled by
`max_points`; random: seeded numpy draws, repeats redrawn, so N distinct designs; nsga2:
optuna's NSGAIISampler, one population per generation, told in trial order so a seed
reproduces the run; its budget counts distinct designs, as does random's). Each point's key
hashes the base arch, its overrides, the workloads and the simulator's code version;
points already in the results store are reused, the rest go to the executor in batches.

Executors: `serial` (in this process), `local` (a process pool of `--jobs` workers,
forked so they start warm), `dask:tcp://HOST:PORT` (dask.distributed; tasks retried when
a worker dies). Workers receive the sweep context (base arch and traces as plain data)
once, validate the traces once, compile the numba kernels once, and then cost only an
arch validation plus `simulate()` per point and workload. A point that raises is
recorded with its error and the sweep goes on; a batch lost to a crashed worker is
recorded as `crashed` and evaluated again on the next run.

Every finished batch is committed to the store before the next is awaited, so a killed
sweep loses at most the batches in flight. Constraints are evaluated by the driver from
stored metrics (so changing a constraint never needs a re-simulation); constraints over
parameters only are checked before simulating, and such points are skipped.
Outputs in the folder: results.sqlite (+ results.parquet), pareto.csv, summary.json,
sweep.json (the resolved spec, for `sparsim plot --sweep`) and plots/.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.metrics import PARETO_COLUMNS
from analysis.pareto import non_dominated
from analysis.results_store import ResultsStore, records_frame
from analysis.sweep_executors import make_executor
from analysis.sweep_points import Point, PointFactory, _suggest, grid_points, random_points
from analysis.sweep_spec import OBJECTIVE_ALIASES, ResolvedSweep, SweepSpec, code_version, digest, get_path, resolve_sweep
from analysis.sweep_worker import TEST_DELAY_ENV, combine_totals, evaluate_batch
from simulator.errors import SparsimInputError
from simulator.outputs import finite, finite_json, write_atomic


@dataclass
class SweepResult:
    out_dir: Path
    summary: dict
    frame: pd.DataFrame           # this sweep's points, one row each
    pareto: pd.DataFrame
    plots: list[Path] = field(default_factory=list)

    @property
    def evaluated(self) -> int:
        return self.summary["evaluated"]

    @property
    def reused(self) -> int:
        return self.summary["reused"]

    @property
    def failed(self) -> int:
        return self.summary["failed"]


# ----------------------------------------------------------------------------- driver

class _Progress:
    """A rich progress bar with rate and ETA, or nothing."""

    def __init__(self, enabled: bool, total: int, label: str):
        self.bar = None
        if enabled:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)
            from rich.console import Console
            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TaskProgressColumn(), TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                                TextColumn("ETA"), TimeRemainingColumn(), console=Console(stderr=True), transient=False)
            self.task = self.bar.add_task(label, total=total, rate="")
            self.t0 = time.perf_counter()
            self.done = 0
            self.bar.start()

    def advance(self, n: int, evaluated: int, description: str | None = None):
        if self.bar is None:
            return
        self.done += n
        dt = time.perf_counter() - self.t0
        rate = f"{evaluated / dt:,.0f} pts/s" if dt > 0 and evaluated else ""
        kwargs = {"description": description} if description else {}
        self.bar.update(self.task, advance=n, rate=rate, **kwargs)

    def close(self):
        if self.bar is not None:
            self.bar.stop()


class _Run:
    def __init__(self, sweep: ResolvedSweep, out_dir: Path, jobs, progress: bool, retry_failed: bool,
                 point_s: float | None = None):
        self.sweep = sweep
        self.point_s = point_s          # seconds of one design point (base_point_seconds), sizes batches
        self.out = out_dir
        self.jobs = jobs
        self.show_progress = progress
        self.retry_failed = retry_failed
        self.factory = PointFactory(sweep)
        self.store = ResultsStore(out_dir)
        self.ctx = {"id": digest([sweep.base_digest, [w.digest for w in sweep.workloads], self.factory.code]),
                    "base_raw": sweep.base_raw, "zero_if_absent": sweep.zero_if_absent(),
                    "workloads": [{"name": w.name, "weight": w.weight, "data": w.data} for w in sweep.workloads]}
        self.records: dict[str, dict] = {}      # this sweep's points: key -> record
        self.evaluated = self.reused = self.skipped = 0
        self.eval_seconds = 0.0
        self.executor = None
        self.used_jobs = 0
        self._param_constraints = [c for c in sweep.constraints if not c.metric_names]
        self._stored = None

    # -- helpers
    def stored(self) -> dict[str, dict]:
        if self._stored is None:
            self._stored = self.store.finished()
        return self._stored

    def reusable(self, rec: dict | None) -> bool:
        if rec is None or rec["status"] == "crashed":
            return False
        return not (self.retry_failed and rec["status"] == "failed")

    def param_feasible(self, params: dict) -> bool:
        env = self._env(params, {})
        return all(bool(c.expr.evaluate(env)) for c in self._param_constraints)

    def _env(self, params: dict, metrics: dict) -> dict:
        env = dict(metrics)
        for alias, (key, _) in OBJECTIVE_ALIASES.items():
            if key in metrics:
                env[alias] = metrics[key]
        env.update(params)
        return _EnvWithBase(env, self.sweep.base_raw)

    def violations(self, params: dict, metrics: dict) -> list[float]:
        """Per constraint: how far it is violated (0 when satisfied)."""
        import ast
        env = self._env(params, metrics)
        out = []
        for c in self.sweep.constraints:
            node = c.expr.tree
            try:
                lhs = float(c.expr._eval(node.left, env))
                rhs = float(c.expr._eval(node.comparators[0], env))
            except (KeyError, TypeError, ValueError, ZeroDivisionError):  # a metric this point lacks
                out.append(math.inf)
                continue
            op = type(node.ops[0])
            if op in (ast.LtE, ast.Lt):
                v = max(0.0, lhs - rhs)
                if op is ast.Lt and lhs >= rhs:
                    v = max(v, 1e-12)
            elif op in (ast.GtE, ast.Gt):
                v = max(0.0, rhs - lhs)
                if op is ast.Gt and lhs <= rhs:
                    v = max(v, 1e-12)
            elif op is ast.Eq:
                v = abs(lhs - rhs)
            else:
                v = 0.0 if lhs != rhs else 1.0
            out.append(float(v) if v == v else math.inf)
        return out

    # -- evaluation
    def evaluate(self, points: list[Point], bar: _Progress, count_skipped: bool = True) -> None:
        """Reuse stored points, evaluate the rest, append each finished batch to the store."""
        todo: dict[str, Point] = {}
        done_now = 0
        for p in points:
            if p.key in self.records or p.key in todo:
                continue  # a repeat (NSGA-II re-proposing a design): nothing to do or count
            if not self.param_feasible(p.params):
                self.records[p.key] = {"key": p.key, "status": "skipped", "params": p.params, "trial": p.trial}
                self.skipped += 1
                done_now += count_skipped
                continue
            rec = self.stored().get(p.key)
            if self.reusable(rec):
                rec = dict(rec)
                rec["params"] = p.params
                self.records[p.key] = rec
                self.reused += 1
                done_now += 1
            else:
                todo[p.key] = p
        if done_now:  # reused (and skipped) points count as done at once
            bar.advance(done_now, self.evaluated)
        if not todo:
            return
        self.start_executor()
        keys = list(todo)
        batch_size = self._batch_size(len(keys))
        batches = [[(k, todo[k].params) for k in keys[i:i + batch_size]] for i in range(0, len(keys), batch_size)]
        t0 = time.perf_counter()
        try:
            for _, recs in self.executor.run(batches):
                self._commit(recs, todo, bar)  # committed before the next batch is awaited
        except KeyboardInterrupt:
            # Ctrl-C: batches that workers finish while shutting down are stored too (nothing finished is lost)
            for recs in self.executor.salvage():
                self._commit([r for r in recs if r["key"] not in self.records], todo, bar)
            raise
        finally:
            self.eval_seconds += time.perf_counter() - t0

    def _commit(self, recs: list[dict], todo: dict[str, Point], bar: _Progress) -> None:
        rows = []
        for r in recs:
            p = todo[r["key"]]
            r.update(params=p.params, trial=p.trial, sweep=self.sweep.name, code_version=self.factory.code,
                     arch_hash=self.factory.arch_hash(p.params), workload_hash=self.factory.workload_hash)
            if r["status"] == "ok":
                v = self.violations(p.params, r["metrics"])
                r["feasible"], r["violation"] = not any(v), float(sum(v))
            rows.append(r)
        self.store.append(rows)
        for r in rows:
            self.records[r["key"]] = r
        self.evaluated += len(rows)
        bar.advance(len(rows), self.evaluated)

    def start_executor(self) -> None:
        """Start workers before any progress-bar thread exists (workers are forked)."""
        if self.executor is None:
            self.executor = make_executor(self.sweep, self.ctx, self.jobs)
            self.used_jobs = getattr(self.executor, "jobs", 1)

    def _batch_size(self, n: int) -> int:
        # ~0.2 s of work per batch (a kill loses little), but enough batches to keep every worker busy
        if self.point_s is None:
            self.point_s = base_point_seconds(self.sweep)
        jobs = getattr(self.executor, "jobs", 1)
        size = int(max(1, min(64, 0.2 / self.point_s)))
        if jobs > 1:
            size = min(size, max(1, math.ceil(n / (jobs * 4))))
        return size

    def close(self):
        if self.executor is not None:
            self.executor.close()
            self.executor = None
        self.store.close()


class _EnvWithBase(dict):
    """Expression environment: point values first, then numbers set in the base arch."""

    def __init__(self, env, base_raw):
        super().__init__(env)
        self.base = base_raw

    def __missing__(self, name):
        return get_path(self.base, name)


def _nsga2(run: _Run, bar: _Progress, n_trials: int) -> None:
    import warnings

    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sweep = run.sweep
    pop = sweep.population or max(2, min(50, n_trials))
    def violations(trial):
        return trial.user_attrs.get("violations", [0.0] * len(sweep.constraints))
    constraints_func = violations if sweep.constraints else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sampler = optuna.samplers.NSGAIISampler(population_size=pop, seed=sweep.seed,
                                                constraints_func=constraints_func)
        study = optuna.create_study(directions=["maximize" if o.direction == "max" else "minimize"
                                                for o in sweep.objectives], sampler=sampler)
        # The budget counts distinct designs (NSGA-II re-proposes points it has seen; those are told their
        # stored values at no cost and do not count), with a cap on trials so a converged search ends.
        # Points skipped by parameter-only constraints do not count either (they are told as failed).
        def counted() -> int:
            return sum(1 for r in run.records.values() if r["status"] != "skipped")
        asked = 0
        while counted() < n_trials and asked < 10 * n_trials:
            n = min(pop, n_trials - counted())
            trials = [study.ask() for _ in range(n)]
            asked += n
            points = [run.factory.make({p.path: _suggest(t, p) for p in sweep.searched}, trial=t.number)
                      for t in trials]
            run.evaluate(points, bar, count_skipped=False)
            for t, p in zip(trials, points):
                rec = run.records[p.key]
                if rec["status"] == "ok":
                    values = [rec["metrics"].get(o.key, math.nan) for o in sweep.objectives]
                    if any(v != v or math.isinf(v) for v in values):
                        study.tell(t, state=optuna.trial.TrialState.FAIL)
                        continue
                    if sweep.constraints:
                        t.set_user_attr("violations", run.violations(p.params, rec["metrics"]))
                    study.tell(t, values)
                else:
                    study.tell(t, state=optuna.trial.TrialState.FAIL)


def run_sweep(spec: str | Path | dict | SweepSpec | ResolvedSweep, out_dir: str | Path, jobs: int | None = None,
              max_points: int | None = None, executor: str | None = None, *, progress: bool = False,
              plots: bool = True, retry_failed: bool = False, overwrite: bool = False) -> SweepResult:
    """Run (or resume) a sweep into `out_dir`; returns counts, this sweep's table and its Pareto set.

    Reruns reuse every stored point with the same key; `retry_failed` re-evaluates points that
    failed with an error (crashed batches are always retried). The folder is locked while the
    sweep runs; a folder holding a different sweep is refused unless `overwrite` (see
    `analysis.sweep_folder`).
    """
    sweep = spec if isinstance(spec, ResolvedSweep) else resolve_sweep(spec, executor=executor, jobs=jobs,
                                                                        max_points=max_points)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise SparsimInputError("the output path is a file, not a folder", path=out, field="--out")
    point_s = base_point_seconds(sweep)      # before anything is written: the base arch runs every workload
    out.mkdir(parents=True, exist_ok=True)
    from analysis.sweep_folder import FolderLock, claim_folder
    with FolderLock(out):
        record = _sweep_record(sweep)
        claim_folder(out, record, overwrite)
        return _run_locked(sweep, out, record, jobs, max_points, progress, plots, retry_failed, point_s)


def base_point_seconds(sweep: ResolvedSweep) -> float:
    """Seconds one design point takes: the base arch simulated on every workload (it sizes the
    batches). It also proves the base arch runs them: one clear error, naming the workload, if not."""
    from simulator.simulate import simulate
    from simulator.spec import arch_from_dict
    from simulator.trace import trace_from_dict
    arch = arch_from_dict(sweep.base_raw)
    traces = [trace_from_dict(w.data) for w in sweep.workloads]
    t0 = time.perf_counter()
    for i, trace in enumerate(traces):
        try:
            simulate(trace, arch)
        except SparsimInputError as exc:
            raise SparsimInputError(f"the base arch cannot run this workload: {exc.one_line()}",
                                    path=sweep.spec_path, field=f"workloads[{i}]") from None
    return max(time.perf_counter() - t0, 1e-5)


def _run_locked(sweep: ResolvedSweep, out: Path, record: dict, jobs, max_points, progress: bool, plots: bool,
                retry_failed: bool, point_s: float | None = None) -> SweepResult:
    t_start = time.perf_counter()
    run = _Run(sweep, out, jobs, progress, retry_failed, point_s)
    _write_json_atomic(out / "sweep.json", record)
    try:
        if sweep.strategy in ("grid", "random"):
            points = (grid_points(sweep, run.factory, max_points) if sweep.strategy == "grid"
                      else random_points(sweep, run.factory, sweep.n_points))
            if any(run.reusable(run.stored().get(p.key)) is False for p in points):
                run.start_executor()
            bar = _Progress(progress, len(points), f"{sweep.name} ({sweep.strategy})")
            try:
                run.evaluate(points, bar)
            finally:
                bar.close()
        else:
            run.start_executor()
            bar = _Progress(progress, sweep.n_points, f"{sweep.name} (nsga2)")
            try:
                _nsga2(run, bar, sweep.n_points)
            finally:
                bar.close()
    finally:
        run.close()
    return _finish(run, out, t_start, plots)


def _sweep_record(sweep: ResolvedSweep) -> dict:
    return {"name": sweep.name, "spec_path": sweep.spec_path, "spec": sweep.spec_dict,
            "base_arch": sweep.base_arch_path, "base_raw": sweep.base_raw,
            "workloads": [{"name": w.name, "path": w.path, "weight": w.weight} for w in sweep.workloads],
            "parameters": [p.path for p in sweep.params],
            "objectives": [{"name": o.name, "key": o.key, "direction": o.direction} for o in sweep.objectives],
            "constraints": [c.text for c in sweep.constraints], "strategy": sweep.strategy,
            "n_points": sweep.n_points, "seed": sweep.seed, "executor": sweep.executor,
            "color_by": sweep.color_by, "code_version": code_version(),
            "base_digest": sweep.base_digest, "workload_digests": [w.digest for w in sweep.workloads]}


def _write_json_atomic(path: Path, obj) -> None:
    write_atomic(path, finite_json(obj, indent=1))


MAIN_METRICS = PARETO_COLUMNS


def _finish(run: _Run, out: Path, t_start: float, make_plots: bool) -> SweepResult:
    """Judge every point against the current constraints, then write pareto.csv, the Parquet table,
    the plots and summary.json."""
    sweep = run.sweep
    recs, frame, good, pareto = _judge(run)
    param_cols = [p.path for p in sweep.params]
    obj = [(o.key, o.direction) for o in sweep.objectives]
    metric_cols = list(dict.fromkeys([k for k, _ in obj] + [m for m in MAIN_METRICS if m in frame.columns]))
    cols = ["key"] + [c for c in param_cols if c in frame.columns] + metric_cols
    text = pareto[cols].to_csv(index=False) if len(pareto) else ",".join(cols) + "\n"
    write_atomic(out / "pareto.csv", text)
    summary = _summary(run, recs, frame, good, pareto, _best(sweep, good, param_cols, metric_cols))
    with ResultsStore(out) as store:
        store.export_parquet(out / "results.parquet", keys=list(run.records))
    plots = _plots(sweep, frame, out / "plots") if make_plots and len(good) else []
    summary["plots"] = [str(p.relative_to(out)) for p in plots]
    summary["wall_seconds"] = round(time.perf_counter() - t_start, 3)
    summary = finite(summary)
    _write_json_atomic(out / "summary.json", summary)
    return SweepResult(out_dir=out, summary=summary, frame=frame, pareto=pareto, plots=plots)


def _judge(run: _Run):
    """This sweep's records in generation order, their table, the feasible ones, and the Pareto set.
    Feasibility comes from the current constraints (stored metrics never need re-simulation)."""
    recs = [r for r in run.records.values() if r["status"] != "skipped"]
    recs.sort(key=lambda r: (r.get("trial") is None, r.get("trial") or 0))  # generation order, any executor
    for r in recs:
        if r["status"] == "ok":
            v = run.violations(r["params"], r["metrics"])
            r["feasible"], r["violation"] = not any(v), float(sum(v))
        else:
            r["feasible"] = None
    frame = records_frame(recs)
    obj = [(o.key, o.direction) for o in run.sweep.objectives]
    if len(frame):
        good = frame[(frame["status"] == "ok") & (frame["feasible"] == True)]  # noqa: E712
    else:
        good = frame
    if len(good):
        values = good[[k for k, _ in obj]].to_numpy(dtype=np.float64)
        mask = non_dominated(values, [d == "max" for _, d in obj])
        pareto = good[mask].sort_values(obj[0][0], ascending=obj[0][1] == "min", kind="stable")
    else:
        pareto = good.iloc[0:0] if len(frame) else pd.DataFrame()
    frame["pareto"] = frame["key"].isin(set(pareto["key"])) if len(frame) else []
    return recs, frame, good, pareto


def _best(sweep: ResolvedSweep, good: pd.DataFrame, param_cols: list, metric_cols: list) -> dict:
    """The best feasible design per objective; ties broken by the other objectives in order, so the
    best point is never a dominated one (it is on the Pareto front whenever its objectives are finite)."""
    best = {}
    for o in sweep.objectives:
        if len(good) and good[o.key].notna().any():
            order = [o] + [x for x in sweep.objectives if x.key != o.key]
            ranked = good.sort_values([x.key for x in order], ascending=[x.direction == "min" for x in order],
                                      na_position="last", kind="stable")
            row = ranked.iloc[0]
            best[o.name] = {"key": row["key"], "value": row[o.key], "metric": o.key,
                            "params": {c: row[c] for c in param_cols if c in row.index},
                            "metrics": {m: row[m] for m in metric_cols if m in row.index}}
    return best


def _summary(run: _Run, recs: list, frame: pd.DataFrame, good: pd.DataFrame, pareto: pd.DataFrame,
             best: dict) -> dict:
    sweep = run.sweep
    statuses = frame["status"].value_counts().to_dict() if len(frame) else {}
    return {
        "name": sweep.name, "strategy": sweep.strategy, "executor": sweep.executor,
        "jobs": run.used_jobs, "points": len(recs),
        "evaluated": run.evaluated, "reused": run.reused,
        "failed": int(statuses.get("failed", 0) + statuses.get("crashed", 0)),
        "crashed": int(statuses.get("crashed", 0)),
        "skipped_by_parameter_constraints": run.skipped,
        "feasible": int(len(good)), "infeasible": int(((frame["status"] == "ok") & (frame["feasible"] == False)).sum())  # noqa: E712
        if len(frame) else 0,
        "pareto_size": int(len(pareto)),
        "objectives": [{"name": o.name, "metric": o.key, "direction": o.direction} for o in sweep.objectives],
        "constraints": [c.text for c in sweep.constraints],
        "best": best,
        "evaluation_seconds": round(run.eval_seconds, 4),
        "points_per_second": round(run.evaluated / run.eval_seconds, 2) if run.eval_seconds > 0 else None,
        "wall_seconds": None,
        "code_version": run.factory.code,
        "store": "results.sqlite",
    }


def _plots(sweep: ResolvedSweep, frame: pd.DataFrame, pdir: Path) -> list[Path]:
    """Energy vs latency, the first two objectives (when they differ), and each parameter's effect."""
    from analysis import plots as P
    param_cols = [p.path for p in sweep.params]
    obj = [(o.key, o.direction) for o in sweep.objectives]
    color = sweep.color_by or (param_cols[0] if param_cols else None)
    ok = frame[frame["status"] == "ok"]
    names = [o.name for o in sweep.objectives]
    plots: list[Path] = []
    if {"latency_s", "energy_pj"} <= set(frame.columns):
        fig = P.pareto_scatter(ok, x="latency_s", y="energy_pj", color_by=color, feasible_col="feasible",
                               params=param_cols, sweep_front_col="pareto", sweep_objectives=names)
        plots += P.save(fig, pdir / "pareto_energy_latency")
    keys = [k for k, _ in obj]
    if len(keys) >= 2 and set(keys[:2]) != {"latency_s", "energy_pj"}:
        fig = P.pareto_scatter(ok, x=keys[0], y=keys[1], color_by=color, directions=(obj[0][1], obj[1][1]),
                               feasible_col="feasible", params=param_cols, sweep_front_col="pareto",
                               sweep_objectives=names)
        plots += P.save(fig, pdir / f"pareto_{keys[0]}_{keys[1]}")
    searched = [p.path for p in sweep.searched]
    if searched:
        fig = P.parameter_effects(ok, searched, keys)
        plots += P.save(fig, pdir / "parameter_effects")
    return plots


__all__ = ["run_sweep", "SweepResult", "combine_totals", "evaluate_batch", "grid_points", "random_points",
           "TEST_DELAY_ENV"]
