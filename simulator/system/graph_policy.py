"""Policy `graph`: list scheduling on the op DAG, each op whole on the first free core."""

from __future__ import annotations

from typing import Callable

import simpy

from simulator.trace import Trace
from simulator.system.spec import System
from simulator.system.jobs import make_job
from simulator.system.result import ScheduleOutcome
from simulator.system.machine import Machine


def graph_schedule(system: System, trace: Trace, graph, fused: dict | None = None, gb: dict | None = None,
                   progress: Callable[[str], None] | None = None) -> ScheduleOutcome:
    """Each op whole on the first free core once its producers finish (list scheduling on the DAG).
    `progress` (when given) is told each op's name as it starts."""
    env = simpy.Environment()
    machine = Machine(system, env)
    free = simpy.Store(env)
    for i in range(len(system.cores)):
        free.put(i)
    done = {name: env.event() for name in graph.nodes}
    rows: dict[str, dict] = {}
    totals = {"energy": 0.0, "bytes": 0.0, "gb_bytes": 0.0}
    gb = gb or {}

    def op_proc(name: str):
        preds = list(graph.predecessors(name))
        if preds:
            yield env.all_of([done[p] for p in preds])
        ready = env.now
        core = yield free.get()
        op = graph.nodes[name]["op"]
        job = make_job(core, system.cores[core], op, cost=(fused or {}).get(name), gb=gb.get(name))
        start = env.now
        if progress is not None:
            progress(name)
        yield from machine.run_job(job)
        totals["energy"] += job.dynamic_energy_pj
        totals["bytes"] += job.dram_bytes
        totals["gb_bytes"] += job.gb_bytes
        rows[name] = {"op": name, "kind": op.kind, "layer": op.layer, "core": system.cores[core].name,
                      "ready_s": ready, "start_s": start, "finish_s": env.now, "latency_s": env.now - start,
                      "dram_bytes": job.dram_bytes, "global_buffer_bytes": job.gb_bytes,
                      "energy_pj": job.dynamic_energy_pj}
        free.put(core)
        done[name].succeed()

    for op in trace.ops:
        env.process(op_proc(op.name))
    env.run()
    ordered = [rows[op.name] for op in trace.ops]
    return ScheduleOutcome(makespan_s=env.now, rows=ordered, intervals=machine.intervals,
                           dram_busy_s=machine.dram_busy_s, dynamic_energy_pj=totals["energy"],
                           dram_bytes=totals["bytes"], gb_busy_s=machine.gb_busy_s, gb_bytes=totals["gb_bytes"])
