"""The array engines' entry point: search an op's mapping and turn it into traffic per level and stalls.

Levels: each operand is tiled at its outermost on-chip buffer (usable capacity: half when double-
buffered; operands sharing a buffer share it); levels inside it pass fills inward and the innermost
feeds the array (`Unrolling.array_demand`). A level marked `per_pe: true` is a register file in every
PE: it is read once per MAC for each operand it holds (outputs read and written at accumulator
width), which charges register energy per MAC; it is not a tiling level. On-chip levels whose
bandwidth cannot move their bytes within compute + DRAM stalls stall the op for the rest.
A row whose DRAM transfers alone take longer than its compute is noted `bandwidth-bound`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from simulator.energy import level_energy_pj_per_bit, static_power_mw
from simulator.errors import SparsimInputError
from simulator.mapping import reuse as rv
from simulator.mapping.loopnest import RELEVANT, LoopNest, Unrolling
from simulator.mapping.search import TILED, Choice, balanced_tiles, search
from simulator.mapping.spec import MappingSpec
from simulator.mapping.words import word_surcharge_pj
from simulator.memo import ArchMemo
from simulator.memory import usable_bytes
from simulator.spec import Arch

OPERANDS = ("activations", "weights", "outputs")


@dataclass(frozen=True)
class MappedCost:
    stall_cycles: float
    dram_stall_cycles: float
    reads_bytes: dict[str, float]
    writes_bytes: dict[str, float]
    notes: tuple[str, ...] = ()
    label: str = ""
    choice: Choice | None = None
    buffers: dict[str, str | None] = field(default_factory=dict)
    word_energy_pj: dict[str, float] = field(default_factory=dict)   # access-word surcharge (mapping.words)


def tiling_buffer(arch: Arch, operand: str) -> str | None:
    """The outermost on-chip level (not a per-PE register file) that holds `operand`."""
    held = _holders(arch, operand)
    return held[-1] if held else None


def pe_weight_capacity(arch: Arch, byte) -> int:
    """Weights a PE's own registers hold, if it has per-PE registers for both weights and outputs (0 if not)."""
    pe = {x: n for n, lv in arch.memory.items() if getattr(lv, "per_pe", False) for x in lv.holds}
    if "weights" not in pe or "outputs" not in pe:
        return 0
    level = arch.memory[pe["weights"]]
    return int(level.capacity_bytes // max(byte["weights"].get(pe["weights"], 1.0), 1e-12))


def _holders(arch: Arch, operand: str) -> list[str]:
    """On-chip levels (not per-PE registers) that hold `operand`, innermost first."""
    return _facts(arch)["holders"][operand]


def _facts(arch: Arch) -> dict:
    """Per-arch facts the costing reads for every op (computed once per arch object)."""
    return _FACTS.get(arch, "facts", lambda: {
        "holders": {x: [n for n, lv in arch.memory.items() if not lv.offchip and not lv.per_pe and x in lv.holds]
                    for x in OPERANDS},
        "energy": {n: level_energy_pj_per_bit(arch, lv) for n, lv in arch.memory.items()},
        "leak_pj_per_cycle": static_power_mw(arch) * 1e-3 / arch.clock_hz * 1e12})


_FACTS = ArchMemo(max_entries=256)


def _params(arch: Arch, nest: LoopNest, unroll: Unrolling, compute: float, byte: dict[str, dict[str, float]],
            acc_b: float, mapping: MappingSpec, demand: dict[str, float]) -> tuple[np.ndarray, dict]:
    dram = arch.offchip_name
    dram_level = arch.memory[dram]
    p = np.zeros(rv.N_PARAMS)
    for i, dim in enumerate(TILED):
        p[rv.D0 + i] = nest.size(dim)
    p[rv.R_], p[rv.S_], p[rv.STRIDE] = nest.R, nest.S, nest.stride
    ext_h, ext_w = nest.input_extent(nest.P, nest.R, 0), nest.input_extent(nest.Q, nest.S, 0)
    p[rv.H_], p[rv.W_] = ext_h, ext_w
    real = min(nest.H or ext_h, ext_h) * min(nest.W or ext_w, ext_w)
    p[rv.HSCALE] = real / (ext_h * ext_w)           # padding rows are generated on chip, not fetched
    facts = _facts(arch)
    buffers = {x: tiling_buffer(arch, x) for x in OPERANDS}
    index = {b: i for i, b in enumerate(dict.fromkeys(b for b in buffers.values() if b))}
    dread, dwrite = facts["energy"][dram]
    for i, x in enumerate(OPERANDS):
        buf = buffers[x]
        p[rv.DB + i] = byte[x][dram]
        p[rv.BB + i] = byte[x][buf] if buf else 0.0
        p[rv.BUF + i] = index[buf] if buf else -1.0
    for buf, i in index.items():
        p[rv.CAP + i] = usable_bytes(arch, buf)
    p[rv.ACC] = acc_b
    p[rv.CPB] = 0.0 if dram_level.ideal else 1.0 / dram_level.bandwidth_bytes_per_cycle
    p[rv.DBUF] = 1.0 if dram_level.double_buffered else 0.0
    p[rv.COMPUTE] = compute
    p[rv.PSUM_IN_PE] = 1.0 if unroll.stationary_outputs() else 0.0
    p[rv.DEM] = demand["activations"] * byte["activations"][dram]
    p[rv.DEM + 1] = demand["weights"] * byte["weights"][dram]
    outs = nest.elements("outputs")
    p[rv.OUTS], p[rv.ROUNDS] = outs, demand["psum_rounds"]
    spatial = set(unroll.rows_dims) | set(unroll.cols_dims)
    for i, dim in enumerate(TILED):
        p[rv.SPATIAL + i] = 1.0 if dim in spatial else 0.0
    for i, x in enumerate(("activations", "weights")):
        onchip = sum(sum(facts["energy"][n]) * byte[x][n] for n in facts["holders"][x])
        p[rv.E_FETCH + i] = 8 * (dread * byte[x][dram] + onchip) / max(byte[x][dram], 1e-12)
        inner = facts["holders"][x][0] if facts["holders"][x] else None
        p[rv.E_EXTRA + i] = 8 * facts["energy"][inner][0] * byte[x][inner] / max(byte[x][dram], 1e-12) if inner else 0.0
    out_buf = buffers["outputs"]
    out_e = facts["energy"][out_buf] if out_buf else (0.0, 0.0)
    p[rv.E_OW] = 8 * (dwrite + out_e[0])
    p[rv.E_OR] = 8 * (dread + out_e[1])
    p[rv.LEAK] = facts["leak_pj_per_cycle"]
    p[rv.SEG] = -1.0
    if unroll.stationary_outputs() and facts["holders"]["outputs"]:
        inner_e = facts["energy"][facts["holders"]["outputs"][0]]
        p[rv.SEG + 2] = 8 * outs * acc_b * (inner_e[0] + inner_e[1])
    p[rv.OBJECTIVE] = rv.OBJECTIVES[mapping.objective]
    # The first fold needs its own slice of each operand (not what the array re-reads): the operand's
    # DRAM bytes over the folds of the unrolled dims it depends on; likewise the last fold's outputs.
    in_bytes = nest.G * nest.N * nest.C * ext_h * ext_w * p[rv.HSCALE] * byte["activations"][dram]
    w_bytes = nest.elements("weights") * byte["weights"][dram]
    p[rv.FOLD_X] = in_bytes / _slices(nest, unroll, "activations")
    p[rv.FOLD_X + 1] = w_bytes / _slices(nest, unroll, "weights")
    p[rv.FOLD_IN] = p[rv.FOLD_X] + p[rv.FOLD_X + 1]
    p[rv.FOLD_OUT] = outs * byte["outputs"][dram] / _slices(nest, unroll, "outputs")
    return p, buffers


STAT_KEYS = ("read_input", "read_weights", "write_outputs", "read_outputs")


def _onchip_params(p: np.ndarray, arch: Arch, nest: LoopNest, byte, acc_b: float, demand: dict, macs: float) -> None:
    """Each non-ideal on-chip level's bandwidth need as fixed cycles + cycles per DRAM byte of each
    kind (its traffic is linear in the DRAM traffic: fills pass through it), so the search sees it."""
    levels = [n for n, lv in arch.memory.items() if not (lv.offchip or lv.ideal)][:rv.ONCHIP_LEVELS]
    if not levels:
        return
    base_r, base_w = _level_traffic(arch, nest, dict.fromkeys(STAT_KEYS, 0.0), byte, acc_b, demand, macs)
    holders = _facts(arch)["holders"]
    dram = arch.offchip_name
    for i, n in enumerate(levels):
        bw = arch.memory[n].bandwidth_bytes_per_cycle
        q = rv.ONCHIP + rv.ONCHIP_STRIDE * i
        p[q] = (base_r[n] + base_w[n]) / bw
        # Per DRAM byte fetched: a holding level is written and read once (the fill passes inward); the
        # innermost one then re-reads the rest of the array's demand, one fetched element fewer, so
        # what is fetched beyond the demand is read there once more (`_level_traffic`'s max).
        for j, x in enumerate(("activations", "weights")):
            if n in holders[x]:
                b = byte[x][n] / max(byte[x][dram], 1e-12)
                inner = n == holders[x][0]
                p[q + 1 + j] = (2 * b - (b if inner else 0.0)) / bw
                p[q + 5 + j] = b / bw if inner else 0.0
        # Spilled partial sums read back from DRAM pass the outermost output level both ways.
        if holders["outputs"] and n == holders["outputs"][-1]:
            p[q + 4] = 2.0 / bw
        # An output-stationary array parks its partial sums in the innermost output level between C tiles.
        if p[rv.PSUM_IN_PE] and holders["outputs"] and n == holders["outputs"][0]:
            p[rv.SEG], p[rv.SEG + 1] = float(i), 2.0 * nest.elements("outputs") * acc_b / bw


def _slices(nest: LoopNest, unroll: Unrolling, operand: str) -> int:
    """Folds over the unrolled dims `operand` depends on (times the groups): how many pieces the array cuts it in."""
    fr, fc = unroll.folds(nest)
    rel = RELEVANT[operand]
    return nest.G * (fr if set(unroll.rows_dims) & rel else 1) * (fc if set(unroll.cols_dims) & rel else 1)


def _no_fit_error(arch: Arch, p: np.ndarray, nest: LoopNest) -> SparsimInputError:
    """No tile of the op fits: name the buffer that cannot hold even one element per dim."""
    f_in, f_w, f_out, width = rv.footprints(np.ones(6), p)
    need = {}
    for i, (x, elements) in enumerate(zip(OPERANDS, (f_in, f_w, f_out))):
        if p[rv.BUF + i] >= 0:
            need[int(p[rv.BUF + i])] = need.get(int(p[rv.BUF + i]), 0.0) + elements * (width if i == 2 else p[rv.BB + i])
    names = list(dict.fromkeys(b for b in (tiling_buffer(arch, x) for x in OPERANDS) if b))
    buf = next((names[i] for i, b in need.items() if b > p[rv.CAP + i] * (1 + 1e-12)), names[0])
    return SparsimInputError(f"no tile of the op (even 1 element per dim, R={nest.R} S={nest.S} whole) fits the "
                             f"{buf} buffer", field=f"memory.{buf}.capacity_kib", hint="give the buffer more capacity")


def _smallest_fits(p: np.ndarray, sizes: dict, granules: dict, pins: dict) -> bool:
    """Does any tile fit with `pins`? Footprints grow with every tile size, so only the smallest
    tile of every other dim (one fold, or one element without granules) needs checking."""
    t = np.array([float(pins.get(d) or min(sizes[d], granules.get(d, 1))) for d in TILED])
    return bool(rv.fits(t, p))


def check_pins(p: np.ndarray, nest: LoopNest, granules: dict, pins: dict, asked: dict) -> None:
    """Raise when the pinned tiles are why no tile (aligned to the array where an unpinned one can be)
    fits: one line naming the pinned dim (`asked`: the spec's values), the largest size that fits and the fix."""
    sizes = {d: nest.size(d) for d in TILED}
    if _smallest_fits(p, sizes, granules, pins):
        return
    if not _smallest_fits(p, sizes, granules, {}):
        granules = {}                   # nothing aligned fits anyway: the op falls back to smaller tiles
        if _smallest_fits(p, sizes, granules, pins) or not _smallest_fits(p, sizes, granules, {}):
            return
    aligned = " array-aligned" if granules else ""
    for d in sorted(pins, key=lambda d: asked[d] <= sizes[d]):      # a pin beyond the op's dim first
        rest = {k: v for k, v in pins.items() if k != d}
        if _smallest_fits(p, sizes, granules, rest):
            ok = [t for t in balanced_tiles(sizes[d]) if _smallest_fits(p, sizes, granules, {**rest, d: t})]
            gemm = f" (the GEMM's {nest.name(d)})" if nest.gemm and nest.name(d) != d else ""
            gemm += f", clamped to the op's {sizes[d]}," if asked[d] > sizes[d] else ""
            hint = f"pin {d} <= {int(ok[-1])} or remove it" if ok else f"remove the pinned {d}"
            raise SparsimInputError(f"pinned tile {d}={asked[d]}{gemm} leaves no{aligned} tile that fits the on-chip "
                                    "buffers", field=f"compute.mapping.tiles.{d}", hint=hint)
    raise SparsimInputError(f"pinned tiles {asked} together leave no{aligned} tile that fits the on-chip buffers",
                            field="compute.mapping.tiles", hint="pin smaller tiles or fewer of them")


def pinned_tiles(nest: LoopNest, mapping: MappingSpec) -> tuple[dict[str, int], dict[str, int]]:
    """The pinned tiles clamped to the op's dims (a pin applies to every op; a smaller dim is one whole
    tile), and which pins were clamped (dim -> size asked)."""
    pins = {d: min(int(v), nest.size(d)) for d, v in mapping.tiles.items()}
    return pins, {d: int(v) for d, v in mapping.tiles.items() if int(v) > nest.size(d)}


_RESULTS = ArchMemo(max_entries=4096)     # (arch, inputs) -> MappedCost


def mapped_array_cost(arch: Arch, nest: LoopNest, unroll: Unrolling, compute: float,
                      byte: dict[str, dict[str, float]], acc_bits: float, mapping: MappingSpec,
                      macs: float) -> MappedCost:
    """Search the nest's mapping and cost it. `byte[operand][level]` are stored bytes per dense element.
    Results are kept per arch object for repeated layers."""
    key = (nest, unroll, compute, tuple((x, tuple(v.items())) for x, v in byte.items()), acc_bits,
           mapping.model_dump_json(), macs)
    return _RESULTS.get(arch, key, lambda: _mapped_array_cost(arch, nest, unroll, compute, byte, acc_bits,
                                                              mapping, macs))


def _mapped_array_cost(arch: Arch, nest: LoopNest, unroll: Unrolling, compute: float,
                       byte: dict[str, dict[str, float]], acc_bits: float, mapping: MappingSpec,
                       macs: float) -> MappedCost:
    acc_b = acc_bits / 8.0
    demand = unroll.array_demand(nest, pe_weight_capacity(arch, byte))
    p, buffers = _params(arch, nest, unroll, compute, byte, acc_b, mapping, demand)
    _onchip_params(p, arch, nest, byte, acc_b, demand, macs)
    sizes = {d: nest.size(d) for d in TILED}
    granules = {d: unroll.granule(nest, d) for d in TILED}
    pins, clamped = pinned_tiles(nest, mapping)
    choice = search(sizes, granules, pins, p)
    notes = []
    if choice is None:
        check_pins(p, nest, granules, pins, dict(mapping.tiles))
        choice = search(sizes, {}, pins, p)
        if choice is None:
            raise _no_fit_error(arch, p, nest)
        choice = Choice(choice.tiles, choice.order, choice.stats, aligned=False)
        notes.append("no array-aligned tile fits the buffers: tiles smaller than the array (fold fragmentation "
                     "not modelled)")
    s = choice.stats
    segments = -(-nest.C // choice.tiles["C"]) - 1 if unroll.stationary_outputs() else 0
    reads, writes = _level_traffic(arch, nest, s, byte, acc_b, demand, macs, segments)
    dram_stall = s["stall_cycles"]      # on-chip bandwidth included (reuse._onchip_need)
    onchip = max([(reads[n] + writes[n]) / lv.bandwidth_bytes_per_cycle for n, lv in arch.memory.items()
                  if not (lv.offchip or lv.ideal)], default=0.0)
    stall = max(dram_stall, onchip - compute)
    dram_level = arch.memory[arch.offchip_name]
    transfer = 0.0 if dram_level.ideal else (reads[arch.offchip_name] + writes[arch.offchip_name]) \
        / dram_level.bandwidth_bytes_per_cycle
    if transfer > compute:
        notes.append("bandwidth-bound")
    if s["mult_outputs"] > 1 or buffers["outputs"] is None:
        notes.append("partial sums spill to DRAM")
    return MappedCost(stall_cycles=stall, dram_stall_cycles=dram_stall, reads_bytes=reads, writes_bytes=writes,
                      notes=tuple(notes), label=label(nest, choice, pins, clamped), choice=choice, buffers=buffers,
                      word_energy_pj=word_surcharge_pj(arch, nest, unroll, s, byte, acc_b, demand, macs))


def _level_traffic(arch: Arch, nest: LoopNest, s: dict, byte, acc_b: float, demand: dict, macs: float,
                   segments: float = 0.0):
    """Bytes read and written at every level, given a mapping's DRAM traffic `s` (reuse.RESULT_FIELDS) and
    the extra C tiles (`segments`) across which an output-stationary array parks its partial sums."""
    dram = arch.offchip_name
    reads = {n: 0.0 for n in arch.memory}
    writes = {n: 0.0 for n in arch.memory}
    reads[dram] = s["read_input"] + s["read_weights"] + s["read_outputs"]
    writes[dram] = s["write_outputs"]
    fetched_bytes = {"activations": s["read_input"], "weights": s["read_weights"]}
    for x in ("activations", "weights"):
        fetched = fetched_bytes[x] / max(byte[x][dram], 1e-12)
        levels = _holders(arch, x)
        for n in levels:
            writes[n] += fetched * byte[x][n]
            reads[n] += fetched * byte[x][n]
        if levels:
            reads[levels[0]] += max(0.0, demand[x] - fetched) * byte[x][levels[0]]
    outs = nest.elements("outputs")
    out_levels = _holders(arch, "outputs")
    if out_levels:
        inner = out_levels[0]
        psum = outs * (demand["psum_rounds"] - 1 + segments) * acc_b
        final = outs * byte["outputs"][inner]
        writes[inner] += psum + final
        reads[inner] += psum + final
        outer = out_levels[-1]
        spill = s["read_outputs"]
        reads[outer] += spill
        writes[outer] += spill
    for n, lv in arch.memory.items():
        if getattr(lv, "per_pe", False):
            for x in lv.holds:
                value_b = byte[x].get(n, acc_b)
                if x == "outputs":
                    reads[n] += macs * acc_b
                    writes[n] += macs * acc_b
                else:
                    reads[n] += macs * value_b
                    writes[n] += demand[x] * value_b
    return reads, writes


def label(nest: LoopNest, choice: Choice, pins: dict | None = None, clamped: dict | None = None) -> str:
    """Compact mapping text: tile sizes of the dims that have more than one element, then the loop order,
    then the pinned dims (a pin larger than the dim says it was clamped)."""
    tiles = " ".join(f"{nest.name(d)}{choice.tiles[d]}" for d in TILED if nest.size(d) > 1)
    order = []
    for cls in choice.order:
        dims = [d for d in ("N", "P", "Q") if nest.size(d) > 1] if cls == "NPQ" else [cls]
        n_tiles = 1
        for d in dims:
            n_tiles *= -(-nest.size(d) // choice.tiles[d])
        if n_tiles > 1:
            order.append("".join(nest.name(d) for d in dims))
    if nest.G > choice.tiles["G"]:
        order.insert(0, "G")
    text = f"{tiles} | {'>'.join(order) or 'one tile'}"
    if pins:
        text += " | pinned " + " ".join(f"{nest.name(d)}{v}" + (f" (clamped from {clamped[d]})" if d in (clamped or {})
                                                                 else "") for d, v in pins.items())
    return text
