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

import json
import math
import os
import socket
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd

from analysis.metrics import PARETO_COLUMNS, PER_WORKLOAD, not_summed
from analysis.pareto import non_dominated
from analysis.results_store import ResultsStore, records_frame
from simulator.outputs import write_atomic
from analysis.sweep_spec import (OBJECTIVE_ALIASES, ResolvedSweep, SweepSpec, apply_point, arch_metrics,
                                 code_version, dask_address, digest, get_path, resolve_sweep)
from simulator.errors import SparsimInputError

_NOT_SUMMED = not_summed()         # totals that do not add up across workloads (analysis.metrics)
PER_WORKLOAD_KEYS = PER_WORKLOAD
TEST_DELAY_ENV = "SPARSIM_SWEEP_TEST_DELAY_S"  # testing hook: seconds to sleep per point in workers


@dataclass
class Point:
    key: str
    params: dict          # every swept and derived parameter, by dotted path
    trial: int | None = None


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


# ----------------------------------------------------------------------------- worker side

def combine_totals(per_workload: list[tuple[str, float, dict]]) -> dict:
    """Metrics of a point: weighted sums over workloads (area once, ratios recomputed), plus derived ones."""
    if len(per_workload) == 1 and per_workload[0][1] == 1.0:
        m = {k: float(v) for k, v in per_workload[0][2].items() if isinstance(v, (int, float))}
    else:
        m: dict[str, float] = {}
        wsum = sum(w for _, w, _ in per_workload)
        keys = dict.fromkeys(k for _, _, t in per_workload for k, v in t.items() if isinstance(v, (int, float)))
        for k in keys:
            if k in _NOT_SUMMED:
                continue
            m[k] = float(sum(w * t.get(k, 0.0) for _, w, t in per_workload))
        m["area_mm2"] = float(per_workload[0][2]["area_mm2"])
        m["ops"] = float(sum(t.get("ops", 0) for _, _, t in per_workload))
        m["utilization"] = float(sum(w * t.get("utilization", 0.0) for _, w, t in per_workload) / wsum)
        m["edp_js"] = m["energy_pj"] * 1e-12 * m["latency_s"]
        m["power_w"] = m["energy_pj"] * 1e-12 / m["latency_s"] if m["latency_s"] > 0 else math.nan
        for name, _, t in per_workload:
            for k in PER_WORKLOAD_KEYS:
                if k in t:
                    m[f"{name}/{k}"] = float(t[k])
    lat, energy, dense = m.get("latency_s", 0.0), m.get("energy_pj", 0.0), m.get("dense_macs", 0.0)
    m["throughput_macs_per_s"] = dense / lat if lat > 0 else math.nan
    m["macs_per_j"] = dense / (energy * 1e-12) if energy > 0 else math.nan
    m["inferences_per_s"] = 1.0 / lat if lat > 0 else math.nan
    return m


_WORKER_CACHE: dict[str, Any] = {}
_WARM = False


def _worker_context(ctx: dict):
    """Traces validated once per worker and context; numba kernels compiled once per worker."""
    global _WARM
    cached = _WORKER_CACHE.get(ctx["id"])
    if cached is None:
        from simulator.trace import trace_from_dict
        traces = [(w["name"], w["weight"], trace_from_dict(w["data"])) for w in ctx["workloads"]]
        cached = _WORKER_CACHE[ctx["id"]] = traces
    if not _WARM:
        _warm_kernels()
        _WARM = True
    return cached


def _warm_kernels() -> None:
    import importlib
    import pkgutil
    import simulator.kernels as kernels
    for mod in pkgutil.iter_modules(kernels.__path__):
        try:
            warm = getattr(importlib.import_module(f"simulator.kernels.{mod.name}"), "warm_up", None)
            if warm is not None:
                warm()
        except Exception:  # a kernel another part owns failing to warm must not stop the sweep
            pass


def evaluate_batch(ctx: dict, batch: list[tuple[str, dict]]) -> list[dict]:
    """Evaluate [(key, overrides)] and return one record per point (never raises for a bad point)."""
    from simulator.simulate import simulate
    from simulator.spec import arch_from_dict

    traces = _worker_context(ctx)
    worker = f"{socket.gethostname()}:{os.getpid()}"
    delay = float(os.environ.get(TEST_DELAY_ENV, "0") or 0)
    out = []
    for key, overrides in batch:
        t0 = time.perf_counter()
        rec = {"key": key, "worker": worker}
        try:
            arch = arch_from_dict(apply_point(ctx["base_raw"], overrides))
            per = [(name, weight, simulate(trace, arch).totals) for name, weight, trace in traces]
            rec["metrics"] = {**combine_totals(per), **arch_metrics(arch)}
            rec["status"] = "ok"
        except SparsimInputError as exc:
            rec["status"], rec["error"] = "failed", exc.one_line()
        except Exception as exc:  # a bug in an engine: record it, keep going
            tb = traceback.extract_tb(exc.__traceback__)[-1]
            rec["status"] = "failed"
            rec["error"] = f"internal error {type(exc).__name__}: {exc} (at {Path(tb.filename).name}:{tb.lineno})"
        if delay:
            time.sleep(delay)
        rec["elapsed_s"] = time.perf_counter() - t0
        rec["finished_at"] = time.time()
        out.append(rec)
    return out


_POOL_CTX: dict | None = None
_POOL_QUEUE = None


def _pool_init(ctx: dict, parent: int | None = None, queue=None) -> None:
    global _POOL_CTX, _POOL_QUEUE
    import signal

    from analysis.sweep_folder import close_inherited_locks
    from analysis.worker_guard import die_with_parent
    close_inherited_locks()
    die_with_parent(parent)  # a killed driver (even kill -9) takes its workers with it
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle (it shuts the pool down)
    _POOL_CTX, _POOL_QUEUE = ctx, queue
    _worker_context(ctx)


def _pool_eval(batch):
    """Evaluate a batch point by point, sending each record to the driver the moment it is done."""
    out = []
    for item in batch:
        rec = evaluate_batch(_POOL_CTX, [item])[0]
        if _POOL_QUEUE is not None:
            _POOL_QUEUE.put(rec)
        out.append(rec)
    return out


def _pool_ping(_):
    return os.getpid()


# ----------------------------------------------------------------------------- executors

class SerialExecutor:
    name = "serial"
    jobs = 1

    def __init__(self, ctx):
        self.ctx = ctx

    def run(self, batches: list) -> Iterator[tuple[list, list[dict]]]:
        for b in batches:
            for item in b:  # in-process: every point is stored the moment it finishes
                yield [item], evaluate_batch(self.ctx, [item])

    def salvage(self, timeout_s: float = 30.0) -> list[list[dict]]:
        return []  # an interrupted in-process point has no result

    def close(self):
        pass


class LocalExecutor:
    """A process pool; forked workers start with the simulator imported and warm."""
    name = "local"

    def __init__(self, ctx, jobs: int):
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor
        self.jobs = jobs
        method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        context = mp.get_context(method)
        self.queue = context.Queue()  # finished points, one at a time, as workers finish them
        self.pool = ProcessPoolExecutor(max_workers=jobs, mp_context=context,
                                        initializer=_pool_init, initargs=(ctx, os.getpid(), self.queue))
        list(self.pool.map(_pool_ping, range(jobs)))  # start every worker now, before any progress thread

    def run(self, batches):
        """Yield ([point], [record]) for every point as soon as a worker finishes it (so the driver
        commits each point on its own); a batch lost with its worker yields its unfinished points
        as crashed."""
        import queue as queue_mod
        futures = self._futures = {self.pool.submit(_pool_eval, b): b for b in batches}
        items = {k: (k, v) for b in batches for k, v in b}
        seen: set[str] = set()
        pending = set(futures)
        try:
            while pending or len(seen) < len(items):
                try:
                    rec = self.queue.get(timeout=0.05)
                    if rec["key"] in items and rec["key"] not in seen:  # (not a late message of an earlier run)
                        seen.add(rec["key"])
                        yield [items[rec["key"]]], [rec]
                    continue
                except queue_mod.Empty:
                    pass
                for f in [f for f in pending if f.done()]:
                    pending.discard(f)
                    try:
                        recs = f.result()
                    except Exception as exc:  # the worker process died (BrokenProcessPool) or similar
                        recs = _crashed([i for i in futures[f] if i[0] not in seen], exc)
                    for rec in recs:  # records whose queue message has not arrived yet
                        if rec["key"] not in seen:
                            seen.add(rec["key"])
                            yield [items[rec["key"]]], [rec]
        finally:
            for f in futures:
                f.cancel()

    def salvage(self, timeout_s: float = 30.0) -> list[list[dict]]:
        """After Ctrl-C: cancel batches not started, let running ones finish (workers ignore SIGINT
        and the pool waits for them anyway) and return their records, so that work is kept."""
        from concurrent.futures import wait
        futures = getattr(self, "_futures", {})
        for f in futures:
            f.cancel()
        running = [f for f in futures if not f.cancelled()]
        wait(running, timeout=timeout_s)
        return [f.result() for f in running if f.done() and not f.cancelled() and f.exception() is None]

    def close(self):
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.queue.close()


def _dask_ctx(ctx):
    return ctx


def _dask_eval(ctx, batch):
    return evaluate_batch(ctx, batch)


class DaskExecutor:
    """dask.distributed: the context is sent once; each batch is retried if its worker dies."""
    name = "dask"

    def __init__(self, ctx, address: str, retries: int = 3):
        from distributed import Client
        try:
            self.client = Client(address, timeout="10s")
        except OSError as exc:
            raise SparsimInputError(f"cannot connect to the Dask scheduler at {address}: {exc}", field="executor",
                                    hint="start `dask scheduler` and `dask worker`, or use --executor local") from None
        self.retries = retries
        self.jobs = max(1, sum(self.client.nthreads().values()))
        # The context is a task (not scattered data), so the scheduler can recompute it if every
        # worker holding it dies; it is sent once and reused by every batch.
        self.ctx_future = self.client.submit(_dask_ctx, ctx, key=f"sparsim-ctx-{ctx['id']}-{os.getpid()}",
                                             pure=False, retries=retries)

    def run(self, batches):
        from distributed import as_completed
        futures = self._futures = {}
        for b in batches:
            f = self.client.submit(_dask_eval, self.ctx_future, b, retries=self.retries, pure=False)
            futures[f] = b
        try:
            for f in as_completed(list(futures)):
                b = futures[f]
                try:
                    yield b, f.result()
                except Exception as exc:  # KilledWorker after the retries, a lost scheduler, ...
                    yield b, _crashed(b, exc)
        finally:
            for f in futures:
                f.cancel()

    def salvage(self, timeout_s: float = 30.0) -> list[list[dict]]:
        """After Ctrl-C: keep the batches the cluster has already finished; cancel the rest."""
        futures = getattr(self, "_futures", {})
        done = [f for f in futures if f.status == "finished"]
        for f in futures:
            if f.status != "finished":
                f.cancel()
        out = []
        for f in done:
            try:
                out.append(f.result(timeout=timeout_s))
            except Exception:  # lost with its worker: it is simply evaluated on the next run
                pass
        return out

    def close(self):
        self.client.close()


def _crashed(batch, exc) -> list[dict]:
    msg = f"worker crashed: {type(exc).__name__}: {exc}"
    return [{"key": k, "status": "crashed", "error": msg, "finished_at": time.time()} for k, _ in batch]


def make_executor(sweep: ResolvedSweep, ctx: dict, jobs: int | None):
    addr = dask_address(sweep.executor)
    if addr:
        return DaskExecutor(ctx, addr)
    jobs = jobs or sweep.jobs or os.cpu_count() or 1
    if sweep.executor == "serial" or jobs <= 1:
        return SerialExecutor(ctx)
    return LocalExecutor(ctx, jobs)


# ----------------------------------------------------------------------------- point generation

def _jsonable(v):
    if isinstance(v, np.generic):
        return v.item()
    return v


class PointFactory:
    """Turns searched parameter values into a full point (derived values, key)."""

    def __init__(self, sweep: ResolvedSweep):
        self.sweep = sweep
        self.code = code_version()
        self.wl = [(w.digest, w.weight, w.name) for w in sweep.workloads]
        self.workload_hash = digest(self.wl)

    def make(self, values: dict, trial: int | None = None) -> Point:
        params = {k: _jsonable(v) for k, v in values.items()}
        for p in self.sweep.derived:
            env = {}
            for name in p.expr.names:
                env[name] = params[name] if name in params else get_path(self.sweep.base_raw, name)
            try:
                v = p.expr.evaluate(env)
            except ValueError as exc:
                raise SparsimInputError(f"derived value: {exc}", path=self.sweep.spec_path,
                                        field=f"parameters.{p.path}", hint="fix the expression") from None
            if isinstance(v, float) and v.is_integer() and all(isinstance(env[n], int) for n in env):
                v = int(v)
            params[p.path] = _jsonable(v)
        key = digest({"arch": self.sweep.base_digest, "set": params, "wl": self.wl, "code": self.code})
        return Point(key=key, params=params, trial=trial)

    def arch_hash(self, params: dict) -> str:
        return digest({"arch": self.sweep.base_digest, "set": params})


def grid_points(sweep: ResolvedSweep, factory: PointFactory, max_points: int | None) -> list[Point]:
    axes = [(p.path, p.grid_values()) for p in sweep.searched]
    sizes = [len(v) for _, v in axes]
    total = math.prod(sizes)  # a Python int: no overflow however many axes
    if max_points is not None and max_points < total:
        # evenly spread, exact in integers (the grid may have more points than an int64 holds)
        from fractions import Fraction
        idx = sorted({round(Fraction(i * (total - 1), max_points - 1)) if max_points > 1 else 0
                      for i in range(max_points)})
    else:
        idx = range(total)
    points = []
    for i in idx:
        rem, values = int(i), {}
        for (path, vals), n in zip(reversed(axes), reversed(sizes)):  # last axis varies fastest
            rem, j = divmod(rem, n)
            values[path] = vals[j]
        values = {path: values[path] for path, _ in axes}
        points.append(factory.make(values, trial=int(i)))
    return points


def _sample(rng: np.random.Generator, p):
    if p.kind == "values":
        return p.values[int(rng.integers(len(p.values)))]
    r = p.range
    if r.discrete:
        vals = r.grid_values()
        return vals[int(rng.integers(len(vals)))]
    if r.log:
        v = math.exp(rng.uniform(math.log(r.min), math.log(r.max)))
    else:
        v = rng.uniform(r.min, r.max)
    return min(max(r.cast(v), r.cast(r.min)), r.cast(r.max))


def random_points(sweep: ResolvedSweep, factory: PointFactory, n: int) -> list[Point]:
    """`n` distinct points drawn with the sweep's seed (fewer only when the space has fewer).

    A draw that repeats an earlier point is dropped and drawn again, so `random: 64` means 64
    designs, not 64 draws; the sequence depends only on the seed, so reruns replay it exactly."""
    rng = np.random.default_rng(sweep.seed)
    size = _space_size(sweep)
    want = n if size is None else min(n, size)
    points: list[Point] = []
    seen: set[str] = set()
    draws = 0
    while len(points) < want and draws < max(1000, 50 * n):
        draws += 1
        pt = factory.make({p.path: _sample(rng, p) for p in sweep.searched}, trial=len(points))
        if pt.key not in seen:
            seen.add(pt.key)
            points.append(pt)
    return points


def _space_size(sweep: ResolvedSweep) -> int | None:
    """Number of distinct searched combinations, or None when a range is sampled continuously."""
    size = 1
    for p in sweep.searched:
        if p.kind == "values":
            size *= len(p.values)
        elif p.range.discrete:
            size *= len(p.range.grid_values())
        elif p.range.is_int:
            size *= int(p.range.max) - int(p.range.min) + 1
        else:
            return None
    return size


def _suggest(trial, p):
    if p.kind == "values":
        return p.values[trial.suggest_categorical(p.path, list(range(len(p.values))))]
    r = p.range
    if r.discrete and (r.log or r.num is not None):
        vals = r.grid_values()
        return vals[trial.suggest_categorical(p.path, list(range(len(vals))))]
    if r.is_int:
        return trial.suggest_int(p.path, int(r.min), int(r.max), log=r.log, step=int(r.step or 1))
    if r.step is not None:
        return r.cast(trial.suggest_float(p.path, r.min, r.max, step=r.step))
    return r.cast(trial.suggest_float(p.path, r.min, r.max, log=r.log))


# ----------------------------------------------------------------------------- driver

class _Progress:
    """A rich progress bar with rate and ETA, or nothing."""

    def __init__(self, enabled: bool, total: int, label: str):
        self.bar = None
        if enabled:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)
            from simulator.cli import err_console
            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TaskProgressColumn(), TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                                TextColumn("ETA"), TimeRemainingColumn(), console=err_console, transient=False)
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
    def __init__(self, sweep: ResolvedSweep, out_dir: Path, jobs, progress: bool, retry_failed: bool):
        self.sweep = sweep
        self.out = out_dir
        self.jobs = jobs
        self.show_progress = progress
        self.retry_failed = retry_failed
        self.factory = PointFactory(sweep)
        self.store = ResultsStore(out_dir)
        self.ctx = {"id": digest([sweep.base_digest, [w.digest for w in sweep.workloads], self.factory.code]),
                    "base_raw": sweep.base_raw,
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
        if not hasattr(self, "_point_s"):
            from simulator.simulate import simulate
            from simulator.spec import arch_from_dict
            from simulator.trace import trace_from_dict
            if not hasattr(self, "_traces"):
                self._traces = [trace_from_dict(w["data"]) for w in self.ctx["workloads"]]
            t0 = time.perf_counter()
            arch = arch_from_dict(self.sweep.base_raw)
            for t in self._traces:
                simulate(t, arch)
            self._point_s = max(time.perf_counter() - t0, 1e-5)
        jobs = getattr(self.executor, "jobs", 1)
        size = int(max(1, min(64, 0.2 / self._point_s)))
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
    out.mkdir(parents=True, exist_ok=True)
    from analysis.sweep_folder import FolderLock, claim_folder
    with FolderLock(out):
        record = _sweep_record(sweep)
        claim_folder(out, record, overwrite)
        return _run_locked(sweep, out, record, jobs, max_points, progress, plots, retry_failed)


def _run_locked(sweep: ResolvedSweep, out: Path, record: dict, jobs, max_points, progress: bool, plots: bool,
                retry_failed: bool) -> SweepResult:
    t_start = time.perf_counter()
    run = _Run(sweep, out, jobs, progress, retry_failed)
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
    write_atomic(path, json.dumps(obj, indent=1, default=_json_default, allow_nan=False))


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    return str(o)


def _clean(obj):
    """JSON-safe copy: NaN/inf become None."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


MAIN_METRICS = PARETO_COLUMNS


def _finish(run: _Run, out: Path, t_start: float, make_plots: bool) -> SweepResult:
    sweep = run.sweep
    recs = [r for r in run.records.values() if r["status"] != "skipped"]
    recs.sort(key=lambda r: (r.get("trial") is None, r.get("trial") or 0))  # generation order, any executor
    # feasibility from the current constraints (stored metrics never need re-simulation)
    for r in recs:
        if r["status"] == "ok":
            v = run.violations(r["params"], r["metrics"])
            r["feasible"], r["violation"] = not any(v), float(sum(v))
        else:
            r["feasible"] = None
    frame = records_frame(recs)
    param_cols = [p.path for p in sweep.params]
    obj = [(o.key, o.direction) for o in sweep.objectives]
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

    # pareto.csv
    metric_cols = list(dict.fromkeys([k for k, _ in obj] + [m for m in MAIN_METRICS if m in frame.columns]))
    cols = ["key"] + [c for c in param_cols if c in frame.columns] + metric_cols
    text = pareto[cols].to_csv(index=False) if len(pareto) else ",".join(cols) + "\n"
    write_atomic(out / "pareto.csv", text)

    best = {}
    for o in sweep.objectives:
        if len(good) and good[o.key].notna().any():
            # ties on this objective are broken by the other objectives in order, so the best point is
            # never a dominated one (it is on the Pareto front whenever its objectives are all finite)
            order = [o] + [x for x in sweep.objectives if x.key != o.key]
            ranked = good.sort_values([x.key for x in order], ascending=[x.direction == "min" for x in order],
                                      na_position="last", kind="stable")
            row = ranked.iloc[0]
            best[o.name] = {"key": row["key"], "value": row[o.key], "metric": o.key,
                            "params": {c: row[c] for c in param_cols if c in row.index},
                            "metrics": {m: row[m] for m in metric_cols if m in row.index}}
    statuses = frame["status"].value_counts().to_dict() if len(frame) else {}
    summary = {
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
    plots: list[Path] = []
    with ResultsStore(out) as store:
        store.export_parquet(out / "results.parquet", keys=list(run.records))
    if make_plots and len(good):
        from analysis import plots as P
        color = sweep.color_by or (param_cols[0] if param_cols else None)
        pdir = out / "plots"
        if {"latency_s", "energy_pj"} <= set(frame.columns):
            fig = P.pareto_scatter(frame[frame["status"] == "ok"], x="latency_s", y="energy_pj", color_by=color,
                                   feasible_col="feasible", params=param_cols, sweep_front_col="pareto",
                                   sweep_objectives=[o.name for o in sweep.objectives])
            plots += P.save(fig, pdir / "pareto_energy_latency")
        keys = [k for k, _ in obj]
        if len(keys) >= 2 and set(keys[:2]) != {"latency_s", "energy_pj"}:
            fig = P.pareto_scatter(frame[frame["status"] == "ok"], x=keys[0], y=keys[1], color_by=color,
                                   directions=(obj[0][1], obj[1][1]), feasible_col="feasible",
                                   params=param_cols, sweep_front_col="pareto",
                                   sweep_objectives=[o.name for o in sweep.objectives])
            plots += P.save(fig, pdir / f"pareto_{keys[0]}_{keys[1]}")
        searched = [p.path for p in sweep.searched]
        if searched:
            fig = P.parameter_effects(frame[frame["status"] == "ok"], searched, [k for k, _ in obj])
            plots += P.save(fig, pdir / "parameter_effects")
    summary["plots"] = [str(p.relative_to(out)) for p in plots]
    summary["wall_seconds"] = round(time.perf_counter() - t_start, 3)
    summary = _clean(summary)
    _write_json_atomic(out / "summary.json", summary)
    return SweepResult(out_dir=out, summary=summary, frame=frame, pareto=pareto, plots=plots)


__all__ = ["run_sweep", "SweepResult", "combine_totals", "evaluate_batch", "grid_points", "random_points"]
