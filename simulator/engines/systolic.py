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
from typing import Literal

import numpy as np
from pydantic import Field

from simulator.inputs import StrictSpec
from simulator.cost import OpCost
from simulator.engines.array import (ArraySpecBase, Dataflow, compressed_k_bits, compute_cycles,
                                      folds_and_cycles_per_fold, gemm_on_array, pe_array_area_mm2, value_bits)
from simulator.engines.vector import vector_op_cost
from simulator.memory import ceil_div
from simulator.sparsity import block_extents, operand_density, tile_max_nnz
from simulator.mapping.spec import MappingSpec
from simulator.spec import Arch, DatapathPrecision
from simulator.trace import Op

SparseHandling = Literal["none", "gate", "skip"]


class SparseSupport(StrictSpec):
    """How the array exploits operand zeros (see the module docstring)."""
    weights: SparseHandling = "none"
    activations: SparseHandling = "none"
    layerwise_nm: bool = Field(default=False, description="SCALE-Sim v3 layer-wise N:M on weights")

    @property
    def active(self) -> bool:
        return self.layerwise_nm or self.weights != "none" or self.activations != "none"


class ComputeSpec(ArraySpecBase):
    kind: Literal["systolic"] = "systolic"
    rows: int = Field(ge=1, description="PE rows")
    cols: int = Field(ge=1, description="PE columns")
    dataflow: Dataflow
    precision: DatapathPrecision = DatapathPrecision()
    vector_lanes: int | None = Field(default=None, ge=1, description="lanes for non-MAC ops (default: cols)")
    sparsity: SparseSupport | None = Field(default=None, description="zero gating/skipping, layer-wise N:M")
    mapping: MappingSpec = Field(default_factory=MappingSpec, description="mapping search or fixed fold order, "
                                 "objective, timing, spatial unrolling (docs/mapping.md)")


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
    notes = (f"{'/'.join(sparse)} sparsity not exploited by a dense systolic array (runs dense)",) if sparse else ()
    return gemm_on_array(op, arch, spec, engine="systolic",
                         model=f"systolic-{spec.dataflow} SCALE-Sim-exact compute + fold-level memory model",
                         notes=notes)


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
                         macs_fraction=issued * d_gate, notes=tuple(notes),
                         fold_cycles_of=fold_cycles if skipping else None)
    model = f"systolic-{df} sparse: " + "; ".join(models + sorted(used)) + " + fold-level memory model"
    return dataclasses.replace(cost, model=model, gated_macs=dense * issued * (1.0 - d_gate),
                               index_selects=dense * (issued if skipping else selects))


def energy_components(arch: Arch) -> tuple[str, ...]:
    """Sparse ops count index selects (zero-skipping or layer-wise N:M operand muxes)."""
    return ("index_select",)


compute_area_mm2 = pe_array_area_mm2   # the engine hook: PEs x area per PE


# compute_cycles / folds_and_cycles_per_fold / value_bits live in simulator.engines.array (re-exported here)
__all__ = ["ComputeSpec", "SparseSupport", "estimate", "compute_area_mm2", "layerwise_k", "compute_cycles",
           "folds_and_cycles_per_fold", "value_bits", "gemm_on_array", "compressed_k_bits", "Dataflow"]
