"""The worker side of a sweep: evaluate design points (one `simulate()` per workload) and combine
their totals into one set of metrics per design, per the metric registry's combine rules."""

from __future__ import annotations

import math
import os
import socket
import time
import traceback
from pathlib import Path
from typing import Any

from analysis.metrics import METRICS, PER_WORKLOAD, combine_rule
from analysis.sweep_spec import apply_point, arch_metrics
from simulator.errors import SparsimInputError

PER_WORKLOAD_KEYS = PER_WORKLOAD
TEST_DELAY_ENV = "SPARSIM_SWEEP_TEST_DELAY_S"  # testing hook: seconds to sleep per point in workers


def combine_totals(per_workload: list[tuple[str, float, dict]]) -> dict:
    """Metrics of a point over its (name, weight, totals) workloads, by each metric's registered
    `combine` rule (weighted sum, the design's own value, weighted mean, count; ratios recomputed
    from the combined totals), plus the sweep's derived metrics and per-workload columns."""
    if len(per_workload) == 1 and per_workload[0][1] == 1.0:
        m = {k: float(v) for k, v in per_workload[0][2].items() if isinstance(v, (int, float))}
    else:
        m: dict[str, float] = {}
        wsum = sum(w for _, w, _ in per_workload)
        keys = dict.fromkeys(k for _, _, t in per_workload for k, v in t.items() if isinstance(v, (int, float)))
        for k in keys:
            if combine_rule(k) == "sum":
                m[k] = float(sum(w * t.get(k, 0.0) for _, w, t in per_workload))
        for k, metric in METRICS.items():
            if metric.combine == "design":
                m[k] = float(per_workload[0][2][k])
            elif metric.combine == "count":
                m[k] = float(sum(t.get(k, 0) for _, _, t in per_workload))
            elif metric.combine == "mean":
                m[k] = float(sum(w * t.get(k, 0.0) for _, w, t in per_workload) / wsum)
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
            for k in ctx.get("zero_if_absent", ()):
                rec["metrics"].setdefault(k, 0.0)
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
