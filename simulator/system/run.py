"""`simulate_system`: plan fusion and the global buffer, run the policy, total time and energy."""

from __future__ import annotations

from typing import Callable

from simulator.energy import static_power_mw
from simulator.trace import Trace
from simulator.system.spec import System
from simulator.system.result import SystemResult
from simulator.system.jobs import GlobalBufferUse, make_job, op_cost
from simulator.system.barrier import barrier_schedule
from simulator.system.pipeline import pipeline_schedule
from simulator.system.graph_policy import graph_schedule


def _fusion_plan(trace: Trace, system: System, graph, fusion: bool):
    """(fused costs by op name or None, the fused edges, extra totals) on a one-core system."""
    from simulator.graph import fused_costs
    if not (fusion and len(system.cores) == 1 and system.policy != "pipeline"):
        return None, [], {}
    arch = system.cores[0].arch
    costs, edges, saved = fused_costs(trace, arch, {op.name: op_cost(op, arch) for op in trace.ops}, graph)
    return {name: costs[name] for name in costs}, edges, {"fused_edges": len(edges), "fusion_saved_dram_bytes": saved}


def _global_buffer_use(system: System, graph, local: set, extra: dict) -> dict[str, GlobalBufferUse]:
    """Which ops keep inputs/outputs in the global buffer (`simulator.graph.global_buffer_plan`)."""
    from simulator.graph import global_buffer_plan, output_bytes
    gb_use: dict[str, GlobalBufferUse] = {}
    if not (system.has_global_buffer and system.policy != "pipeline"):
        return gb_use
    arch0 = system.cores[0].arch
    plan = global_buffer_plan(graph, system.global_buffer_bytes, lambda op: output_bytes(op, arch0), exclude=local)
    pj = system.global_buffer_energy_pj_per_bit()
    ins: dict[str, float] = {}
    for (u, v), nbytes in plan.items():
        ins[v] = ins.get(v, 0.0) + nbytes
    for name in {u for u, _ in plan} | set(ins):
        gb_use[name] = GlobalBufferUse(in_bytes=ins.get(name, 0.0), out=any(u == name for u, _ in plan),
                                       pj_per_bit=pj)
    extra["global_buffer_edges"] = len(plan)
    return gb_use


def simulate_system(trace: Trace, system: System, *, policy: str | None = None, fusion: bool = False,
                    progress: Callable[[str], None] | None = None) -> SystemResult:
    """Run `trace` on `system` under its policy (or `policy`), returning makespan, timeline and energy.

    `fusion` keeps fusable outputs on chip (`simulator.graph.fusion_plan`); it applies on a
    one-core system, where producer and consumer share the core's buffers (split over
    several cores, a consumer needs every core's part of the tensor). A system with a global
    buffer keeps the tensors that fit there (`simulator.graph.global_buffer_plan`) under the
    layer_by_layer, expert_parallel and graph policies, with or without `fusion`. `progress`
    (when given) is told what the policy schedules as it goes (ops, or pipeline stages).
    """
    from simulator.graph import build_graph, topological_ops
    if policy is not None and policy != system.policy:
        system = system.with_(policy=policy)
    graph = build_graph(trace)
    ordered = topological_ops(graph)
    fused, edges, extra = _fusion_plan(trace, system, graph, fusion)
    gb_use = _global_buffer_use(system, graph, set(edges) if fused is not None else set(), extra)
    if system.policy in ("layer_by_layer", "expert_parallel"):
        out = barrier_schedule(system, ordered, fused, gb_use, progress)
    elif system.policy == "pipeline":
        out = pipeline_schedule(system, ordered, progress)
        extra = out.extra
    else:
        out = graph_schedule(system, trace, graph, fused, gb_use, progress)
    span = out.makespan_s
    if system.has_global_buffer:
        extra["global_buffer_bytes"] = out.gb_bytes
        extra["global_buffer_utilization"] = out.gb_busy_s / span if span > 0 else 0.0
    core_busy = {c.name: 0.0 for c in system.cores}
    for iv in out.intervals:
        if iv.category == "op":
            core_busy[iv.core] += iv.end_s - iv.start_s
    static = (sum(static_power_mw(c.arch) for c in system.cores) + system.global_buffer_static_mw()) * 1e-3 * span * 1e12
    first = system.cores[0]
    serial = sum(make_job(0, first, op).time_s for op in ordered)
    return SystemResult(system=system.name, workload=trace.name, policy=system.policy,
                        cores=[c.name for c in system.cores], makespan_s=span, ops=out.rows, intervals=out.intervals,
                        core_busy_s=core_busy, dram_bytes=out.dram_bytes, dram_busy_s=out.dram_busy_s,
                        dynamic_energy_pj=out.dynamic_energy_pj, static_energy_pj=static, analytic_serial_s=serial,
                        extra=extra)
