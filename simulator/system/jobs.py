"""Jobs: one core's share of one op, costed by that core's engine (time, DRAM bytes, energy)."""

from __future__ import annotations

from dataclasses import dataclass

from simulator.cost import OpCost
from simulator.engines import load_engine
from simulator.energy import op_energy_pj
from simulator.errors import SparsimInputError
from simulator.memo import ArchMemo
from simulator.simulate import _mac_bits, locate_op_error
from simulator.spec import Arch
from simulator.trace import Op
from simulator.system.spec import Core

_COSTS = ArchMemo(max_entries=4096)


def op_key(op: Op) -> str:
    """What an op's cost depends on: everything but its name, layer and dependencies."""
    return op.model_dump_json(exclude={"name", "layer", "depends_on"})


def op_cost(op: Op, arch: Arch) -> OpCost:
    """The engine's cost of one execution of `op` on `arch`, estimated once per arch object and op
    content (engines are pure functions of both): a policy asks for the same op on the same core
    several times (each candidate cut on one core, pipeline stage weights, the serial reference),
    and a training step asks again for its per-op table."""
    return _COSTS.get(arch, op_key(op), lambda: load_engine(arch.compute.kind).estimate(op, arch))


@dataclass(frozen=True)
class Job:
    """One core's share of one op: its uncontended analytic time and the DRAM bytes it moves."""
    core: int
    op: str
    label: str
    time_s: float
    dram_bytes: float
    dynamic_energy_pj: float
    macs: float = 0.0
    gb_bytes: float = 0.0      # bytes moved to/from the global buffer instead of the DRAM


@dataclass(frozen=True)
class GlobalBufferUse:
    """How one op uses the global buffer: bytes of its kept input tensors (whole op, one
    execution), whether its output is kept there, and the buffer's energy per bit."""
    in_bytes: float = 0.0
    out: bool = False
    pj_per_bit: float = 0.0


def make_job(core_index: int, core: Core, op: Op, label: str | None = None, executions: float | None = None,
             cost=None, gb: GlobalBufferUse | None = None, whole: Op | None = None) -> Job:
    """Cost `op` on `core` with its engine (or take the given `OpCost`) and turn it into a job
    covering all its executions. With `gb`, the op's kept tensors move over the global buffer
    instead of the DRAM; `whole` is the op this one is a shard of (for its share of the inputs)."""
    from dataclasses import replace
    arch = core.arch
    if cost is None:
        try:
            cost = op_cost(op, arch)
        except SparsimInputError as exc:
            raise locate_op_error(exc, op.name) from None
    n = op.executions if executions is None else executions
    dram = arch.offchip_name
    moved = 0.0
    if gb is not None and (gb.in_bytes > 0 or gb.out):
        from simulator.graph import output_bytes
        whole = whole or op
        full = whole.operand_elements()["activations"]
        share = op.operand_elements()["activations"] / full if full > 0 else 1.0
        r = min(share * gb.in_bytes, cost.reads_bytes.get(dram, 0.0))
        w = min(output_bytes(op, arch), cost.writes_bytes.get(dram, 0.0)) if gb.out else 0.0
        if r + w > 0:
            level = arch.memory[dram]
            reads, writes = dict(cost.reads_bytes), dict(cost.writes_bytes)
            reads[dram] = reads.get(dram, 0.0) - r
            writes[dram] = writes.get(dram, 0.0) - w
            # the bytes left the DRAM's critical transfer path: the stall shrinks by their transfer time
            stall = cost.stall_cycles if level.ideal else max(0.0, cost.stall_cycles - (r + w) / level.bytes_per_cycle)
            cost = replace(cost, stall_cycles=stall, reads_bytes=reads, writes_bytes=writes)
            moved = r + w
    nbytes = (cost.reads_bytes.get(dram, 0.0) + cost.writes_bytes.get(dram, 0.0)) * n
    energy = op_energy_pj(cost, arch, _mac_bits(arch, op), n, 0.0)
    dynamic = sum(v for k, v in energy.items() if k != "leakage")
    if moved:
        dynamic += moved * n * 8.0 * gb.pj_per_bit
    return Job(core_index, op.name, label or op.name, cost.cycles * n / arch.clock_hz, nbytes, dynamic, cost.macs * n,
               moved * n)
