"""Access-word energy: a level whose every access moves whole words (`access_word_bits`) is charged per word.

Why: an SRAM macro or a register-file port reads and writes whole words (its minimum port width), so a
narrow access costs a whole word's energy. Where the array reads a vector narrower than a word each
step -- one PE of a depthwise conv reading single bytes, a C = 3 stem filling 3 of 32 rows -- the energy
per useful bit rises by word / vector bits. ZigZag's cost model charges accesses this way (per data
transfer period, ceil(bits / min bandwidth) words, each min / max bandwidth of a full-port access;
`zigzag.cost_model.cost_model.CostModelEvaluation._calc_memory_access`, zigzag-dse 3.9.1).

What is rounded (only energy: bytes moved and cycles are unchanged):
- the array's reads of activations and weights from the innermost buffer holding them, and its writes of
  partial sums and final outputs to (and partial-sum reads from) the innermost output buffer: one vector
  per step of a fold, as wide as the fold's extent on the array axes whose dims index the operand
  (a partial last fold has a narrower vector);
- per-PE register accesses: one element per access.
Tile transfers between levels (buffer fills, drains, spills, all DRAM traffic) move whole tiles of many
words; their round-up, under one word per tile, is not charged (an approximation). The mapping search
does not see the surcharge: array-side vectors do not depend on the temporal tiling, so only the energy
objective's tie-breaks could differ.
"""

from __future__ import annotations

import math

from simulator.energy import level_energy_pj_per_bit
from simulator.mapping.loopnest import RELEVANT, LoopNest, Unrolling
from simulator.spec import Arch

TIE = 1e-9


def words_per_bit(bits: float, word: int | None) -> float:
    """Energy factor of one access of `bits` on a port of `word`-bit words: ceil(bits / word) * word / bits."""
    if not word or bits <= 0:
        return 1.0
    return math.ceil(bits / word - TIE) * word / bits


def vector_factor(nest: LoopNest, unroll: Unrolling, operand: str, bits: float, word: int | None) -> float:
    """Word factor of the array's per-step vectors of `operand` (`bits` per element) over all folds:
    every fold streams the same steps, each moving the fold's extent on the axes that index the operand."""
    if not word:
        return 1.0
    classes = []
    for dims, size in ((unroll.rows_dims, unroll.rows), (unroll.cols_dims, unroll.cols)):
        if set(dims) & RELEVANT[operand]:
            full, rest = divmod(unroll.extent(nest, dims), size)
            classes.append([(full, size)] + ([(1, rest)] if rest else []))
        else:
            classes.append([(1, 1)])
    charged = moved = 0.0
    for n_r, u_r in classes[0]:
        for n_c, u_c in classes[1]:
            vec = u_r * u_c * bits
            charged += n_r * n_c * vec * words_per_bit(vec, word)
            moved += n_r * n_c * vec
    return charged / moved if moved else 1.0


def word_surcharge_pj(arch: Arch, nest: LoopNest, unroll: Unrolling, s: dict, byte: dict[str, dict[str, float]],
                      acc_b: float, demand: dict[str, float], macs: float) -> dict[str, float]:
    """Energy (pJ) charged beyond per-bit accounting, keyed '<level>_read' / '<level>_write' (the
    energy components they add to). `s` is the mapping's DRAM traffic (reuse.RESULT_FIELDS)."""
    out: dict[str, float] = {}

    def add(level: str, way: str, moved_bits: float, factor: float) -> None:
        if factor > 1.0 and moved_bits > 0:
            pj = level_energy_pj_per_bit(arch, arch.memory[level])[0 if way == "read" else 1]
            key = f"{level}_{way}"
            out[key] = out.get(key, 0.0) + moved_bits * (factor - 1.0) * pj

    dram = arch.offchip_name
    holders = {x: [n for n, lv in arch.memory.items() if not (lv.offchip or lv.per_pe) and x in lv.holds]
               for x in ("activations", "weights", "outputs")}
    fetched = {"activations": s["read_input"], "weights": s["read_weights"]}
    for x in ("activations", "weights"):
        if holders[x]:
            inner = holders[x][0]
            bits = byte[x][inner] * 8
            elems = max(demand[x], fetched[x] / max(byte[x][dram], 1e-12))
            add(inner, "read", elems * bits, vector_factor(nest, unroll, x, bits, arch.memory[inner].access_word_bits))
    if holders["outputs"]:
        inner = holders["outputs"][0]
        word = arch.memory[inner].access_word_bits
        outs = nest.elements("outputs")
        psum_bits = outs * (demand["psum_rounds"] - 1) * acc_b * 8
        psum_factor = vector_factor(nest, unroll, "outputs", acc_b * 8, word)
        add(inner, "write", psum_bits, psum_factor)
        add(inner, "read", psum_bits, psum_factor)
        final_bits = byte["outputs"][inner] * 8
        add(inner, "write", outs * final_bits, vector_factor(nest, unroll, "outputs", final_bits, word))
    for n, lv in arch.memory.items():
        if lv.per_pe and lv.access_word_bits:
            for x in lv.holds:
                bits = acc_b * 8 if x == "outputs" else byte[x].get(n, acc_b) * 8
                factor = words_per_bit(bits, lv.access_word_bits)
                add(n, "read", macs * bits, factor)
                add(n, "write", (macs if x == "outputs" else demand[x]) * bits, factor)
    return out
