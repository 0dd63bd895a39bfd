"""`sparsim simulate --explain OP`: the chosen loop nest of an op, with tile sizes and traffic per level.

The engine is run on the op while `RECORD` collects what `simulator.mapping.engine` mapped (one
entry per loop nest of the op), so the text shows exactly what the result rows were computed from.
"""

from __future__ import annotations

import contextvars

from simulator.errors import SparsimInputError, nearest
from simulator.mapping.cost import MappedCost
from simulator.mapping.loopnest import LoopNest, Unrolling
from simulator.mapping.search import TILED
from simulator.spec import Arch
from simulator.trace import Trace

RECORD: contextvars.ContextVar[list | None] = contextvars.ContextVar("mapping_record", default=None)
CLASS_DIMS = {"K": ("K",), "C": ("C",), "NPQ": ("N", "P", "Q")}
OPERAND_DIMS = {"activations": ("G", "N", "C", "P", "Q"), "weights": ("G", "K", "C"), "outputs": ("G", "N", "K", "P", "Q")}


def record(nest: LoopNest, unroll: Unrolling, cost: MappedCost, compute: float) -> None:
    entries = RECORD.get()
    if entries is not None:
        entries.append((nest, unroll, cost, compute))


def _si(x: float) -> str:
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= factor:
            return f"{x / factor:.3g}{prefix}"
    return f"{x:.3g}"


def _loops(nest: LoopNest, cost: MappedCost) -> list[str]:
    tiles = cost.choice.tiles
    lines, depth = [], 0
    levels = [("G",)] + [CLASS_DIMS[c] for c in cost.choice.order]
    for dims in levels:
        dims = tuple(d for d in dims if -(-nest.size(d) // tiles[d]) > 1)
        if not dims:
            continue
        counts = " x ".join(str(-(-nest.size(d) // tiles[d])) for d in dims)
        sizes = " x ".join(f"{nest.name(d)}{tiles[d]}" for d in dims)
        lines.append("  " * depth + f"for {','.join(nest.name(d) for d in dims)} in {counts} tiles of {sizes}:")
        depth += 1
    lines.append("  " * depth + "on-chip tile: " + " ".join(f"{nest.name(d)}{tiles[d]}" for d in TILED
                                                            if nest.size(d) > 1) + " -> array folds")
    return lines


def explain_nest(arch: Arch, nest: LoopNest, unroll: Unrolling, cost: MappedCost, compute: float) -> str:
    s = cost.choice.stats
    fr, fc = unroll.folds(nest)
    dims = " ".join(f"{nest.name(d)}{nest.size(d)}" for d in ("G", "N", "K", "C", "P", "Q", "R", "S") if nest.size(d) > 1)
    rows = "*".join(nest.name(d) for d in unroll.rows_dims)
    cols = "*".join(nest.name(d) for d in unroll.cols_dims)
    out = [f"loop nest: {dims}" + ("" if nest.gemm else f", stride {nest.stride}") +
           f"; array {unroll.rows}x{unroll.cols}: rows <- {rows}, cols <- {cols}, {fr} x {fc} folds"
           + (" per group" if nest.G > 1 and "G" not in unroll.rows_dims + unroll.cols_dims else "")]
    held = {x: b for x, b in cost.buffers.items()}
    out.append("tiled at: " + ", ".join(f"{x} in {b or 'none (streamed from DRAM)'}" for x, b in held.items()))
    out += _loops(nest, cost)
    mult = {"activations": s["mult_input"], "weights": s["mult_weights"], "outputs": s["mult_outputs"]}
    out.append(f"DRAM: input {_si(s['read_input'])}B (fetched x{mult['activations']:g}), weights "
               f"{_si(s['read_weights'])}B (x{mult['weights']:g}), outputs written {_si(s['write_outputs'])}B"
               + (f", partial sums read back {_si(s['read_outputs'])}B" if s["read_outputs"] else ""))
    for name in arch.memory:
        r, w = cost.reads_bytes[name], cost.writes_bytes[name]
        if r or w:
            out.append(f"  {name}: read {_si(r)}B, write {_si(w)}B")
    note = f" ({'; '.join(cost.notes)})" if cost.notes else ""
    out.append(f"cycles: compute {_si(compute)} + stall {_si(cost.stall_cycles)}{note}")
    return "\n".join(out)


def explain_op(trace: Trace, arch: Arch, op_name: str) -> str:
    """The mapping text of one op of `trace` on `arch` (SparsimInputError if the op is unknown)."""
    from simulator.engines import load_engine
    ops = {op.name: op for op in trace.ops}
    if op_name not in ops:
        guess = nearest(op_name, ops)
        raise SparsimInputError(f"no op named '{op_name}'", field="--explain",
                                hint=f"did you mean '{guess}'?" if guess else "use an op name from the trace")
    op = ops[op_name]
    token = RECORD.set([])
    try:
        cost = load_engine(arch.compute.kind).estimate(op, arch)
        entries = RECORD.get()
    finally:
        RECORD.reset(token)
    head = f"{op.name} ({op.kind}) on {arch.name}: {cost.model}"
    if not entries:
        return head + "\n(no searched mapping: a vector op, another engine, or mapping.mode: fixed)"
    parts = [head] + [explain_nest(arch, *entry) for entry in entries]
    if len(entries) > 1:
        total = sum(e[2].stall_cycles for e in entries)
        parts.append(f"{len(entries)} loop nests (GEMM shapes of the op); stall {_si(total)} in all")
    return "\n".join(parts)
