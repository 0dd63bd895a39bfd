"""N:M sparse tensor core: a PE array whose sparse operand is stored compressed.

What is modelled (Mishra et al. 2021, arXiv 2104.08378, for Ampere's fixed 2:4; VEGETA,
Jeong et al., HPCA 2023, for flexible 1:4/2:4/4:4 modes):
- The sparse operand (`sparse_operand`, weights by default) is held as N kept values per
  M-group plus ceil(log2 M) index bits per kept value, at every memory level whose format
  for it is unset or `nm` (a level marked `dense` holds it uncompressed). The array
  iterates only the kept slots, so the reduction length shrinks to K' = ceil(K/M) * N.
- A multiplexer per PE picks the matching activation for each kept value: the activation
  buffer must still deliver all M values of every group, i.e. M/N activation values per
  array step (bits per array element scaled accordingly). A design whose buffers or DRAM
  cannot sustain that loses the compute speedup; the result reports both speedups. A
  bandwidth-bound op (a decode GEMV) gains at most the byte ratio of its compressed operands
  (fp16 2:4 weights: 16 / (0.5 * (16 + 2)) = 1.78x when DRAM holds them compressed, ~1.0x
  when it holds them dense), never the 2x math rate. Real sparse kernels need not stream that
  well: `sparse_offchip_efficiency` (default 1 = ideal) scales the off-chip bandwidth whenever
  the sparse path runs. The Ampere-like spec sets it from A100 measurements (cuSPARSELt 2:4
  tiles stream compressed weights at ~0.56x the dense GEMV rate, so decode gains ~1.0x,
  pytorch issue 111339), a measured factor with no mechanism modelled behind it.
- Mode choice: for each supported pattern the op's operand is described per M-group by
  `simulator.sparsity.group_distribution` (measured histogram, exact N:M, hypergeometric,
  binomial or block model; the model used is named in `OpCost.model`). Groups with more
  than N nonzeros follow `overflow`: `split` (ceil(j/N) passes of N slots), `group_dense`
  (that group at the dense rate) or `op_dense` (any overflow -> the op runs dense, as on
  Ampere, which needs 2:4-compliant weights). The fastest mode wins; data sparser than the
  fastest supported mode runs at that mode's rate (1:4 on 2:4-only hardware runs as 2:4);
  when no mode helps the op runs dense and `notes` says why.
- `dual_sided`: the other operand is compressed the same way (its own best mode) and K
  shrinks by the product of both factors (positions assumed independent; e.g. the
  dual-side sparse tensor core of Wang et al., MICRO 2021, approximated).
- Actions: MAC slots issued (`macs`), one index select per slot (`index_selects`, priced
  by `energy.index_select_pj`), metadata bytes inside every level's traffic.
Cycles, reuse and stalls come from the shared array model (`simulator.engines.array.gemm_on_array`).
- Extra passes make per-column (or per-row) slot counts uneven; a fold lasts as long as its
  busiest PE column/row (`sparsity.tile_max_slots`: exact sum over groups, expected maximum
  over i.i.d. units) where that operand is in the PEs (OS; WS weights; IS activations).
Approximations: units drawn i.i.d. from one (possibly measured, pooled) distribution; the
memory model sees the mean K'; dual-sided imbalance is not modelled (mean slots); padding
slots of under-full groups cost full MACs (not gated); area adds no mux overhead.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import numpy as np
from pydantic import Field, ValidationInfo, field_validator

from simulator.cost import OpCost
from simulator.engines.array import (ArraySpecBase, Dataflow, compressed_k_bits, gemm_on_array,
                                      pe_array_area_mm2)
from simulator.engines.vector import vector_op_cost
from simulator.errors import SparsimInputError
from simulator.memo import ArchMemo
from simulator.sparsity import (ModeChoice, block_extents, is_power_of_two, mode_preference, nm_mode_candidates,
                                check_nm_texts, NMPatternTexts, parse_pattern, tile_max_slots)
from simulator.mapping.spec import MappingSpec
from simulator.spec import Arch, DatapathPrecision
from simulator.trace import Op

OTHER = {"weights": "activations", "activations": "weights"}


class ComputeSpec(ArraySpecBase):
    kind: Literal["nm_tensor_core"] = "nm_tensor_core"
    rows: int = Field(ge=1, description="PE rows")
    cols: int = Field(ge=1, description="PE columns")
    dataflow: Dataflow = "os"
    precision: DatapathPrecision = DatapathPrecision()
    power_of_two_m: bool = Field(default=True, description="the index decoder needs M a power of two")
    patterns: NMPatternTexts = Field(default_factory=lambda: ["2:4"], min_length=1,
                                description="supported N:M modes, e.g. ['2:4'] or ['1:4', '2:4', '4:4']")
    sparse_operand: Literal["weights", "activations"] = "weights"
    dual_sided: bool = Field(default=False, description="also compress the other operand")
    overflow: Literal["split", "group_dense", "op_dense"] = Field(
        default="op_dense", description="groups with more than N nonzeros: extra passes, dense group, or dense op")
    vector_lanes: int | None = Field(default=None, ge=1, description="lanes for non-MAC ops (default: cols)")
    sparse_offchip_efficiency: float = Field(
        default=1.0, gt=0.0, le=1.0,
        description="fraction of the off-chip bandwidth the sparse path reaches (1 = ideal streaming)")
    mapping: MappingSpec = Field(default_factory=MappingSpec, description="mapping search or fixed fold order, "
                                 "objective, timing, spatial unrolling (docs/mapping.md)")

    @field_validator("patterns")
    @classmethod
    def _patterns(cls, value: list[str], info: ValidationInfo) -> list[str]:
        return check_nm_texts(value, need_power_of_two=info.data.get("power_of_two_m", True))

    @property
    def modes(self) -> list[tuple[int, int]]:
        return [parse_pattern(t, field="compute.patterns") for t in self.patterns]


def _check_data_pattern(op: Op, spec: ComputeSpec, operand: str) -> None:
    sp = getattr(op.sparsity, operand)
    if sp.kind == "nm" and spec.power_of_two_m and not is_power_of_two(sp.m):
        raise SparsimInputError(f"{operand} are {sp.n}:{sp.m}, but group size m={sp.m} is not a power of two, "
                                "which this N:M hardware's index decoder needs", field=f"sparsity.{operand}.m",
                                hint="re-prune to a power-of-two M (e.g. 2:4, 2:8), or use another engine")


def _candidates(op: Op, spec: ComputeSpec, operand: str) -> list[ModeChoice]:
    sp = getattr(op.sparsity, operand)
    shapes = op.gemm_shapes()
    units = (lambda g: g.N) if operand == "weights" else (lambda g: g.M)
    k_block, _ = block_extents(sp, operand)
    return nm_mode_candidates(sp, spec.modes, spec.overflow, k_block=k_block,
                              groups_of_m=lambda m: sum(math.ceil(g.K / m) * units(g) * g.count for g in shapes))


def _describe(choice: ModeChoice, op: Op, spec: ComputeSpec, operand: str) -> list[str]:
    sp = getattr(op.sparsity, operand)
    if sp.kind == "dense":
        return []
    supported = ", ".join(spec.patterns)
    if sp.kind == "nm" and sp.n == sp.m:
        return [f"{operand} {sp.label} are dense: dense mode"]
    if choice.dense:
        return [f"{operand} {sp.label} cannot use any supported pattern ({supported}; overflow: {spec.overflow}): "
                "runs dense"]
    notes = [f"{operand} {sp.label} run in {choice.label} mode ({choice.slots_per_group:.3g} slots per "
             f"{choice.m}-group; supported: {supported})"]
    if sp.kind == "nm" and sp.n / sp.m < choice.n / choice.m - 1e-12:
        notes.append(f"{sp.label} is sparser than the fastest usable mode: it runs at the {choice.label} rate")
    if choice.overflow_probability > 0:
        notes.append(f"{choice.overflow_probability:.1%} of {choice.m}-groups hold more than {choice.n} nonzeros "
                     f"({spec.overflow})")
    return notes


def _variable(choice: ModeChoice) -> bool:
    return not choice.dense and sum(1 for p in choice.slot_pmf if p > 0) > 1


def _imbalance(spec: ComputeSpec, choice: ModeChoice, operand: str):
    """Per-fold cycles when groups take a variable number of slots (extra passes): each PE
    column (weights) or row (activations) walks its own compressed stream, so a fold lasts as
    long as its busiest unit. Only where that operand sits in the PEs or per PE column/row
    (OS: both; WS: weights; IS: activations); None elsewhere (mean slots used)."""
    df = spec.dataflow
    if (df == "ws" and operand != "weights") or (df == "is" and operand != "activations"):
        return None
    R, C = spec.rows, spec.cols

    def fold_cycles(g, K, folds, per_fold):
        groups = math.ceil(g.K / choice.m)
        if df == "os":
            if operand == "weights":
                worst = tile_max_slots(choice, groups, g.N, C)
                return R + C - 2 + np.tile(worst, math.ceil(g.M / R))
            worst = tile_max_slots(choice, groups, g.M, R)
            return R + C - 2 + np.repeat(worst, math.ceil(g.N / C))
        units = g.N if operand == "weights" else g.M
        worst = tile_max_slots(choice, groups, units, C)
        n_in = math.ceil(K / R)
        return np.repeat(np.ceil(worst / R - 1e-9) * per_fold / n_in, n_in)

    return fold_cycles


def estimate(op: Op, arch: Arch) -> OpCost:
    """Cost every usable mode of the sparse operand (the other one, when dual-sided, takes its
    fewest-slots mode) and keep the fastest: with extra passes a mode with fewer mean slots can
    still have a busier worst fold."""
    spec: ComputeSpec = arch.compute
    if op.is_vector:
        return vector_op_cost(op, arch, spec.vector_lanes or spec.cols, spec.precision.activations, "nm_tensor_core")
    main = spec.sparse_operand
    other = OTHER[main]
    _check_data_pattern(op, spec, main)
    c_other = None
    if spec.dual_sided:
        _check_data_pattern(op, spec, other)
        c_other = _candidates(op, spec, other)[0]
    costs = [(_mode_cost(op, arch, spec, c_main, c_other), c_main) for c_main in _candidates(op, spec, main)]
    best, chosen = min(costs, key=lambda pair: mode_preference(pair[1], pair[0].cycles))
    sparse = [(cost, c) for cost, c in costs if not c.dense]
    if chosen.dense and sparse:
        # A usable N:M mode lost on total time (e.g. its kernels stream slower than it saves bytes).
        cost, c = min(sparse, key=lambda pair: pair[0].cycles)
        why = (f"{main} {getattr(op.sparsity, main).label}: the {c.label} mode would take {cost.cycles:.4g} cycles, "
               f"dense {best.cycles:.4g}: runs dense")
        described = _describe(chosen, op, spec, main)
        best = dataclasses.replace(best, notes=(why, *(n for n in best.notes if n not in described)))
    return best


def _mode_cost(op: Op, arch: Arch, spec: ComputeSpec, c_main: ModeChoice, c_other: ModeChoice | None) -> OpCost:
    """The op with the sparse operand in mode `c_main` (and the other in `c_other`, dual-sided)."""
    main = spec.sparse_operand
    other = OTHER[main]
    choices = {main: c_main} if c_other is None else {main: c_main, other: c_other}
    notes: list[str] = []
    for operand, choice in choices.items():
        notes += _describe(choice, op, spec, operand)
    if not spec.dual_sided and getattr(op.sparsity, other).kind != "dense":
        notes.append(f"{other} sparsity not exploited (dual_sided: false)")
    f_other = c_other.k_factor if c_other is not None else 1.0

    def k_main(K: int) -> float:
        return math.ceil(K / c_main.m) * c_main.slots_per_group

    def k_of(K: int) -> int:
        # Hardware pads K to whole groups; a tiny K whose padded slots exceed K runs densely.
        return max(1, min(K, math.ceil(k_main(K) * f_other - 1e-9)))

    shapes = op.gemm_shapes()
    dense_macs = float(op.dense_macs)
    sparse = any(not c.dense for c in choices.values())
    plain_bits = compressed_k_bits(op, arch, spec, ratio=1.0)
    if not sparse:
        return gemm_on_array(op, arch, spec, engine="nm_tensor_core", bits=plain_bits,
                             model=f"nm_tensor_core-{spec.dataflow} dense mode + fold-level memory model",
                             notes=tuple(notes))
    K0 = shapes[0].K
    compressed = {}
    for operand, choice in choices.items():
        if not choice.dense:
            slot_fraction = (k_main(K0) / K0) if operand == main else choice.k_factor
            compressed[operand] = (choice.n, choice.m, slot_fraction)
    bits = compressed_k_bits(op, arch, spec, ratio=K0 / k_of(K0), compressed=compressed)
    sparse_arch = _derated_offchip(arch, spec.sparse_offchip_efficiency)
    if sparse_arch is not arch:
        notes.append(f"sparse path streams off-chip at {spec.sparse_offchip_efficiency:g} of the bandwidth "
                     "(compute.sparse_offchip_efficiency)")
    issued = sum(g.M * g.N * k_of(g.K) * g.count for g in shapes) / dense_macs
    if c_other is None or c_other.dense:
        notes.append(f"activation path supplies {1.0 / max(issued, 1e-12):.3g} values per array step "
                     f"(all M of every group)" if main == "weights" else
                     f"weight path supplies {1.0 / max(issued, 1e-12):.3g} values per array step")
    models = "; ".join(f"{o} {c.label} ({c.model})" for o, c in choices.items())
    fold_cycles = _imbalance(spec, c_main, main) if (c_other is None and _variable(c_main)) else None
    if fold_cycles is not None:
        models += "; per-fold max over PE columns/rows of extra-pass slots"
    elif _variable(c_main) or (c_other is not None and _variable(c_other)):
        models += "; mean slots per unit (imbalance of extra passes not modelled here)"
    cost = gemm_on_array(op, sparse_arch, spec, engine="nm_tensor_core", k_of=k_of, bits=bits, macs_fraction=issued,
                         model=f"nm_tensor_core-{spec.dataflow}: {models}, K x {issued:.3g} + fold-level memory model",
                         fold_cycles_of=fold_cycles)
    baseline = gemm_on_array(op, arch, spec, engine="nm_tensor_core", model="", bits=plain_bits)
    compute_speedup = baseline.compute_cycles / max(cost.compute_cycles, 1e-12)
    total_speedup = baseline.cycles / max(cost.cycles, 1e-12)
    if total_speedup < 0.9 * compute_speedup:
        notes.append(f"bandwidth-bound: compute is {compute_speedup:.2f}x faster than dense, but memory stalls "
                     f"leave {total_speedup:.2f}x end to end")
    return dataclasses.replace(cost, index_selects=cost.macs, notes=(*notes, *cost.notes))


_DERATED = ArchMemo(max_entries=16)      # (arch, efficiency) -> the derated copy


def _derated_offchip(arch: Arch, efficiency: float) -> Arch:
    """`arch` with its off-chip level's bandwidth scaled by `efficiency` (itself when 1 or ideal).
    Built once per arch (not per sparse op), so the copy is one object that the mapping search's
    per-arch caches recognise from op to op."""
    name = arch.offchip_name
    level = arch.memory[name]
    if efficiency >= 1.0 or level.ideal:
        return arch

    def derate() -> Arch:
        slower = level.model_copy(update={"bandwidth_bytes_per_cycle": level.bandwidth_bytes_per_cycle * efficiency})
        return arch.model_copy(update={"memory": {**arch.memory, name: slower}})
    return _DERATED.get(arch, efficiency, derate)


def energy_components(arch: Arch) -> tuple[str, ...]:
    """Sparse ops count one index select per issued MAC slot."""
    return ("index_select",)


compute_area_mm2 = pe_array_area_mm2   # the engine hook: PEs x area per PE
