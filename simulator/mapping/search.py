"""Exhaustive, capacity-pruned search for the best mapping of a loop nest, memoised.

The space: for each tiled dim (G, N, K, C, P, Q) a tile size, and one of the 6 orders of the
reuse classes (`simulator.mapping.reuse`). Only *balanced* tile sizes are visited: t = ceil(D / n)
(aligned up to the dim's granule, so tiles hold whole array folds). This loses nothing: any other
size t' gives the same tile count n as the balanced t <= t', hence the same data moved in the same
number of transfers, but a larger first tile and footprint, so it is never better in any objective.
Every balanced combination is visited except those that cannot fit: a tile's footprint grows with
every dim's tile size, so once a combination overflows a buffer, larger sizes of the dims enumerated
inside it overflow too and are skipped. What remains is evaluated exactly under all 6 orders.
The result is memoised per (nest, parameter vector), so a sweep never searches the same case twice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from simulator.mapping.reuse import (CANONICAL, N_OUT, N_PARAMS, ORDERS, RESULT_FIELDS, evaluate,
                                     evaluate_order, fits, pattern, tile_terms)

TILED = ("G", "N", "K", "C", "P", "Q")
# Enumeration nesting (outer to inner): the reduction C innermost, as it has the most sizes.
ENUM_ORDER = np.array([0, 1, 2, 4, 5, 3], dtype=np.int64)


def balanced_tiles(size: int, granule: int = 1) -> np.ndarray:
    """Every balanced tile size of a dim, ascending: min(size, granule * ceil(ceil(size/granule) / n))."""
    units = -(-size // granule)
    n = np.arange(1, units + 1, dtype=np.float64)
    tiles = np.minimum(float(size), granule * np.ceil(units / n))
    return np.unique(tiles)


@njit(cache=True)
def _search(cands, counts, p, best_t, best_out):
    """Visit every fitting combination of candidate tile sizes under each distinct order; keep the
    lowest objective (ties: lower energy, then fewer DRAM bytes, as ZigZag breaks latency ties). Returns the best order's index, -1 if nothing fits."""
    idx = np.zeros(6, dtype=np.int64)
    t = np.empty(6)
    terms = np.empty(8)
    out = np.empty(N_OUT)
    best_order = -1
    best_key = np.inf
    best_energy = np.inf
    best_bytes = np.inf
    while True:
        for d in range(6):
            t[d] = cands[d, idx[d]]
        pos = 5
        if fits(t, p):
            tile_terms(t, p, terms)
            pat = pattern(terms)
            for o in range(6):
                if not CANONICAL[o, pat]:
                    continue
                evaluate_order(terms, o, p, out)
                key = out[8]
                energy = out[7]
                moved = out[1] + out[2] + out[3] + out[4]
                if key < best_key or (key == best_key and (energy < best_energy or (
                        energy == best_energy and moved < best_bytes))):
                    best_key, best_energy, best_bytes, best_order = key, energy, moved, o
                    best_t[:] = t
                    best_out[:] = out
        else:
            # Infeasible with every dim inside position q at its smallest size: so is any larger size
            # at q (footprints grow with every tile size), so skip past it.
            q = 5
            while q > 0 and idx[ENUM_ORDER[q]] == 0:
                q -= 1
            if q == 0:
                break
            idx[ENUM_ORDER[q]] = 0
            pos = q - 1
        while pos >= 0:
            d = ENUM_ORDER[pos]
            idx[d] += 1
            if idx[d] < counts[d]:
                break
            idx[d] = 0
            pos -= 1
        if pos < 0:
            break
    return best_order


@dataclass(frozen=True)
class Choice:
    """The best mapping found: tile sizes per dim, class order (outer first) and its evaluation."""
    tiles: dict[str, int]
    order: tuple[str, ...]
    stats: dict[str, float]
    aligned: bool = True          # False: no tile aligned to the array fits, smaller tiles were used


_MEMO: dict[bytes, Choice | None] = {}
CLASS_OF = ("K", "C", "NPQ")


def candidates(sizes: dict[str, int], granules: dict[str, int], pinned: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    lists = []
    for dim in TILED:
        if dim in pinned:
            lists.append(np.array([float(min(pinned[dim], sizes[dim]))]))
        else:
            lists.append(balanced_tiles(sizes[dim], granules.get(dim, 1)))
    counts = np.array([len(c) for c in lists], dtype=np.int64)
    cands = np.zeros((6, int(counts.max())))
    for d, c in enumerate(lists):
        cands[d, :len(c)] = c
    return cands, counts


def search(sizes: dict[str, int], granules: dict[str, int], pinned: dict[str, int], params: np.ndarray) -> Choice | None:
    """Best mapping of a nest with `sizes`, or None when no tile fits (memoised)."""
    key = repr((sorted(sizes.items()), sorted(granules.items()), sorted(pinned.items()))).encode() + params.tobytes()
    if key in _MEMO:
        return _MEMO[key]
    cands, counts = candidates(sizes, granules, pinned)
    best_t, best_out = np.zeros(6), np.zeros(N_OUT)
    o = _search(cands, counts, params, best_t, best_out)
    choice = None
    if o >= 0:
        choice = Choice(tiles={d: int(best_t[i]) for i, d in enumerate(TILED)},
                        order=tuple(CLASS_OF[c] for c in ORDERS[o]),
                        stats=dict(zip(RESULT_FIELDS, (float(x) for x in best_out))))
    _MEMO[key] = choice
    return choice


def evaluate_mapping(tiles: dict[str, int], order_index: int, params: np.ndarray) -> dict[str, float]:
    """Evaluate one mapping (for brute-force checks and explanations)."""
    out = np.zeros(N_OUT)
    evaluate(np.array([float(tiles[d]) for d in TILED]), order_index, params, out)
    return dict(zip(RESULT_FIELDS, (float(x) for x in out)))


def warm_up() -> None:
    """Compile the kernels outside timed regions."""
    p = np.zeros(N_PARAMS)
    p[:6] = 1.0
    p[6:11] = 1.0
    p[18:21] = -1.0
    p[38] = 1.0
    cands, counts = candidates({d: 1 for d in TILED}, {}, {})
    _search(cands, counts, p, np.zeros(6), np.zeros(N_OUT))
