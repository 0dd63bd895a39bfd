"""The 2-D PE array every array engine (systolic, N:M tensor core) is built on.

`compute_cycles` / `folds_and_cycles_per_fold` are SCALE-Sim v3's stall-free counts (see
`simulator.engines.systolic` for the formulas and their source); `gemm_on_array` costs an op's
GEMMs on a rows x cols array (compute, stalls, traffic per level) through the searched mapping
(`simulator.mapping`) or the fixed fold-order memory model (`simulator.memory`);
`compressed_k_bits` gives stored bits per array element when an engine shrinks K (N:M).
A spec passed here needs `rows`, `cols`, `dataflow`, `precision`, `mapping` and `peak_macs_per_cycle`;
`ArraySpecBase` derives the contract's properties from the first three, and `pe_array_area_mm2`
is the area hook of an array engine.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Literal

import numpy as np

from simulator.bounds import check_folds
from simulator.cost import OpCost
from simulator.engines.base import ComputeSpecBase
from simulator.formats import bits_per_element
from simulator.memory import array_memory_cost, ceil_div, operand_bits
from simulator.sparsity import index_bits
from simulator.spec import Arch, DatapathPrecision
from simulator.trace import Op

Dataflow = Literal["os", "ws", "is"]


class ArraySpecBase(ComputeSpecBase):
    """The `compute:` block of a rows x cols PE array. The engine's subclass declares the fields
    `rows`, `cols` and `precision` (a fixed datapath); the engine contract's properties follow."""

    @property
    def pe_count(self) -> int:
        return self.rows * self.cols

    @property
    def peak_macs_per_cycle(self) -> int:
        return self.rows * self.cols

    @property
    def datapath_precision(self) -> DatapathPrecision:
        return self.precision


def pe_array_area_mm2(arch: Arch, pe_mm2: float) -> float:
    """Silicon area of the compute part (the `compute_area_mm2` hook): PEs x area per PE."""
    return arch.compute.pe_count * pe_mm2


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


def value_bits(spec) -> dict[str, float]:
    p = spec.precision
    return {"activations": p.activations, "weights": p.weights, "outputs": p.outputs}


def gemm_on_array(op: Op, arch: Arch, spec, *, engine: str, model: str, k_of=None,
                  bits=None, macs_fraction: float = 1.0, notes: tuple[str, ...] = (),
                  fold_cycles_of: Callable | None = None) -> OpCost:
    """Cost of an op's GEMMs on a rows x cols array with `spec.dataflow`.

    `k_of(K)` maps the dense reduction length to the one the array iterates (N:M engines
    shrink it); `bits` overrides stored bits per array element; `macs_fraction` scales the
    MACs actually performed; `fold_cycles_of(g, K, folds, per_fold)` returns per-fold
    compute cycles in `memory.fold_grid` order (zero-skipping arrays), default `per_fold`
    each. Shared by every engine built on a 2-D array. With `mapping.mode: search` (the default)
    the memory side is the searched mapping of `simulator.mapping`; `fixed` keeps the fold-order
    model of `simulator.memory`.
    """
    bits = bits or operand_bits(op, arch, value_bits(spec))
    if spec.mapping.mode == "search":
        from simulator.mapping.engine import mapped_gemm_on_array
        cost = mapped_gemm_on_array(op, arch, spec, engine=engine, model=model, k_of=k_of, bits=bits,
                                    macs_fraction=macs_fraction, fold_cycles_of=fold_cycles_of)
        return dataclasses.replace(cost, notes=(*notes, *cost.notes))
    compute = stall = 0.0
    reads = {n: 0.0 for n in arch.memory}
    writes = {n: 0.0 for n in arch.memory}
    mem_notes = set()
    for g in op.gemm_shapes():
        K = k_of(g.K) if k_of else g.K
        folds, per_fold = folds_and_cycles_per_fold(spec.dataflow, g.M, g.N, K, spec.rows, spec.cols)
        check_folds(folds, spec.rows, spec.cols)
        if fold_cycles_of is None:
            fold_cycles = np.full(folds, float(per_fold))
            compute += (folds * per_fold - 1) * g.count
        else:
            fold_cycles = np.asarray(fold_cycles_of(g, K, folds, per_fold), dtype=np.float64)
            # SCALE-Sim's "- 1", but never below zero (a 1x1 array skipping almost everything)
            compute += max(float(fold_cycles.sum()) - 1, 0.0) * g.count
        mem = array_memory_cost(arch, g.M, g.N, K, spec.dataflow, spec.rows, spec.cols,
                                fold_cycles, bits, spec.precision.accumulator)
        stall += mem.stall_cycles * g.count
        for name in arch.memory:
            reads[name] += mem.reads_bytes[name] * g.count
            writes[name] += mem.writes_bytes[name] * g.count
        mem_notes.update(mem.notes)
    dense = float(op.dense_macs)
    all_notes = (*notes, *sorted(mem_notes))
    return OpCost(engine=engine, model=model, compute_cycles=compute, stall_cycles=stall,
                  macs=dense * macs_fraction, dense_macs=dense, peak_macs_per_cycle=spec.peak_macs_per_cycle,
                  reads_bytes=reads, writes_bytes=writes, notes=all_notes)


def compressed_k_bits(op: Op, arch: Arch, spec, *, ratio: float,
                      compressed: dict[str, tuple[int, int, float]] | None = None) -> dict[str, dict[str, float]]:
    """Stored bits per *array element* when the array iterates K' = K / `ratio` instead of K.

    `compressed[operand] = (n, m, slot_fraction)`: that operand is held as N:M slots (a value
    plus ceil(log2 m) index bits each, `slot_fraction` slots per dense element) at every level
    whose format is unset or `nm`; a level with `dense` stores it uncompressed, another format
    uses its own size. Other A/B operands are physically all there, so each array element
    carries `ratio` of their values: the buffer must still supply M values per group.
    """
    compressed = compressed or {}
    vb = value_bits(spec)
    shapes = op.gemm_shapes()
    row_len = shapes[0].K if shapes else 1
    out: dict[str, dict[str, float]] = {}
    for operand in ("activations", "weights", "outputs"):
        sp = getattr(op.sparsity, operand)
        per: dict[str, float] = {}
        for name, level in arch.memory.items():
            if operand not in level.holds:
                continue
            fmt = level.formats.get(operand)
            if operand in compressed:
                n, m, slot_fraction = compressed[operand]
                if fmt in (None, "nm"):
                    per[name] = (vb[operand] + index_bits(m)) * slot_fraction * ratio
                elif fmt == "dense":
                    per[name] = vb[operand] * ratio
                else:
                    per[name] = bits_per_element(sp, fmt, vb[operand], row_len=row_len) * ratio
            else:
                fmt = fmt or "dense"
                if fmt == "nm" and sp.kind != "nm":
                    fmt = "dense"
                b = bits_per_element(sp, fmt, vb[operand], row_len=row_len)
                per[name] = b * (1.0 if operand == "outputs" else ratio)
        out[operand] = per
    return out
