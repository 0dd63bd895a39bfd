"""The op graph: a networkx DAG of a trace's data dependencies, its critical path and fusion.

Nodes are op names (attribute `op`: the `Op`). An op's `depends_on` lists the ops whose
outputs it reads; `None` means "the op listed before it" (a plain chain), `[]` means it
reads only external inputs. Residual branches and parallel attention heads/experts are
just ops with several successors or several predecessors.

What is modelled:
- `build_graph`: the DAG; a dependency on a missing op or a cycle is one `SparsimInputError`.
- `schedule_graph`: as-soon-as-possible start/finish of every op given its duration,
  with unlimited parallel hardware (every ready op starts at once), and the critical
  path: the latency no amount of parallel hardware can beat. `simulator.system` adds the
  finite cores and the shared DRAM.
- `global_buffer_plan`: the same fusion through a buffer shared by all cores
  (`simulator.system`'s global buffer): the tensor moves over the buffer instead of DRAM.
- `fusion_plan`: inter-op fusion. An edge u -> v is fusable when v is u's only consumer,
  both run equally often, and u's output tensor fits in the usable half (double
  buffering) of an on-chip level that holds activations while outputs are kept on chip
  (in it, or in an accumulator that drains into it), so v reads it from there: u's DRAM
  write and v's DRAM read of that tensor disappear.

Approximations: the saving in time of a fused op is its saved DRAM bytes divided by the
DRAM bandwidth, taken off its memory-stall cycles only (never off compute), i.e. the
bytes saved were on the critical transfer path; its other traffic is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

from simulator.errors import SparsimInputError, nearest
from simulator.trace import Op, Trace


def build_graph(trace: Trace) -> nx.DiGraph:
    """The DAG of `trace` (edges producer -> consumer), validated: no missing op, no cycle."""
    graph = nx.DiGraph()
    names = [op.name for op in trace.ops]
    for i, op in enumerate(trace.ops):
        graph.add_node(op.name, op=op, index=i)
    for i, op in enumerate(trace.ops):
        deps = ([names[i - 1]] if i > 0 else []) if op.depends_on is None else op.depends_on
        for dep in deps:
            if dep not in graph:
                guess = nearest(dep, names)
                raise SparsimInputError(f"op '{op.name}' depends on '{dep}', which is not in the trace",
                                        field=f"ops[{op.name}].depends_on",
                                        hint=f"did you mean '{guess}'?" if guess else "name an op of the trace")
            if dep == op.name:
                raise SparsimInputError(f"op '{op.name}' depends on itself", field=f"ops[{op.name}].depends_on",
                                        hint="an op reads the outputs of earlier ops only")
            graph.add_edge(dep, op.name)
    try:
        cycle = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        return graph
    path = " -> ".join([u for u, _ in cycle] + [cycle[0][0]])
    raise SparsimInputError(f"dependency cycle: {path}", field=f"ops[{cycle[0][1]}].depends_on",
                            hint="depends_on must form a DAG; remove one of these dependencies")


def topological_ops(graph: nx.DiGraph) -> list[Op]:
    """Ops in a dependency-respecting order that keeps the trace order where it is free to."""
    order = nx.lexicographical_topological_sort(graph, key=lambda n: graph.nodes[n]["index"])
    return [graph.nodes[n]["op"] for n in order]


@dataclass
class GraphSchedule:
    """ASAP schedule on unlimited hardware. Times in seconds."""
    start_s: dict[str, float]
    finish_s: dict[str, float]
    critical_path: list[str]
    latency_s: float            # critical-path latency
    serial_latency_s: float     # sum of all op durations (one op at a time)
    fused_edges: list[tuple[str, str]] = field(default_factory=list)
    saved_dram_bytes: float = 0.0

    @property
    def parallelism(self) -> float:
        """Average ops in flight: serial latency / critical-path latency."""
        return self.serial_latency_s / self.latency_s if self.latency_s > 0 else 1.0


def schedule_graph(graph: nx.DiGraph, duration_s: dict[str, float]) -> GraphSchedule:
    """Start each op when its last producer finishes; the critical path ends at the latest finish."""
    start: dict[str, float] = {}
    finish: dict[str, float] = {}
    via: dict[str, str | None] = {}
    for name in nx.lexicographical_topological_sort(graph, key=lambda n: graph.nodes[n]["index"]):
        preds = list(graph.predecessors(name))
        if preds:
            last = max(preds, key=lambda p: (finish[p], -graph.nodes[p]["index"]))
            start[name], via[name] = finish[last], last
        else:
            start[name], via[name] = 0.0, None
        finish[name] = start[name] + duration_s[name]
    if not finish:
        return GraphSchedule({}, {}, [], 0.0, 0.0)
    end = max(finish, key=lambda n: (finish[n], graph.nodes[n]["index"]))
    path = [end]
    while via[path[-1]] is not None:
        path.append(via[path[-1]])
    return GraphSchedule(start, finish, path[::-1], finish[end], float(sum(duration_s.values())))


# ----------------------------------------------------------------------------- fusion

def output_bytes(op: Op, arch) -> float:
    """Bytes of one execution's output tensor at `arch`'s output precision (else the op's)."""
    datapath = arch.compute.datapath_precision
    bits = datapath.outputs if datapath is not None else op.precision.outputs
    return op.operand_elements()["outputs"] * bits / 8.0


def fusion_level(arch) -> str | None:
    """The on-chip level an output can stay in for the next op to read: one that holds outputs and
    activations, else the outermost on-chip level holding activations when outputs are kept on chip
    in a level of their own (an accumulator drains into the activation buffer, as TPU v1's
    accumulators drain into its Unified Buffer: Jouppi et al., ISCA 2017)."""
    for name, level in arch.memory.items():
        if not level.offchip and "outputs" in level.holds and "activations" in level.holds:
            return name
    onchip = [(n, lv) for n, lv in arch.memory.items() if not lv.offchip and not lv.per_pe]
    if any("outputs" in lv.holds for _, lv in onchip):
        return next((n for n, lv in reversed(onchip) if "activations" in lv.holds), None)
    return None


def fusion_plan(graph: nx.DiGraph, arch) -> dict[tuple[str, str], float]:
    """Fusable edges u -> v and the bytes of u's output tensor each keeps on chip (per execution)."""
    level = fusion_level(arch)
    if level is None:
        return {}
    spec = arch.memory[level]
    usable = spec.capacity_bytes * (0.5 if spec.double_buffered else 1.0)
    plan = {}
    for u in graph.nodes:
        succ = list(graph.successors(u))
        if len(succ) != 1:
            continue
        v = succ[0]
        op_u, op_v = graph.nodes[u]["op"], graph.nodes[v]["op"]
        if op_u.repeat != op_v.repeat or op_u.skip_probability != op_v.skip_probability:
            continue
        out = output_bytes(op_u, arch)
        if 0 < out <= usable:
            plan[(u, v)] = out
    return plan


def global_buffer_plan(graph: nx.DiGraph, capacity_bytes: float, tensor_bytes,
                       exclude: set | frozenset = frozenset()) -> dict[tuple[str, str], float]:
    """Edges u -> v whose tensor is kept in a global buffer shared by all cores, with its bytes.

    Same eligibility as `fusion_plan` (v is u's only consumer, equal repeat and skip), with the
    whole-system capacity: every op's fused inputs plus its fused output must fit together
    (they are live at once while it runs). Edges are taken greedily in dependency order.
    `tensor_bytes(op)` gives an op's output tensor in bytes; `exclude` lists edges already
    fused inside a core.
    """
    plan: dict[tuple[str, str], float] = {}
    live_in = {n: 0.0 for n in graph.nodes}
    for u in nx.lexicographical_topological_sort(graph, key=lambda n: graph.nodes[n]["index"]):
        succ = list(graph.successors(u))
        if len(succ) != 1 or (u, succ[0]) in exclude:
            continue
        v = succ[0]
        op_u, op_v = graph.nodes[u]["op"], graph.nodes[v]["op"]
        if op_u.repeat != op_v.repeat or op_u.skip_probability != op_v.skip_probability:
            continue
        out = float(tensor_bytes(op_u))
        if 0 < out and live_in[u] + out <= capacity_bytes and live_in[v] + out <= capacity_bytes:
            plan[(u, v)] = out
            live_in[v] += out
    return plan


def fused_costs(trace: Trace, arch, costs: dict, graph: nx.DiGraph | None = None):
    """Per-op `OpCost`s with fused edges' DRAM round trips removed.

    Returns (new costs by op name, fused edges, saved DRAM bytes over all executions).
    """
    from dataclasses import replace
    graph = graph if graph is not None else build_graph(trace)
    plan = fusion_plan(graph, arch)
    dram = arch.offchip_name
    level = arch.memory[dram]
    bytes_per_cycle = float("inf") if level.ideal else level.bandwidth_bytes_per_cycle
    saved_w = {n: 0.0 for n in costs}
    saved_r = {n: 0.0 for n in costs}
    for (u, v), out in plan.items():
        saved_w[u] += out
        saved_r[v] += out
    new = {}
    total_saved = 0.0
    for name, cost in costs.items():
        w = min(saved_w[name], cost.writes_bytes.get(dram, 0.0))
        r = min(saved_r[name], cost.reads_bytes.get(dram, 0.0))
        if w == 0 and r == 0:
            new[name] = cost
            continue
        reads = dict(cost.reads_bytes)
        writes = dict(cost.writes_bytes)
        reads[dram] = reads.get(dram, 0.0) - r
        writes[dram] = writes.get(dram, 0.0) - w
        stall = max(0.0, cost.stall_cycles - (r + w) / bytes_per_cycle)
        note = (*cost.notes, "fused with a neighbour (tensor kept on chip)")
        new[name] = replace(cost, stall_cycles=stall, reads_bytes=reads, writes_bytes=writes, notes=note)
        op = graph.nodes[name]["op"]
        total_saved += (r + w) * op.repeat * (1.0 - op.skip_probability)
    return new, sorted(plan), total_saved


def analyze(trace: Trace, arch, *, fusion: bool = False) -> GraphSchedule:
    """Critical-path schedule of `trace` on `arch` with per-op durations from the analytic model."""
    from simulator.engines import load_engine
    graph = build_graph(trace)
    estimate = load_engine(arch.compute.kind).estimate
    costs = {op.name: estimate(op, arch) for op in trace.ops}
    edges: list = []
    saved = 0.0
    if fusion:
        costs, edges, saved = fused_costs(trace, arch, costs, graph)
    durations = {op.name: costs[op.name].cycles * op.repeat * (1.0 - op.skip_probability) / arch.clock_hz
                 for op in trace.ops}
    sched = schedule_graph(graph, durations)
    sched.fused_edges = edges
    sched.saved_dram_bytes = saved
    return sched


__all__ = ["build_graph", "topological_ops", "schedule_graph", "GraphSchedule", "fusion_plan",
           "fusion_level", "global_buffer_plan", "output_bytes", "fused_costs", "analyze"]
