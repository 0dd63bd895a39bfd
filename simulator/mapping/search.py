"""Exhaustive, capacity-pruned search for the best mapping of a loop nest, memoised.

The space: for each tiled dim (G, N, K, C, P, Q) a tile size, and one of the 6 orders of the
reuse classes (`simulator.mapping.reuse`). Only *balanced* tile sizes are visited: t = ceil(D / n)
(aligned up to the dim's granule, so tiles hold whole array folds). This loses nothing: any other
size t' gives the same tile count n as the balanced t <= t', hence the same data (halos included:
n tiles of an output dim touch the same input rows however they split it) moved in the same number
of transfers, but a larger footprint, so it is never better in any objective. For a fixed loop
order, every metric (DRAM and on-chip traffic, stalls, energy) is non-increasing in every tile size,
so of the combinations that fit only those where C cannot grow are costed, and combinations that
cannot fit prune every larger one (`reuse.search_kernel`). Each costed combination is evaluated
exactly under every distinct loop order (orders that differ only in where loops with one tile sit
are the same nest).
The result is memoised per (nest, parameter vector), so a sweep never searches the same case twice.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from simulator.kernels import jit_now
from simulator.mapping.reuse import N_OUT, N_PARAMS, ORDERS, RESULT_FIELDS, evaluate, search_kernel

from simulator.mapping.spec import TILED_DIMS as TILED  # the order of the kernels' tile vectors


def balanced_tiles(size: int, granule: int = 1) -> np.ndarray:
    """Every balanced tile size of a dim, ascending: min(size, granule * ceil(ceil(size/granule) / n))."""
    units = -(-size // granule)
    n = np.arange(1, units + 1, dtype=np.float64)
    tiles = np.minimum(float(size), granule * np.ceil(units / n))
    return np.unique(tiles)


@dataclass(frozen=True)
class Choice:
    """The best mapping found: tile sizes per dim, class order (outer first) and its evaluation."""
    tiles: dict[str, int]
    order: tuple[str, ...]
    stats: dict[str, float]
    aligned: bool = True          # False: no tile aligned to the array fits, smaller tiles were used


_MEMO: OrderedDict[bytes, Choice | None] = OrderedDict()   # least recently used first
MEMO_KEPT = 50_000                                         # bounded, for long sweeps
CLASS_OF = ("K", "C", "NPQ")


def candidates(sizes: dict[str, int], granules: dict[str, int], pinned: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """Candidate tile sizes per tiled dim (rows of a padded array) and how many each dim has."""
    return _candidates(tuple(sizes[d] for d in TILED), tuple(granules.get(d, 1) for d in TILED),
                       tuple(pinned.get(d, 0) for d in TILED))


@lru_cache(maxsize=4096)
def _candidates(sizes: tuple, granules: tuple, pinned: tuple) -> tuple[np.ndarray, np.ndarray]:
    lists = []
    for size, granule, pin in zip(sizes, granules, pinned):
        lists.append(np.array([float(min(pin, size))]) if pin else balanced_tiles(size, granule))
    counts = np.array([len(c) for c in lists], dtype=np.int64)
    cands = np.zeros((6, int(counts.max())))
    for d, c in enumerate(lists):
        cands[d, :len(c)] = c
    return cands, counts


def search(sizes: dict[str, int], granules: dict[str, int], pinned: dict[str, int], params: np.ndarray) -> Choice | None:
    """Best mapping of a nest with `sizes`, or None when no tile fits (memoised)."""
    key = repr((sorted(sizes.items()), sorted(granules.items()), sorted(pinned.items()))).encode() + params.tobytes()
    if key in _MEMO:
        _MEMO.move_to_end(key)
        return _MEMO[key]
    cands, counts = candidates(sizes, granules, pinned)
    best_t, best_out = np.zeros(6), np.zeros(N_OUT)
    o = search_kernel(cands, counts, params, best_t, best_out)
    choice = None
    if o >= 0:
        choice = Choice(tiles={d: int(best_t[i]) for i, d in enumerate(TILED)},
                        order=tuple(CLASS_OF[c] for c in ORDERS[o]),
                        stats=dict(zip(RESULT_FIELDS, (float(x) for x in best_out))))
    _MEMO[key] = choice
    if len(_MEMO) > MEMO_KEPT:
        _MEMO.popitem(last=False)
    return choice


def evaluate_mapping(tiles: dict[str, int], order_index: int, params: np.ndarray) -> dict[str, float]:
    """Evaluate one mapping (for brute-force checks and explanations)."""
    out = np.zeros(N_OUT)
    evaluate(np.array([float(tiles[d]) for d in TILED]), order_index, params, out)
    return dict(zip(RESULT_FIELDS, (float(x) for x in out)))


def warm_up() -> None:
    """Compile the kernels outside timed regions (from now on every kernel runs compiled)."""
    jit_now()
    p = np.zeros(N_PARAMS)
    p[:6] = 1.0
    p[6:11] = 1.0
    p[18:21] = -1.0
    p[38] = 1.0
    cands, counts = candidates({d: 1 for d in TILED}, {}, {})
    search_kernel(cands, counts, p, np.zeros(6), np.zeros(N_OUT))
