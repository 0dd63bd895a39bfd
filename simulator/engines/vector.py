"""Memory-bound ops without MACs (elementwise, softmax, norm) on any engine's vector lanes.

Approximation: each element costs ceil(flops_per_element) lane-cycles; operands stream
once through DRAM; the slower of the two bounds the op. Used by every engine for
`elementwise`, `softmax` and `norm` ops.
"""

from __future__ import annotations

import math

from simulator.cost import OpCost
from simulator.memory import streaming_memory_cost
from simulator.spec import Arch
from simulator.trace import Op


def vector_op_cost(op: Op, arch: Arch, lanes: int, value_bits: float, engine: str) -> OpCost:
    d = op.dims
    compute = math.ceil(d.elements / lanes) * max(1, math.ceil(d.flops_per_element))
    bytes_read = d.elements * d.inputs * value_bits / 8.0
    bytes_written = d.elements * value_bits / 8.0
    mem = streaming_memory_cost(arch, bytes_read, bytes_written, compute)
    return OpCost(engine=engine, model="vector-lanes streaming (memory-bound approximation)",
                  compute_cycles=float(compute), stall_cycles=mem.stall_cycles, macs=0.0, dense_macs=0.0,
                  peak_macs_per_cycle=float(lanes), reads_bytes=mem.reads_bytes, writes_bytes=mem.writes_bytes)
