"""Fold-by-fold overlap of DRAM transfers with compute.

Each fold f needs `load[f]` bytes in its buffers before it starts and produces `store[f]`
bytes to write back. With double buffering, fold f+1's fetch and fold f-1's write-back
run while fold f computes, so a fold takes max(compute, transfer); without it the three
phases run one after another. The first fetch and the last write-back are never hidden.

`blocked_fold_schedule` runs a two-loop fold grid in its buffer-level blocked order
(see `simulator.memory`).
"""

import numpy as np
from simulator.kernels import jit_now, lazy_njit as njit


@njit(cache=True, interpret_small=True)
def fold_schedule(compute, load, store, seconds_per_byte, double_buffered):
    """Return (total_cycles, stall_cycles) for folds with per-fold compute cycles and DRAM bytes.

    `seconds_per_byte` is really cycles per byte (1 / bandwidth); 0 means ideal memory.
    """
    n = compute.shape[0]
    if n == 0:
        return 0.0, 0.0
    busy = 0.0
    for f in range(n):
        busy += compute[f]
    # Stalls are summed directly (a hidden transfer adds exactly 0), so two fold orders whose
    # transfers all hide tie exactly.
    stall = 0.0
    if not double_buffered:
        for f in range(n):
            stall += (load[f] + store[f]) * seconds_per_byte
        return busy + stall, stall
    stall = load[0] * seconds_per_byte
    for f in range(n):
        transfer = 0.0
        if f + 1 < n:
            transfer += load[f + 1] * seconds_per_byte
        if f >= 1:
            transfer += store[f - 1] * seconds_per_byte
        if transfer > compute[f]:
            stall += transfer - compute[f]
    stall += store[n - 1] * seconds_per_byte
    return busy + stall, stall


@njit(cache=True, interpret_small=True)
def blocked_fold_schedule(compute, base_load, held_load, streamed_load, store, n_in, block, resident,
                          seconds_per_byte, double_buffered):
    """`fold_schedule` of a two-loop fold grid run in the blocked order: blocks of `block` outer
    tiles (the last may be short), inner, outer-within-block; `block` = 1 is outer-major.

    Arrays are in outer-major grid order (fold f = outer * n_in + inner): `compute`, `store` and
    `base_load` per fold (bytes that do not depend on the order), `held_load` per outer tile
    (fetched before its first inner step), `streamed_load` per inner tile (fetched before the
    first fold of each block, or only in the first block when `resident`).
    """
    n = compute.shape[0]
    if n == 0:
        return 0.0, 0.0
    n_out = n // n_in
    busy = 0.0
    stall = 0.0
    first = True
    store1 = store2 = compute1 = 0.0      # store of the previous fold and the one before; compute of the previous
    for start in range(0, n_out, block):
        for q in range(n_in):
            for p in range(start, min(start + block, n_out)):
                f = p * n_in + q
                load = base_load[f]
                if q == 0:
                    load += held_load[p]
                if p == (0 if resident else start):
                    load += streamed_load[q]
                busy += compute[f]
                if not double_buffered:
                    stall += (load + store[f]) * seconds_per_byte
                    continue
                if first:
                    stall += load * seconds_per_byte             # the first fetch is never hidden
                    first = False
                else:
                    # This fold's fetch and the write-back two folds back overlap the previous fold.
                    transfer = load * seconds_per_byte + store2 * seconds_per_byte
                    if transfer > compute1:
                        stall += transfer - compute1
                store2, store1, compute1 = store1, store[f], compute[f]
    if double_buffered:
        transfer = store2 * seconds_per_byte                     # the last fold overlaps only a write-back
        if transfer > compute1:
            stall += transfer - compute1
        stall += store1 * seconds_per_byte                       # the last write-back is never hidden
    return busy + stall, stall


def warm_up() -> None:
    """Compile outside timed regions."""
    jit_now()
    z = np.zeros(2)
    fold_schedule(z + 1.0, z, z, 1.0, True)
    blocked_fold_schedule(z + 1.0, z, z, z, z, 1, 1, False, 1.0, True)
