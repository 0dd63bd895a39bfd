"""On-chip buffer tilings of one DSP-chain GEMM, with K tiling (a local stand-in for the mapping model).

Why: with the full reduction K inside every fold, a weight tile is K x p_n and an activation row
is K long. Once K grows past what the weight / activation buffers hold (half of it when double
buffered), the tile no longer fits and the operand is re-fetched from DRAM for every fold: on
`fpga_vcu1525_nm.yaml` a 2048 x 4096 GEMM fell from 99% to 19% utilisation at K = 16384 (the
400-column weight tile, 13.1 MB at 16 bits, no longer fits half of the 18 MiB URAM).

A tiling here cuts the chain's k_steps issues into `k_tiles` tiles (loop nest: row chunks >
N tiles > K tiles > M tiles, see `simulator.kernels.dsp.chain_folds`). The partial sums of a
chunk's rows x p_n columns stay on chip at accumulator width across K tiles, in the outputs'
buffer; a K tiling whose partial sums do not fit is not offered (no spill path). For each
k_tiles three schemes are offered:

- `full_k`: a chunk of whole K-long activation rows stays in the buffer and is loaded from DRAM
  once per chunk, reused by every N tile (today's scheme when k_tiles = 1);
- `slice`: the buffer holds only the current K tile of a (longer) chunk, so activations are
  reloaded for every N tile but weights are reloaded for fewer chunks;
- `k_outer`: the K-tile loop moves outside the N-tile loop: the chunk's current K slice of
  activations is loaded once and all N tiles stream past it, so the partial sums of the chunk's
  rows x all N columns stay on chip (weights are re-read once per chunk).

The engine evaluates every offered tiling with the fold kernel and keeps the fewest cycles
(k_tiles = 1, full_k first, wins ties), so K tiling never makes a GEMM slower than the untiled
scheme. Approximation: k_tiles are powers of two up to `MAX_K_TILES`, not an exhaustive search.
"""

from __future__ import annotations

import dataclasses
import math

MAX_K_TILES = 256
MAX_K_TILED_FOLDS = 2_000_000   # folds evaluated per K-tiled candidate (bounds run time)


@dataclasses.dataclass(frozen=True)
class Tiling:
    k_tiles: int
    p_m: int               # rows per fold (hardware rows x rows kept weight-stationary)
    chunk: int             # activation rows loaded per chunk
    a_chunk_fits: bool     # True: the chunk's activations are loaded once (not per N tile)
    w_fits: bool           # the K tile of p_n weight columns stays on chip across M tiles
    k_outer: bool
    label: str


@dataclasses.dataclass(frozen=True)
class Buffers:
    """The GEMM's operand sizes and the usable bytes of the levels holding each operand."""
    M: int
    p_m_hw: int
    p_n: int
    row_bytes: float        # one full-K activation row
    w_tile: float           # full-K weight tile of p_n columns
    out_tile: float         # p_m_hw x p_n outputs
    psum_row: float         # one row of p_n partial sums at accumulator width
    psum_row_all: float     # one row of all N partial sums at accumulator width
    ws_rows: int            # rows kept weight-stationary in the chains (spec)
    a_lvl: str | None
    w_lvl: str | None
    o_lvl: str | None
    usable: dict            # level name -> usable bytes (half when double buffered)


def _tiling(b: Buffers, k_tiles: int, full_k: bool, k_outer: bool = False) -> Tiling | None:
    """Rows per fold and chunk for one K tiling and scheme; None if it cannot fit."""
    psum = (b.psum_row_all if k_outer else b.psum_row) if k_tiles > 1 else 0.0
    if k_tiles > 1 and b.o_lvl is None:
        return None
    w_k = b.w_tile / k_tiles
    act_row = b.row_bytes if full_k else b.row_bytes / k_tiles
    per_row = act_row + (psum if b.o_lvl == b.a_lvl else 0.0)
    r = min(b.ws_rows, max(1, math.ceil(b.M / b.p_m_hw)))
    if b.a_lvl is not None:
        room = b.usable[b.a_lvl] - (w_k if b.w_lvl == b.a_lvl else 0.0) \
            - (b.out_tile if b.o_lvl == b.a_lvl else 0.0)
        while r > 1 and b.p_m_hw * r * per_row > room:
            r = max(1, r // 2)
        p_m = b.p_m_hw * r
        fit_rows = int(room // per_row) if per_row > 0 else b.M
        chunk = b.M if fit_rows >= b.M else max(p_m, (fit_rows // p_m) * p_m)
        a_chunk_fits = (full_k or k_outer) and chunk * per_row <= room
        if k_tiles > 1 and chunk * per_row > room:
            return None                       # partial sums or the K slice of the chunk do not fit
    else:
        p_m, chunk, a_chunk_fits = b.p_m_hw * r, b.M, False
    if psum and b.o_lvl != b.a_lvl:
        other = (w_k if b.w_lvl == b.o_lvl else 0.0)
        if chunk * psum + other > b.usable[b.o_lvl]:
            return None
    w_fits = b.w_lvl is not None and w_k + (p_m * act_row if b.a_lvl == b.w_lvl else 0.0) \
        + (p_m * (psum or b.out_tile / b.p_m_hw) if b.o_lvl == b.w_lvl else 0.0) <= b.usable[b.w_lvl]
    scheme = "K outer" if k_outer else "chunk-resident" if full_k else "sliced"
    label = "full K" if k_tiles == 1 else f"K/{k_tiles} {scheme}"
    return Tiling(k_tiles, p_m, chunk, a_chunk_fits, w_fits, k_outer, label)


def tilings(b: Buffers, k_steps: int, tile_k: bool) -> list[Tiling]:
    """The untiled scheme first, then (when `tile_k`) K tilings k_tiles = 2, 4, ... that fit."""
    out = [_tiling(b, 1, True)]
    if tile_k:
        k_tiles = 2
        while k_tiles <= min(k_steps, MAX_K_TILES):
            for full_k, k_outer in ((True, False), (False, False), (False, True)):
                t = _tiling(b, k_tiles, full_k, k_outer)
                if t is not None:
                    out.append(t)
            k_tiles *= 2
    return out
