"""Systolic PE array (rows x cols) with output-, weight- or input-stationary dataflow.

Compute cycles are SCALE-Sim v3's stall-free count (docs/references.md#scale-sim-cycles), with M output rows,
N output columns, K the reduction length and an R x C array:
- OS: folds = ceil(M/R) * ceil(N/C), each R + C + K - 2 cycles (skew in, K MACs, drain)
- WS: folds = ceil(K/R) * ceil(N/C), each 2R + C + M - 2 (weights load R, stream M rows)
- IS: folds = ceil(K/R) * ceil(M/C), each 2R + C + N - 2
- total = folds * per-fold - 1.
Memory stalls, traffic and reuse come from `simulator.memory`; energy from counts.

Sparsity (the optional `sparsity:` block; without it the array runs every op dense and
the result says so, and the dense path is exactly the count above):
- `layerwise_nm: true` is SCALE-Sim v3's layer-wise N:M mode on weights: it keeps the
  first N of every M filter rows, so the array iterates K' = (K // M)*N + min(K % M, N)
  instead of K (docs/references.md#scale-sim-layerwise-nm); weights are stored as kept values + ceil(log2 M) index bits,
  and the activation buffer still supplies all K values (per array element: K/K' values),
  one index select per kept MAC. An entry with n == m (SCALE-Sim's default '1:1') is dense.
- `weights|activations: gate`: a PE holding a zero operand is clock-gated: cycles
  unchanged, those MAC slots become `gated_macs` (priced by `energy.gated_mac_fraction`).
- `... : skip`: zeros of that operand are not issued. The stationary/per-PE operand's
  nonzeros are compacted along K per PE row/column, so a fold lasts as long as its busiest
  unit: OS iterates max over the fold's units of their nonzeros (both operands skipped:
  max_a * max_w / K, positions assumed independent), WS needs ceil(max_w / R) K-folds per
  column tile, IS ceil(max_a / R) per row tile (`simulator.sparsity.tile_max_nnz`, numba
  kernels in `simulator.kernels.imbalance`). A streamed operand cannot be skipped in WS
  (activations) or IS (weights): it is gated instead and the result says so. Block sparsity
  uses the same model at block granularity, so all-zero tiles vanish. Each issued value
  costs one index select. Approximations: expected values, per-fold maxima from the
  measured counts or a binomial/block model; memory traffic keeps the dense fold grid with
  per-level compressed sizes (`simulator.formats`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from simulator.bounds import check_folds
from simulator.inputs import StrictFields
from simulator.cost import OpCost
from simulator.engines.base import ComputeSpecBase
from simulator.engines.vector import vector_op_cost
from simulator.formats import bits_per_element
from simulator.memory import array_memory_cost, ceil_div, operand_bits
from simulator.sparsity import block_extents, index_bits, operand_density, tile_max_nnz
from simulator.mapping.spec import MappingSpec
from simulator.spec import Arch, DatapathPrecision
from simulator.trace import Op

Dataflow = Literal["os", "ws", "is"]
SparseHandling = Literal["none", "gate", "skip"]


class SparseSupport(StrictFields):
    """How the array exploits operand zeros (see the module docstring)."""
    model_config = ConfigDict(extra="forbid", frozen=True)
    weights: SparseHandling = "none"
    activations: SparseHandling = "none"
    layerwise_nm: bool = Field(default=False, description="SCALE-Sim v3 layer-wise N:M on weights")

    @property
    def active(self) -> bool:
        return self.layerwise_nm or self.weights != "none" or self.activations != "none"


class ComputeSpec(ComputeSpecBase):
    kind: Literal["systolic"] = "systolic"
    rows: int = Field(ge=1, description="PE rows")
    cols: int = Field(ge=1, description="PE columns")
    dataflow: Dataflow
    precision: DatapathPrecision = DatapathPrecision()
    vector_lanes: int | None = Field(default=None, ge=1, description="lanes for non-MAC ops (default: cols)")
    sparsity: SparseSupport | None = Field(default=None, description="zero gating/skipping, layer-wise N:M")
    mapping: MappingSpec = Field(default_factory=MappingSpec, description="mapping search or fixed fold order, "
                                 "objective, timing, spatial unrolling (docs/mapping.md)")

    @property
    def peak_macs_per_cycle(self) -> int:
        return self.rows * self.cols

    @property
    def datapath_precision(self) -> DatapathPrecision:
        return self.precision

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
                  bits=None, macs_fraction: float = 1.0, notes: str = "",
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
        return mapped_gemm_on_array(op, arch, spec, engine=engine, model=model, k_of=k_of, bits=bits,
                                    macs_fraction=macs_fraction, notes=notes, fold_cycles_of=fold_cycles_of)
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
    support = spec.sparsity
    if sparse and support is not None and (
            (support.layerwise_nm and op.sparsity.weights.kind == "nm")
            or any(getattr(support, o) != "none" for o in sparse)):
        return _sparse_estimate(op, arch, spec, support)
    notes = f"{'/'.join(sparse)} sparsity not exploited by a dense systolic array (runs dense)" if sparse else ""
    return gemm_on_array(op, arch, spec, engine="systolic",
                         model=f"systolic-{spec.dataflow} SCALE-Sim-exact compute + fold-level memory model",
                         notes=notes)


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


def layerwise_k(K: int, n: int, m: int) -> int:
    """SCALE-Sim v3's layer-wise N:M reduction length: the first N rows of every M are kept."""
    return (K // m) * n + min(K % m, n)


SKIPPABLE = {"os": ("weights", "activations"), "ws": ("weights",), "is": ("activations",)}


def _sparse_estimate(op: Op, arch: Arch, spec: ComputeSpec, support: SparseSupport) -> OpCost:
    df = spec.dataflow
    notes: list[str] = []
    models: list[str] = []
    handling = {o: (getattr(support, o) if getattr(op.sparsity, o).kind != "dense" else "none")
                for o in ("weights", "activations")}
    shapes = op.gemm_shapes()
    dense = float(op.dense_macs)
    k_of = bits = None
    kept = 1.0
    sw = op.sparsity.weights
    selects = 0.0
    if support.layerwise_nm and sw.kind == "nm" and sw.n == sw.m:
        # SCALE-Sim reads an N:M entry with n == m (its default '1:1', or '4:4') as dense: K' = K.
        handling["weights"] = "none"
        models.append(f"SCALE-Sim v3 layer-wise N:M: {sw.label} keeps every value (dense, K' = K)")
    elif support.layerwise_nm and sw.kind == "nm":
        n, m = sw.n, sw.m
        k_of = lambda K: layerwise_k(K, n, m)  # noqa: E731
        K0 = shapes[0].K
        bits = compressed_k_bits(op, arch, spec, ratio=K0 / k_of(K0),
                                 compressed={"weights": (n, m, k_of(K0) / K0)})
        kept = sum(g.M * g.N * k_of(g.K) * g.count for g in shapes) / dense
        selects = kept  # each kept weight's index picks its activation from the M supplied
        handling["weights"] = "none"
        models.append(f"SCALE-Sim v3 layer-wise {n}:{m}, K' = (K//{m})*{n} + min(K%{m}, {n})")
    elif support.layerwise_nm and sw.kind != "dense":
        notes.append(f"layer-wise N:M mode needs N:M weights, got {sw.label}")
    for operand in ("weights", "activations"):
        if handling[operand] == "skip" and operand not in SKIPPABLE[df]:
            handling[operand] = "gate"
            notes.append(f"{operand} are streamed in {df.upper()}: their zeros are gated, not skipped")
        if handling[operand] == "none" and getattr(op.sparsity, operand).kind != "dense" and not (
                operand == "weights" and support.layerwise_nm and sw.kind == "nm"):
            notes.append(f"{operand} sparsity not exploited (runs dense)")
    density = {o: operand_density(getattr(op.sparsity, o)) for o in handling}
    skipping = [o for o in ("weights", "activations") if handling[o] == "skip"]
    d_skip = math.prod(density[o] for o in skipping)
    d_gate = math.prod(density[o] for o in handling if handling[o] == "gate")
    issued = kept * d_skip
    for o in handling:
        if handling[o] == "gate":
            models.append(f"{o} zero-gated at density {density[o]:.3g}")

    used: set[str] = set()

    def fold_cycles(g, K, folds, per_fold):
        R, C = spec.rows, spec.cols

        def tile_max(operand: str, units: int, tile: int) -> np.ndarray:
            if operand not in skipping:
                return np.full(ceil_div(units, tile), float(K))
            sp = getattr(op.sparsity, operand)
            k_block, unit_block = block_extents(sp, operand)
            values, model = tile_max_nnz(sp, K, units, tile, k_block=k_block, unit_block=unit_block,
                                         operand=operand)
            used.add(f"{operand} skipped, per-fold max nonzeros: {model}")
            return values

        if df == "os":
            a = tile_max("activations", g.M, R)
            w = tile_max("weights", g.N, C)
            return (R + C - 2 + np.outer(a, w) / max(K, 1)).ravel()
        outer = tile_max("weights", g.N, C) if df == "ws" else tile_max("activations", g.M, C)
        n_in = ceil_div(K, R)
        executed = np.ceil(outer / R - 1e-9)
        return np.repeat(executed * per_fold / n_in, n_in)

    cost = gemm_on_array(op, arch, spec, engine="systolic", model="", k_of=k_of, bits=bits,
                         macs_fraction=issued * d_gate, notes="; ".join(notes),
                         fold_cycles_of=fold_cycles if skipping else None)
    model = f"systolic-{df} sparse: " + "; ".join(models + sorted(used)) + " + fold-level memory model"
    return dataclasses.replace(cost, model=model, gated_macs=dense * issued * (1.0 - d_gate),
                               index_selects=dense * (issued if skipping else selects))


def compute_area_mm2(arch: Arch, pe_mm2: float) -> float:
    return arch.compute.pe_count * pe_mm2
