"""Cost of an op on a 2-D array engine with a searched mapping (`compute.mapping.mode: search`).

Compute cycles: with a dataflow preset and `timing: scalesim`, SCALE-Sim v3's exact per-fold count
of the engine (the mapping never changes them: tiles hold whole folds); `timing: pipelined` removes
the fill and drain (rows + cols - 2) of every fold but the first, as when the next fold's fill
overlaps the current drain; an explicit `spatial` unrolling uses `Unrolling.compute_cycles`.
Memory: each loop nest of the op (a conv's real dims, else each GEMM shape) is mapped by
`simulator.mapping.cost`. Stored bytes per dense element come from the engine's per-level bits
(formats as in `simulator.formats`; N:M engines' per-array-element bits are scaled back by K/K').
"""

from __future__ import annotations

import numpy as np

from simulator.bounds import check_folds, check_mapped_nest
from simulator.cost import OpCost
from simulator.errors import SparsimInputError
from simulator.mapping.cost import MappedCost, mapped_array_cost
from simulator.mapping.explain import record
from simulator.mapping.loopnest import Unrolling, nest_of_conv, nest_of_gemm
from simulator.mapping.spec import unrolling
from simulator.trace import Op

FIXED_MODEL = "fold-level memory model"


def _per_dense_bytes(bits: dict, ratio: float) -> dict[str, dict[str, float]]:
    out = {}
    for x, per in bits.items():
        scale = 1.0 if x == "outputs" else ratio
        out[x] = {lvl: b / scale / 8.0 for lvl, b in per.items()}
    return out


def mapped_gemm_on_array(op: Op, arch, spec, *, engine: str, model: str, k_of, bits, macs_fraction: float,
                         fold_cycles_of) -> OpCost:
    mapping = spec.mapping
    if mapping.spatial is not None and fold_cycles_of is not None:
        raise SparsimInputError("zero skipping and N:M imbalance are modelled per fold of a dataflow preset, "
                                "not for an explicit unrolling", field="compute.mapping.spatial",
                                hint="remove mapping.spatial (use dataflow: os|ws|is) or the skipping")
    shapes = op.gemm_shapes()
    K0 = shapes[0].K
    ratio = K0 / k_of(K0) if k_of else 1.0
    byte = _per_dense_bytes(bits, ratio)
    rows_dims, cols_dims = unrolling(spec.dataflow, mapping)
    unroll = Unrolling(rows_dims, cols_dims, spec.rows, spec.cols)
    per_shape = []
    for g in shapes:
        K = k_of(g.K) if k_of else g.K
        per_shape.append(_shape_compute(g, K, spec, unroll, fold_cycles_of))
    if op.kind == "conv2d":
        nests = [(nest_of_conv(op.dims), sum(per_shape))]
    else:
        nests = [(nest_of_gemm(g), c) for g, c in zip(shapes, per_shape)]
    costs: list[MappedCost] = []
    compute_total = 0.0
    for nest, compute in nests:
        check_mapped_nest(nest)
        if mapping.spatial is not None:
            compute = unroll.compute_cycles(nest, mapping.timing) / ratio
        costs.append(mapped_array_cost(arch, nest, unroll, compute, byte, spec.precision.accumulator, mapping,
                                       nest.macs * macs_fraction))
        record(nest, unroll, costs[-1], compute)
        compute_total += compute
    reads = {n: sum(c.reads_bytes[n] for c in costs) for n in arch.memory}
    writes = {n: sum(c.writes_bytes[n] for c in costs) for n in arch.memory}
    mem_notes = sorted({n for c in costs for n in c.notes})
    word_pj: dict[str, float] = {}       # access-word energy surcharge per '<level>_read'/'_write' component
    for c in costs:
        for k, v in c.word_energy_pj.items():
            word_pj[k] = word_pj.get(k, 0.0) + v
    dense = float(op.dense_macs)
    what = "searched mapping" if mapping.spatial is None else \
        f"searched mapping, rows<-{'*'.join(rows_dims)} cols<-{'*'.join(cols_dims)}"
    mapped_model = f"{what} ({mapping.objective}), {mapping.timing} timing"
    model = model.replace(FIXED_MODEL, mapped_model) if FIXED_MODEL in model else f"{model} + {mapped_model}"
    return OpCost(engine=engine, model=model, compute_cycles=compute_total, stall_cycles=sum(c.stall_cycles for c in costs),
                  macs=dense * macs_fraction, dense_macs=dense, peak_macs_per_cycle=spec.peak_macs_per_cycle,
                  reads_bytes=reads, writes_bytes=writes, notes=tuple(mem_notes), extra_energy_pj=word_pj,
                  mapping="; ".join(c.label for c in costs))


def _shape_compute(g, K: int, spec, unroll: Unrolling, fold_cycles_of) -> float:
    """Compute cycles of one GEMM shape (all `count` instances) on a dataflow preset.

    `pipelined` hides each later fold's fill (rows + cols - 2) behind the previous drain, but
    never more than that fold lasts (a fold a zero-skipping array skips entirely has no fill);
    SCALE-Sim's "- 1" (it counts from cycle 0) drops at most the cycles the run has, so a
    1x1 array skipping almost everything costs its expected fraction of a cycle, not less than 0.
    """
    from simulator.engines.systolic import folds_and_cycles_per_fold
    folds, per_fold = folds_and_cycles_per_fold(spec.dataflow, g.M, g.N, K, spec.rows, spec.cols)
    check_folds(folds, spec.rows, spec.cols)
    fill = spec.rows + spec.cols - 2
    if fold_cycles_of is None:
        one, hidden = float(folds * per_fold), float((folds - 1) * fill)
    else:
        cycles = np.asarray(fold_cycles_of(g, K, folds, per_fold), dtype=np.float64)
        one, hidden = float(cycles.sum()), float(np.minimum(cycles[1:], fill).sum())
    if spec.mapping.timing == "pipelined":
        one -= hidden
    return (one - min(one, 1.0)) * g.count
