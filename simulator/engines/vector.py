"""Ops without MACs (elementwise, softmax, norm): the one vector-op cost every engine uses.

`vector_work` is the work of such an op: ceil(elements / lanes) x ceil(flops per element)
lane-cycles (at least one per element group), `inputs` tensors read and one written, each of
`elements` values. `vector_op_cost` streams those bytes once through DRAM and lets the slower
of compute and transfer bound the op (a memory-bound approximation); engines with their own
memory path (an FPGA's on-chip buffer, a GPU's achievable HBM rate) take `vector_work` and
stream it through `simulator.memory` themselves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from simulator.cost import OpCost
from simulator.memory import streaming_memory_cost
from simulator.spec import Arch
from simulator.trace import Op


@dataclass(frozen=True)
class VectorWork:
    lane_cycles: float      # compute cycles on the lanes (0 when the engine does not count them)
    read_bytes: float
    write_bytes: float


def vector_work(op: Op, lanes: int | None, read_bits: float, write_bits: float) -> VectorWork:
    """The work of one execution of a vector op on `lanes` lanes (None: compute not counted)."""
    d = op.dims
    cycles = math.ceil(d.elements / lanes) * max(1, math.ceil(d.flops_per_element)) if lanes else 0
    return VectorWork(float(cycles), d.elements * d.inputs * read_bits / 8.0, d.elements * write_bits / 8.0)


def vector_op_cost(op: Op, arch: Arch, lanes: int, value_bits: float, engine: str) -> OpCost:
    work = vector_work(op, lanes, value_bits, value_bits)
    mem = streaming_memory_cost(arch, work.read_bytes, work.write_bytes, work.lane_cycles)
    return OpCost(engine=engine, model="vector-lanes streaming (memory-bound approximation)",
                  compute_cycles=work.lane_cycles, stall_cycles=mem.stall_cycles, macs=0.0, dense_macs=0.0,
                  peak_macs_per_cycle=float(lanes), reads_bytes=mem.reads_bytes, writes_bytes=mem.writes_bytes)
