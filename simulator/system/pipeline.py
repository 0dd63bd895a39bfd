"""Policy `pipeline`: contiguous layer stages, one per core, with micro-batches flowing through."""

from __future__ import annotations

from typing import Callable

import math

import simpy

from simulator.graph import output_bytes
from simulator.trace import Op
from simulator.system.spec import System
from simulator.system.result import Interval, ScheduleOutcome
from simulator.system.jobs import Job, make_job
from simulator.system.machine import Machine


def _units(ordered: list[Op]) -> list[list[Op]]:
    """Layers for pipelining: consecutive ops sharing `layer`; a layer repeated r times is r layers."""
    groups: list[list[Op]] = []
    for op in ordered:
        if groups and op.layer is not None and groups[-1][-1].layer == op.layer:
            groups[-1].append(op)
        else:
            groups.append([op])
    units: list[list[Op]] = []
    for g in groups:
        reps = {op.repeat for op in g}
        if len(reps) == 1 and (r := reps.pop()) > 1:
            one = [op.model_copy(update={"repeat": 1}) for op in g]
            for i in range(r):
                units.append([o.model_copy(update={"name": f"{o.name}#{i}"}) for o in one])
        else:
            units.append(g)
    return units


def _balanced_partition(weights: list[float], parts: int) -> list[int]:
    """Contiguous split of `weights` into at most `parts` pieces minimising the largest sum (DP).
    Returns the start index of each piece."""
    n = len(weights)
    parts = min(parts, n)
    prefix = [0.0]
    for w in weights:
        prefix.append(prefix[-1] + w)
    INF = math.inf
    best = [[INF] * (n + 1) for _ in range(parts + 1)]
    cut = [[0] * (n + 1) for _ in range(parts + 1)]
    best[0][0] = 0.0
    for p in range(1, parts + 1):
        for j in range(1, n + 1):
            for i in range(p - 1, j):
                v = max(best[p - 1][i], prefix[j] - prefix[i])
                if v < best[p][j]:
                    best[p][j], cut[p][j] = v, i
    starts, j = [], n
    for p in range(parts, 0, -1):
        i = cut[p][j]
        starts.append(i)
        j = i
    return sorted(starts)


def pipeline_schedule(system: System, ordered: list[Op],
                      progress: Callable[[str], None] | None = None) -> ScheduleOutcome:
    """Layers cut into balanced contiguous stages, one per core; micro-batches flow through them.
    `progress` (when given) is told each stage's ops once the stages are cut."""
    units = _units(ordered)
    first = system.cores[0]
    weights = [sum(make_job(0, first, op).time_s for op in unit) for unit in units]
    starts = _balanced_partition(weights, len(system.cores)) + [len(units)]
    stages = [[op for unit in units[starts[s]:starts[s + 1]] for op in unit] for s in range(len(starts) - 1)]
    stage_jobs = [[make_job(s, system.cores[s], op) for op in ops] for s, ops in enumerate(stages)]
    env = simpy.Environment()
    machine = Machine(system, env)
    m = system.microbatches
    done = [[env.event() for _ in range(m)] for _ in stages]
    finish_mb = [0.0] * m

    def stage_proc(s: int):
        for j in range(m):
            if s > 0:
                yield done[s - 1][j]
                start = env.now
                yield from machine.noc_transfer(s, output_bytes(stages[s - 1][-1], system.cores[s - 1].arch))
                if env.now > start:
                    machine.intervals.append(Interval(system.cores[s].name, f"recv mb{j}", "noc", start, env.now, "noc"))
            for job in stage_jobs[s]:
                yield from machine.run_job(Job(job.core, job.op, f"{job.label} mb{j}", job.time_s, job.dram_bytes,
                                               job.dynamic_energy_pj, job.macs))
            done[s][j].succeed()
            if s == len(stages) - 1:
                finish_mb[j] = env.now

    for s in range(len(stages)):
        if progress is not None:
            progress(f"stage {s}: {stages[s][0].name} .. {stages[s][-1].name}")
        env.process(stage_proc(s))
    env.run()
    rows = [{"stage": s, "core": system.cores[s].name, "ops": len(ops), "first_op": ops[0].name, "last_op": ops[-1].name,
             "stage_time_s": sum(j.time_s for j in stage_jobs[s])} for s, ops in enumerate(stages)]
    all_jobs = [j for js in stage_jobs for j in js]
    extra = {"stages": len(stages), "microbatches": m, "first_result_s": finish_mb[0],
             "steady_interval_s": (finish_mb[-1] - finish_mb[0]) / (m - 1) if m > 1 else finish_mb[0]}
    return ScheduleOutcome(makespan_s=env.now, rows=rows, intervals=machine.intervals, dram_busy_s=machine.dram_busy_s,
                           dynamic_energy_pj=m * sum(j.dynamic_energy_pj for j in all_jobs),
                           dram_bytes=m * sum(j.dram_bytes for j in all_jobs), extra=extra)
