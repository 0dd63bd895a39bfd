"""Systolic PE array (rows x cols) with output-, weight- or input-stationary dataflow.

Compute cycles are SCALE-Sim v3's stall-free count (REFERENCE.md), with M output rows,
N output columns, K the reduction length and an R x C array:
- OS: folds = ceil(M/R) * ceil(N/C), each R + C + K - 2 cycles (skew in, K MACs, drain)
- WS: folds = ceil(K/R) * ceil(N/C), each 2R + C + M - 2 (weights load R, stream M rows)
- IS: folds = ceil(K/R) * ceil(M/C), each 2R + C + N - 2
- total = folds * per-fold - 1.
Memory stalls, traffic and reuse come from `simulator.memory`; energy from counts.
Operand sparsity is not exploited here (the op runs dense and the result says so);
sparse-aware arrays are separate engines.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from simulator.cost import OpCost
from simulator.engines.vector import vector_op_cost
from simulator.memory import array_memory_cost, ceil_div, operand_bits
from simulator.spec import Arch, DatapathPrecision
from simulator.trace import Op

Dataflow = Literal["os", "ws", "is"]


class ComputeSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["systolic"] = "systolic"
    rows: int = Field(ge=1, description="PE rows")
    cols: int = Field(ge=1, description="PE columns")
    dataflow: Dataflow
    precision: DatapathPrecision = DatapathPrecision()
    vector_lanes: int | None = Field(default=None, ge=1, description="lanes for non-MAC ops (default: cols)")

    @property
    def peak_macs_per_cycle(self) -> int:
        return self.rows * self.cols

    @property
    def pe_count(self) -> int:
        return self.rows * self.cols


def folds_and_cycles_per_fold(dataflow: str, M: int, N: int, K: int, rows: int, cols: int) -> tuple[int, int]:
    """Number of folds and stall-free cycles of each, as SCALE-Sim v3 counts them."""
    if dataflow == "os":
        return ceil_div(M, rows) * ceil_div(N, cols), rows + cols + K - 2
    if dataflow == "ws":
        return ceil_div(K, rows) * ceil_div(N, cols), 2 * rows + cols + M - 2
    if dataflow == "is":
        return ceil_div(K, rows) * ceil_div(M, cols), 2 * rows + cols + N - 2
    raise ValueError(f"unknown dataflow {dataflow!r}")


def compute_cycles(dataflow: str, M: int, N: int, K: int, rows: int, cols: int) -> int:
    """Stall-free cycles of one GEMM (equals SCALE-Sim v3's compute cycles)."""
    folds, per_fold = folds_and_cycles_per_fold(dataflow, M, N, K, rows, cols)
    return folds * per_fold - 1


def value_bits(spec: ComputeSpec) -> dict[str, float]:
    p = spec.precision
    return {"activations": p.activations, "weights": p.weights, "outputs": p.outputs}


def gemm_on_array(op: Op, arch: Arch, spec, *, engine: str, model: str, k_of=None,
                  bits=None, macs_fraction: float = 1.0, notes: str = "") -> OpCost:
    """Cost of an op's GEMMs on a rows x cols array with `spec.dataflow`.

    `k_of(K)` maps the dense reduction length to the one the array iterates (N:M engines
    shrink it); `bits` overrides stored bits per array element; `macs_fraction` scales the
    MACs actually performed. Shared by every engine built on a 2-D array.
    """
    bits = bits or operand_bits(op, arch, value_bits(spec))
    compute = stall = 0.0
    reads = {n: 0.0 for n in arch.memory}
    writes = {n: 0.0 for n in arch.memory}
    mem_notes = set()
    for g in op.gemm_shapes():
        K = k_of(g.K) if k_of else g.K
        folds, per_fold = folds_and_cycles_per_fold(spec.dataflow, g.M, g.N, K, spec.rows, spec.cols)
        mem = array_memory_cost(arch, g.M, g.N, K, spec.dataflow, spec.rows, spec.cols,
                                np.full(folds, float(per_fold)), bits, spec.precision.accumulator)
        compute += (folds * per_fold - 1) * g.count
        stall += mem.stall_cycles * g.count
        for name in arch.memory:
            reads[name] += mem.reads_bytes[name] * g.count
            writes[name] += mem.writes_bytes[name] * g.count
        if mem.notes:
            mem_notes.add(mem.notes)
    dense = float(op.dense_macs)
    all_notes = "; ".join([n for n in [notes, *sorted(mem_notes)] if n])
    return OpCost(engine=engine, model=model, compute_cycles=compute, stall_cycles=stall,
                  macs=dense * macs_fraction, dense_macs=dense, peak_macs_per_cycle=spec.peak_macs_per_cycle,
                  reads_bytes=reads, writes_bytes=writes, notes=all_notes)


def estimate(op: Op, arch: Arch) -> OpCost:
    spec: ComputeSpec = arch.compute
    if op.is_vector:
        return vector_op_cost(op, arch, spec.vector_lanes or spec.cols, spec.precision.activations, "systolic")
    sparse = [name for name in ("activations", "weights") if getattr(op.sparsity, name).kind != "dense"]
    notes = f"{'/'.join(sparse)} sparsity not exploited by a dense systolic array (runs dense)" if sparse else ""
    return gemm_on_array(op, arch, spec, engine="systolic",
                         model=f"systolic-{spec.dataflow} SCALE-Sim-exact compute + fold-level memory model",
                         notes=notes)


def compute_area_mm2(arch: Arch, pe_mm2: float) -> float:
    return arch.compute.pe_count * pe_mm2
