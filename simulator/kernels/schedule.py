"""Fold-by-fold overlap of DRAM transfers with compute.

Each fold f needs `load[f]` bytes in its buffers before it starts and produces `store[f]`
bytes to write back. With double buffering, fold f+1's fetch and fold f-1's write-back
run while fold f computes, so a fold takes max(compute, transfer); without it the three
phases run one after another. The first fetch and the last write-back are never hidden.
"""

import numpy as np
from numba import njit


@njit(cache=True)
def fold_schedule(compute, load, store, seconds_per_byte, double_buffered):
    """Return (total_cycles, stall_cycles) for folds with per-fold compute cycles and DRAM bytes.

    `seconds_per_byte` is really cycles per byte (1 / bandwidth); 0 means ideal memory.
    """
    n = compute.shape[0]
    if n == 0:
        return 0.0, 0.0
    busy = 0.0
    total = 0.0
    for f in range(n):
        busy += compute[f]
    if not double_buffered:
        for f in range(n):
            total += (load[f] + store[f]) * seconds_per_byte + compute[f]
        return total, total - busy
    total = load[0] * seconds_per_byte
    for f in range(n):
        transfer = 0.0
        if f + 1 < n:
            transfer += load[f + 1] * seconds_per_byte
        if f >= 1:
            transfer += store[f - 1] * seconds_per_byte
        step = compute[f]
        if transfer > step:
            step = transfer
        total += step
    total += store[n - 1] * seconds_per_byte
    return total, total - busy


def warm_up() -> None:
    """Compile outside timed regions."""
    z = np.zeros(2)
    fold_schedule(z + 1.0, z, z, 1.0, True)
