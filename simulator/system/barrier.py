"""Policies `layer_by_layer` and `expert_parallel`: each op split over the cores, a barrier after it."""

from __future__ import annotations

from typing import Callable

from simulator.errors import SparsimInputError
from simulator.trace import Op
from simulator.system.spec import System
from simulator.system.result import Interval, ScheduleOutcome
from simulator.system.jobs import Job, GlobalBufferUse, make_job, op_key
from simulator.system.sharding import split_dims, shard_slots, expert_ops
from simulator.system.machine import run_parallel


def jobs_for_op(system: System, op: Op, fused: dict | None = None,
                 gb: GlobalBufferUse | None = None) -> list[Job]:
    cores = system.cores
    n = len(cores)
    if fused and op.name in fused:
        return [make_job(0, cores[0], op, cost=fused[op.name], gb=gb)]
    if system.policy == "expert_parallel" and op.kind == "moe_gemm":
        experts = len(op.dims.tokens_per_expert)
        for e in system.placement:
            if not 0 <= e < experts:
                raise SparsimInputError(f"placement names expert {e}, but op '{op.name}' has {experts} experts",
                                        field=f"placement.{e}", hint=f"experts are numbered 0..{experts - 1}")
        jobs = []
        for e, sub in expert_ops(op):
            core = system.core_index(system.placement[e]) if e in system.placement else e % n
            jobs.append(make_job(core, cores[core], sub, label=sub.name, gb=gb, whole=op))
        return jobs
    def estimate(jobs: list[Job]) -> float:
        # the slowest share alone, or all shares' DRAM bytes through the shared DRAM
        return max(max(j.time_s for j in jobs), sum(j.dram_bytes for j in jobs) / system.dram_bytes_per_s)

    def partition(weights, dim) -> list[Job]:
        return [make_job(i, cores[i], s, label=s.name, gb=gb, whole=op)
                for i, s in enumerate(shard_slots(op, n, weights, dim)) if s is not None]

    dims = split_dims(op, n)
    if len({id(c.arch) for c in cores}) == 1:
        # Identical cores: the cut along the dimension whose estimate is lowest (ties: the default
        # order), so activation-heavy layers split by rows and weight-heavy ones by columns.
        candidates = [partition(None, dim) for dim in dims]
        return min(candidates, key=estimate)
    # Heterogeneous cores: of the partitions (shares proportional to each core's speed on the
    # whole op, or even, along each dimension, and the whole op on the fastest core) take the
    # one whose estimate is lowest; tile quantisation can make a proportional share no faster
    # on a big core.
    alone = [make_job(i, c, op, gb=gb) for i, c in enumerate(cores)]
    fastest = min(range(n), key=lambda i: alone[i].time_s)
    candidates = [[alone[fastest]]]
    speed = [1.0 / j.time_s if j.time_s > 0 else 1.0 for j in alone]
    for dim in dims:
        for weights in (speed, None):
            candidates.append(partition(weights, dim))
    return min(candidates, key=lambda jobs: (estimate(jobs), len(jobs)))


def barrier_schedule(system: System, ordered: list[Op], fused: dict | None = None, gb: dict | None = None,
                     progress: Callable[[str], None] | None = None) -> ScheduleOutcome:
    """Ops one after another, each split over the cores (`jobs_for_op`); a barrier after each.
    `progress` (when given) is told each op's name as it is scheduled."""
    cache: dict[str, tuple] = {}
    now = 0.0
    rows, intervals = [], []
    dram_busy = gb_busy = dynamic = nbytes = gb_bytes = 0.0
    gb = gb or {}
    for op in ordered:
        if progress is not None:
            progress(op.name)
        key = op.name if (fused and op.name in fused) or op.name in gb else op_key(op)
        if key not in cache:
            jobs = jobs_for_op(system, op, fused, gb.get(op.name))
            span, ivs, busy, busy_gb = run_parallel(system, jobs)
            cache[key] = (op.name, jobs, span, ivs, busy, busy_gb)
        first_name, jobs, span, ivs, busy, busy_gb = cache[key]
        for iv in ivs:
            label = op.name + iv.name[len(first_name):] if iv.name.startswith(first_name) else iv.name
            intervals.append(Interval(iv.core, label, op.name, now + iv.start_s, now + iv.end_s))
        core_time = {}
        for iv in ivs:
            core_time[iv.core] = core_time.get(iv.core, 0.0) + iv.end_s - iv.start_s
        rows.append({"op": op.name, "kind": op.kind, "layer": op.layer, "start_s": now, "finish_s": now + span,
                     "latency_s": span, "cores_used": len(core_time),
                     "imbalance": (max(core_time.values()) / (sum(core_time.values()) / len(system.cores))
                                   if core_time and sum(core_time.values()) > 0 else 1.0),
                     "dram_bytes": sum(j.dram_bytes for j in jobs),
                     "global_buffer_bytes": sum(j.gb_bytes for j in jobs),
                     "energy_pj": sum(j.dynamic_energy_pj for j in jobs)})
        now += span
        dram_busy += busy
        gb_busy += busy_gb
        dynamic += sum(j.dynamic_energy_pj for j in jobs)
        nbytes += sum(j.dram_bytes for j in jobs)
        gb_bytes += sum(j.gb_bytes for j in jobs)
    return ScheduleOutcome(makespan_s=now, rows=rows, intervals=intervals, dram_busy_s=dram_busy,
                           dynamic_energy_pj=dynamic, dram_bytes=nbytes, gb_busy_s=gb_busy, gb_bytes=gb_bytes)
