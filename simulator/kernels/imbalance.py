"""Per-PE load imbalance of zero-skipping arrays, from measured counts or a distribution.

A skipping PE array runs a fold as long as its busiest PE row/column: the fold time is set
by the *maximum* nonzero work over the units (rows or columns of the operand) mapped onto
it, not by the average. These kernels compute that maximum per fold:

- `row_nnz_from_mask`: nonzeros per row or column of a (sampled) 0/1 mask;
- `fold_max`: per-fold maximum of per-unit work, units tiled consecutively `tile` at a time
  (exact when every unit's count is known);
- `expected_max_of_draws`: E[max of t i.i.d. draws] from a discrete distribution (for a
  sample of counts, or a binomial model when nothing was measured);
- `binomial_pmf`: P(X = x) for X ~ Binomial(n, p), computed in log space (no overflow at n ~ 1e5).

Pure functions on numpy arrays, compiled once with `cache=True`; call `warm_up()` outside
timed regions. Approximation: when only a sample is known, columns are taken as i.i.d.
draws from the sample (spatial correlation between neighbouring columns is ignored).
"""

from __future__ import annotations

import math

import numpy as np
from simulator.kernels import jit_now, lazy_njit as njit


@njit(cache=True)
def row_nnz_from_mask(mask, axis):
    """Nonzeros per row (axis=1: count along each row) or per column (axis=0) of a 2-D mask."""
    rows, cols = mask.shape
    if axis == 1:
        out = np.zeros(rows, dtype=np.int64)
        for r in range(rows):
            c_sum = 0
            for c in range(cols):
                if mask[r, c] != 0:
                    c_sum += 1
            out[r] = c_sum
        return out
    out = np.zeros(cols, dtype=np.int64)
    for r in range(rows):
        for c in range(cols):
            if mask[r, c] != 0:
                out[c] += 1
    return out


@njit(cache=True)
def fold_max(work, tile):
    """Maximum of `work` over consecutive chunks of `tile` units (the last chunk may be shorter)."""
    n = work.shape[0]
    folds = (n + tile - 1) // tile
    out = np.zeros(folds, dtype=np.float64)
    for f in range(folds):
        start = f * tile
        stop = min(n, start + tile)
        best = work[start]
        for u in range(start + 1, stop):
            if work[u] > best:
                best = work[u]
        out[f] = best
    return out


@njit(cache=True)
def expected_max_of_draws(values, probs, t):
    """E[max of t i.i.d. draws] from a distribution on sorted `values` with probabilities `probs`.

    Uses P(max <= v) = F(v)^t, so E[max] = sum_v v * (F(v)^t - F(v_prev)^t).
    """
    total = 0.0
    for p in probs:
        total += p
    cdf_prev = 0.0
    acc = 0.0
    expected = 0.0
    for i in range(values.shape[0]):
        acc += probs[i] / total
        cdf = min(1.0, acc)
        expected += values[i] * (cdf ** t - cdf_prev ** t)
        cdf_prev = cdf
    return expected


@njit(cache=True)
def binomial_pmf(n, p):
    """P(X = x), x = 0..n, for X ~ Binomial(n, p)."""
    out = np.zeros(n + 1, dtype=np.float64)
    if p <= 0.0:
        out[0] = 1.0
        return out
    if p >= 1.0:
        out[n] = 1.0
        return out
    lp = math.log(p)
    lq = math.log1p(-p)
    lg_n = math.lgamma(n + 1.0)
    for x in range(n + 1):
        out[x] = math.exp(lg_n - math.lgamma(x + 1.0) - math.lgamma(n - x + 1.0) + x * lp + (n - x) * lq)
    return out


def warm_up() -> None:
    """Compile every kernel once (outside timed regions)."""
    jit_now()
    row_nnz_from_mask(np.ones((2, 2), dtype=np.uint8), 0)
    fold_max(np.ones(3), 2)
    expected_max_of_draws(np.arange(3.0), np.ones(3) / 3.0, 2)
    binomial_pmf(4, 0.5)


__all__ = ["row_nnz_from_mask", "fold_max", "expected_max_of_draws", "binomial_pmf", "warm_up"]
