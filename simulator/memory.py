"""Memory hierarchy model for a 2-D PE array: fold tiling, buffer-level blocking, traffic, stalls.

The array computes a GEMM (M x K) @ (K x N) in folds (see `fold_grid`) over two loops, and one
operand is stationary in the PEs. Per operand, its on-chip buffer is the outermost on-chip level
that `holds` it (reuse is decided there); the innermost holding level feeds the array; levels
between pass fills through. "Fits" means within the buffer's usable capacity (half when
double-buffered) minus the tiles of the other operands sharing it.

Buffer-level blocking. One operand is indexed by the outer loop only and stays on chip across the
inner loop (`held`: OS an activation row tile, rows x K; WS/IS an output tile's partial sums at
accumulator width); another by the inner loop only (`streamed`: OS a weight tile K x cols, WS an
activation slice M x rows, IS a weight slice rows x N). b = how many consecutive outer tiles of
`held` fit at once. The folds run in blocks of outer tiles, ordered (block, inner, outer within
the block), so each streamed tile is fetched once per block and shared by the block's folds
(which needs one streamed tile to fit as well); each held tile is fetched once. Traffic of the
streamed operand falls as ceil(n_out / block) instead of n_out. Special cases:
- the whole streamed operand fits: it stays resident and is fetched once, in any order;
- b = 0 (not even one held tile fits): OS re-fetches the activations every fold; WS/IS spill
  partial sums to DRAM and read them back each K fold;
- block size 1 is the plain outer-major order (no blocking).
Every balanced block size up to b (the smallest size giving each block count) is a legal
schedule; the model keeps the one with the fewest cycles, then the fewest DRAM bytes. The largest
block moves the fewest bytes and nearly always wins, but the fold-by-fold schedule below can make a
smaller one, or another order of a resident case, a little faster (how fetches line up with
write-backs, edge tiles and uneven folds). Since more buffer or more bandwidth only adds options
or shortens transfers, this keeps DRAM traffic and cycles monotone in both. The search stops early
on lower bounds, so it costs about one schedule per GEMM in most cases.
Approximations: blocking happens at one level (each operand's outer on-chip buffer); K is never
tiled, so an OS buffer that cannot hold one row tile (rows x K) beside a weight tile gets no
activation reuse; a block is sized by its largest tile.

Time: DRAM transfers are scheduled fold by fold in that order
(`kernels.schedule.blocked_fold_schedule`), with or without double buffering (one fold ahead);
an on-chip level whose bandwidth cannot move its bytes within that time (compute + DRAM stalls)
adds the shortfall as stall cycles (aggregate over the op, an approximation: the op takes the
longer of the two, never their sum). Bytes per element come from the operand's precision,
sparsity and storage format per level (`simulator.formats`). Every op starts and ends in DRAM
(no inter-op fusion here). Approximation: edge effects inside a fold and bank conflicts are not
modelled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from simulator.formats import bits_per_element
from simulator.kernels.schedule import blocked_fold_schedule

if TYPE_CHECKING:  # annotations only: simulator.spec imports the engine contract, whose default hook is here
    from simulator.spec import Arch
    from simulator.trace import Op

OPERANDS = ("activations", "weights", "outputs")


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class FoldGrid:
    """Fold loops of one dataflow: the outer loop tiles `outer_dim`, the inner loop `inner_dim`."""
    outer_dim: str
    inner_dim: str
    outer_sizes: np.ndarray
    inner_sizes: np.ndarray

    @property
    def n_folds(self) -> int:
        return len(self.outer_sizes) * len(self.inner_sizes)


def _split(total: int, tile: int) -> np.ndarray:
    n = ceil_div(total, tile)
    sizes = np.full(n, tile, dtype=np.float64)
    sizes[-1] = total - tile * (n - 1)
    return sizes


def fold_grid(dataflow: str, M: int, N: int, K: int, rows: int, cols: int) -> FoldGrid:
    """OS: outer M over rows, inner N over cols. WS: outer N over cols, inner K over rows.
    IS: outer M over cols, inner K over rows (the SCALE-Sim mappings, docs/references.md#scale-sim-cycles)."""
    if dataflow == "os":
        return FoldGrid("M", "N", _split(M, rows), _split(N, cols))
    if dataflow == "ws":
        return FoldGrid("N", "K", _split(N, cols), _split(K, rows))
    return FoldGrid("M", "K", _split(M, cols), _split(K, rows))


@dataclass(frozen=True)
class MemoryCost:
    stall_cycles: float
    dram_stall_cycles: float
    onchip_stall_cycles: float
    reads_bytes: dict[str, float] = field(default_factory=dict)
    writes_bytes: dict[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def operand_bits(op: Op, arch: Arch, value_bits: dict[str, float]) -> dict[str, dict[str, float]]:
    """Stored bits per dense element of each operand at each level that holds it (format-aware)."""
    shapes = op.gemm_shapes()
    row_len = shapes[0].K if shapes else 1
    out: dict[str, dict[str, float]] = {}
    for operand in OPERANDS:
        sparsity = getattr(op.sparsity, operand)
        per_level = {}
        for name, level in arch.memory.items():
            if operand in level.holds:
                fmt = level.formats.get(operand, "dense")
                per_level[name] = bits_per_element(sparsity, fmt, value_bits[operand], row_len=row_len)
        out[operand] = per_level
    return out


def _holding_levels(arch: Arch, operand: str) -> list[str]:
    return [n for n, lv in arch.memory.items() if not lv.offchip and operand in lv.holds]


class _ArrayGemm:
    """One GEMM on a rows x cols array in fold order: tiles, blocking, per-fold DRAM loads and
    the traffic of a block size (the stages of `array_memory_cost`)."""

    def __init__(self, arch: Arch, M: int, N: int, K: int, dataflow: str, rows: int, cols: int,
                 bits: dict[str, dict[str, float]], accumulator_bits: float):
        self.arch, self.M, self.N, self.K, self.dataflow = arch, M, N, K, dataflow
        self.grid = grid = fold_grid(dataflow, M, N, K, rows, cols)
        self.n_out, self.n_in = len(grid.outer_sizes), len(grid.inner_sizes)
        self.dram = arch.offchip_name
        self.byte = {op_: {lv: b / 8.0 for lv, b in bits[op_].items()} for op_ in OPERANDS}
        self.acc_b = accumulator_bits / 8.0
        # Element counts of each operand's tile in one fold (its largest fold) and whole size.
        if dataflow == "os":
            self.tile = {"activations": grid.outer_sizes[0] * K, "weights": K * grid.inner_sizes[0],
                         "outputs": grid.outer_sizes[0] * grid.inner_sizes[0]}
        elif dataflow == "ws":
            self.tile = {"activations": M * grid.inner_sizes[0], "weights": grid.inner_sizes[0] * grid.outer_sizes[0],
                         "outputs": M * grid.outer_sizes[0]}
        else:
            self.tile = {"activations": grid.inner_sizes[0] * grid.outer_sizes[0], "weights": grid.inner_sizes[0] * N,
                         "outputs": grid.outer_sizes[0] * N}
        self.whole = {"activations": M * K, "weights": K * N, "outputs": M * N}
        self._block()
        self._fold_loads()

    def buffer(self, operand: str) -> str | None:
        levels = _holding_levels(self.arch, operand)
        return levels[-1] if levels else None

    def tile_bytes(self, operand: str, level: str) -> float:
        b = self.byte[operand].get(level, self.byte[operand][self.dram])
        if operand == "outputs":
            b = max(b, self.acc_b) if (self.dataflow != "os" and self.n_in > 1) else b
        return self.tile[operand] * b

    def others(self, operand: str, level: str) -> float:
        return sum(self.tile_bytes(x, level) for x in OPERANDS if x != operand and level in self.byte[x])

    def fits(self, operand: str, elements: float) -> bool:
        level = self.buffer(operand)
        if level is None:
            return False
        return elements * self.byte[operand][level] + self.others(operand, level) <= usable_bytes(self.arch, level)

    def _block(self) -> None:
        """Blocking. `held` is indexed by the outer loop and stays on chip over the inner loop (OS: an
        activation row tile; WS/IS: an output tile's partial sums); `streamed` by the inner loop only.
        b = how many outer tiles of `held` fit at once (0: not even one)."""
        held, streamed = {"os": ("activations", "weights"), "ws": ("outputs", "activations"),
                          "is": ("outputs", "weights")}[self.dataflow]
        self.streamed = streamed
        n_out, n_in = self.n_out, self.n_in
        held_level = self.buffer(held)
        b = 0
        if held_level is not None:
            per_tile = self.tile[held] * (self.byte[held][held_level] if held == "activations" else self.acc_b)
            rest, room = self.others(held, held_level), usable_bytes(self.arch, held_level)

            def block_fits(n: int) -> bool:
                return n * per_tile + rest <= room

            b = n_out if per_tile <= 0 else int(min(n_out, max(0.0, (room - rest) // per_tile)))
            while b > 0 and not block_fits(b):                 # settle the floor against rounding
                b -= 1
            while b < n_out and block_fits(b + 1):
                b += 1
        self.b = b
        self.resident = bool(self.fits(streamed, self.whole[streamed]))
        # A block of several outer tiles also keeps each streamed tile on chip for its folds.
        self.max_block = b if (n_in > 1 and b > 1 and (self.resident or self.fits(streamed, self.tile[streamed]))) else 1
        self.spill = self.dataflow != "os" and n_in > 1 and b == 0

    def _fold_loads(self) -> None:
        """Per-fold DRAM bytes in grid order, split by what the fold order changes (see
        `kernels.schedule.blocked_fold_schedule`): `base` every fold, `held_load` per outer tile
        before its first inner step, `streamed_load` per inner tile once per block (once if resident)."""
        grid, n_out, n_in, M, N, K, b = self.grid, self.n_out, self.n_in, self.M, self.N, self.K, self.b
        byte, dram, acc_b = self.byte, self.dram, self.acc_b
        o = np.repeat(grid.outer_sizes, n_in)
        i = np.tile(grid.inner_sizes, n_out)
        first_inner = np.tile(np.arange(n_in) == 0, n_out)
        last_inner = np.tile(np.arange(n_in) == n_in - 1, n_out)
        a_b, w_b, out_b = byte["activations"][dram], byte["weights"][dram], byte["outputs"][dram]
        zero_out = np.zeros(n_out)
        if self.dataflow == "os":
            base = np.zeros(n_out * n_in) if b >= 1 else o * K * a_b       # A re-fetched every fold
            held_load = grid.outer_sizes * K * a_b if b >= 1 else zero_out
            streamed_load = K * grid.inner_sizes * w_b
            store = o * i * out_b
        else:
            base = i * o * (w_b if self.dataflow == "ws" else a_b)
            held_load = zero_out
            streamed_load = grid.inner_sizes * (M * a_b if self.dataflow == "ws" else N * w_b)
            # Outputs accumulate over the inner (K) loop, in the output buffer unless they spill.
            out_tile = o * (M if self.dataflow == "ws" else N)
            store = out_tile * out_b * last_inner
            if self.spill:
                store = store + out_tile * acc_b * ~last_inner
                base = base + out_tile * acc_b * ~first_inner
        self.base, self.held_load, self.streamed_load, self.store = base, held_load, streamed_load, store
        self.psum_dram_reads = (n_in - 1) * M * N * acc_b if self.spill else 0.0
        self.out_b = out_b
        # Elements fetched from DRAM in total and the array's reads from its innermost buffer.
        if self.dataflow == "os":
            self.demand = {"activations": M * K * n_in, "weights": K * N * n_out}
            self.held_fetched = {"activations": M * K * (1 if b >= 1 else n_in)}
        elif self.dataflow == "ws":
            self.demand = {"activations": M * K * n_out, "weights": K * N}
            self.held_fetched = {"weights": K * N}
        else:
            self.demand = {"activations": M * K, "weights": K * N * n_out}
            self.held_fetched = {"activations": M * K}
        self.store_total = float(store.sum())
        self.k_folds = n_in if self.dataflow != "os" else 1

    def traffic(self, block: int) -> tuple[dict[str, float], dict[str, float]]:
        """Bytes read and written at every level when `block` outer tiles share each streamed fetch."""
        arch, byte, dram, M, N = self.arch, self.byte, self.dram, self.M, self.N
        fetched = dict(self.held_fetched)
        fetched[self.streamed] = self.whole[self.streamed] * (1 if self.resident else ceil_div(self.n_out, block))
        reads = {name: 0.0 for name in arch.memory}
        writes = {name: 0.0 for name in arch.memory}
        for operand in ("activations", "weights"):
            reads[dram] += fetched[operand] * byte[operand][dram]
            levels = _holding_levels(arch, operand)
            for level in levels:
                writes[level] += fetched[operand] * byte[operand][level]
                reads[level] += fetched[operand] * byte[operand][level]  # passed inward or to the array (fill)
            if levels:
                # The fill already counted one read per fetched element; the rest are buffer re-reads.
                reads[levels[0]] += max(0.0, self.demand[operand] - fetched[operand]) * byte[operand][levels[0]]
        # Outputs and partial sums.
        writes[dram] += self.store_total
        reads[dram] += self.psum_dram_reads
        out_levels = _holding_levels(arch, "outputs")
        if out_levels:
            inner = out_levels[0]
            psum_traffic = M * N * (self.k_folds - 1) * self.acc_b
            writes[inner] += psum_traffic + M * N * byte["outputs"].get(inner, self.out_b)
            reads[inner] += psum_traffic + M * N * byte["outputs"].get(inner, self.out_b)
        return reads, writes

    def onchip_need(self, reads: dict[str, float], writes: dict[str, float]) -> float:
        """Cycles the slowest on-chip level needs to move its bytes."""
        return max([(reads[n] + writes[n]) / lv.bandwidth_bytes_per_cycle for n, lv in self.arch.memory.items()
                    if not (lv.offchip or lv.ideal)], default=0.0)


def array_memory_cost(arch: Arch, M: int, N: int, K: int, dataflow: str, rows: int, cols: int,
                      fold_compute_cycles: np.ndarray, bits: dict[str, dict[str, float]],
                      accumulator_bits: float) -> MemoryCost:
    """Traffic and stalls of one GEMM on a rows x cols array.

    `bits[operand][level]` are stored bits per *array element* (the engine folds sparsity
    and compression into them); `fold_compute_cycles` has one entry per fold in
    `fold_grid` order (the blocked order permutes it with the folds).
    """
    g = _ArrayGemm(arch, M, N, K, dataflow, rows, cols, bits, accumulator_bits)
    compute = np.ascontiguousarray(fold_compute_cycles, dtype=np.float64)
    busy = float(compute.sum())
    dram_level = arch.memory[g.dram]
    cycles_per_byte = 0.0 if dram_level.ideal else 1.0 / dram_level.bandwidth_bytes_per_cycle
    base, held_load, streamed_load, store = g.base, g.held_load, g.streamed_load, g.store
    n_out = g.n_out

    # Every balanced block size up to the largest that fits is a legal schedule (1 = outer-major);
    # keep the fastest, then the one with the fewest DRAM bytes. Only a double-buffered schedule
    # depends on the order; otherwise the largest block, with the fewest bytes, is the fastest.
    double_buffered = bool(dram_level.double_buffered) and cycles_per_byte > 0
    blocks = sorted({ceil_div(n_out, nb) for nb in range(ceil_div(n_out, g.max_block), n_out + 1)}, reverse=True)
    if not double_buffered:
        blocks = blocks[:1]

    # Lower bounds on a schedule's stall, to stop the search once no smaller block can win (they
    # only grow as blocks shrink and streamed fetches multiply). Exact in floating point, as every
    # order adds non-negative terms to them: the first fetch and last write-back, never hidden; the
    # slowest on-chip level when the traffic is the same (resident). Within a rounding margin: all
    # transfers share one channel; and, as max(0, x + y - c) >= max(0, x - c) + max(0, y - c), each
    # fetch but the first costs at least its transfer minus the longest fold, a streamed one with
    # the smallest write-back beside it (all but two of those).
    unhidden = (base[0] + held_load[0] + streamed_load[0]) * cycles_per_byte + store[-1] * cycles_per_byte
    other_bytes = float(base.sum() + held_load.sum()) + g.store_total
    c_max = float(compute.max())

    def excess(x: np.ndarray) -> np.ndarray:
        return np.maximum(0.0, x * cycles_per_byte - c_max)

    fixed_floor = unhidden + float(excess(base[1:]).sum() + excess(held_load[1:]).sum())
    per_streamed = excess(streamed_load + float(store.min()))

    def cannot_win(block: int, onchip_floor: float, best_stall: float) -> bool:
        fetches = 1 if g.resident else ceil_div(n_out, block)
        transfer = (other_bytes + float(streamed_load.sum()) * fetches) * cycles_per_byte
        events = fixed_floor + max(0.0, fetches * float(per_streamed.sum()) - 2 * float(per_streamed.max()))
        return (unhidden >= best_stall or (g.resident and onchip_floor >= best_stall)
                or max(events, transfer - busy, onchip_floor) > best_stall * (1 + 1e-9) + 1e-9)

    best = None
    for block in blocks:
        reads, writes = g.traffic(block)
        # On-chip bandwidth: a level that cannot move its bytes within the time the op already takes
        # (compute plus DRAM stalls, during which it keeps transferring) stalls it for the rest.
        onchip_floor = g.onchip_need(reads, writes) - busy
        if best is not None and cannot_win(block, onchip_floor, best[0][0]):
            break
        _, dram_stall = blocked_fold_schedule(compute, base, held_load, streamed_load, store, g.n_in, block,
                                              g.resident, cycles_per_byte, double_buffered)
        stall = max(float(dram_stall), onchip_floor)
        key = (stall, reads[g.dram] + writes[g.dram])
        if best is None or key < best[0]:
            best = (key, float(dram_stall), reads, writes)
    (stall, _), dram_stall, reads, writes = best
    notes = ("partial sums spill to DRAM",) if g.spill else ()
    return MemoryCost(stall_cycles=stall, dram_stall_cycles=dram_stall, onchip_stall_cycles=stall - dram_stall,
                      reads_bytes=reads, writes_bytes=writes, notes=notes)


# ----------------------------------------------------------------------------- the engines' view of the hierarchy

def no_traffic(arch: Arch) -> dict[str, float]:
    """Zero bytes at every level (a traffic dict to fill)."""
    return {name: 0.0 for name in arch.memory}


def offchip_bytes_per_cycle(arch: Arch, efficiency: float = 1.0) -> float:
    """Off-chip bytes per cycle at `efficiency` x the level's peak (inf when ideal)."""
    return arch.memory[arch.offchip_name].bytes_per_cycle * efficiency


def last_onchip_level(arch: Arch) -> str | None:
    """The outermost on-chip level (a GPU's L2), None when the arch has none."""
    onchip = [name for name, level in arch.memory.items() if not level.offchip]
    return onchip[-1] if onchip else None


def usable_bytes(arch: Arch, level: str) -> float:
    """Capacity a tile may use at `level`: half of it when double-buffered."""
    lv = arch.memory[level]
    return lv.capacity_bytes * (0.5 if lv.double_buffered else 1.0)


def streaming_memory_cost(arch: Arch, bytes_read: float, bytes_written: float, compute_cycles: float, *,
                          level: str | None = None, bytes_per_cycle: float | None = None,
                          double_buffered: bool | None = None) -> MemoryCost:
    """An op that streams its operands once through one level (DRAM by default; vector ops,
    GEMV-like): the slower of compute and transfer bounds it (transfers overlap compute when
    double-buffered). `bytes_per_cycle` / `double_buffered` override the level's own figures
    (an engine's achievable bandwidth; a buffer an engine streams through on chip)."""
    level = level or arch.offchip_name
    lv = arch.memory[level]
    bpc = lv.bytes_per_cycle if bytes_per_cycle is None else bytes_per_cycle
    transfer = (bytes_read + bytes_written) / bpc if math.isfinite(bpc) else 0.0
    double = lv.double_buffered if double_buffered is None else double_buffered
    stall = max(0.0, transfer - compute_cycles) if double else transfer
    reads, writes = no_traffic(arch), no_traffic(arch)
    reads[level] = bytes_read
    writes[level] = bytes_written
    dram_stall = stall if lv.offchip else 0.0
    return MemoryCost(stall_cycles=stall, dram_stall_cycles=dram_stall, onchip_stall_cycles=stall - dram_stall,
                      reads_bytes=reads, writes_bytes=writes)


__all__ = ["FoldGrid", "fold_grid", "MemoryCost", "array_memory_cost", "streaming_memory_cost",
           "operand_bits", "ceil_div", "no_traffic", "offchip_bytes_per_cycle", "last_onchip_level", "usable_bytes"]
