"""Non-dominated (Pareto) filtering for minimisation; objectives to maximise are negated.

Point a dominates b when a <= b in every objective and a < b in at least one. Equal
points do not dominate each other, so duplicates on the front are all kept. Rows with a
NaN in any objective are never on the front.

Algorithm: sort lexicographically; a point can only be dominated by one that sorts before
it, so each point is compared (vectorised) against the front found so far. That is
O(n x front) and fast for the fronts sweeps produce; two objectives take an O(n log n)
scan.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def as_minimisation(values, maximize: Sequence[bool] | None = None) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2:
        raise ValueError(f"values must be 2-D (points x objectives), got shape {v.shape}")
    if maximize is not None:
        sign = np.where(np.asarray(maximize, dtype=bool), -1.0, 1.0)
        if sign.shape[0] != v.shape[1]:
            raise ValueError(f"maximize has {sign.shape[0]} entries for {v.shape[1]} objectives")
        v = v * sign
    return v


def non_dominated(values, maximize: Sequence[bool] | None = None) -> np.ndarray:
    """Boolean mask of the rows of `values` (n x k) that no other row dominates."""
    v = as_minimisation(values, maximize)
    n, k = v.shape
    mask = np.zeros(n, dtype=bool)
    if n == 0:
        return mask
    ok = np.flatnonzero(~np.isnan(v).any(axis=1))
    if ok.size == 0:
        return mask
    w = v[ok]
    order = np.lexsort(w.T[::-1])
    w = w[order]
    keep = np.zeros(len(w), dtype=bool)
    if k == 1:
        keep = w[:, 0] == w[0, 0]
    elif k == 2:
        # sorted by f0 then f1: a point is on the front when its f1 is below every f1 of points with
        # strictly smaller f0, or it equals the current group's best (ties are kept).
        best_prev = np.inf      # min f1 among points with f0 strictly less than the current group
        i = 0
        while i < len(w):
            j = i
            while j < len(w) and w[j, 0] == w[i, 0]:
                j += 1
            group_best = w[i, 1]  # sorted, so the group's first is its minimum f1
            if group_best < best_prev:
                keep[i:j] = w[i:j, 1] == group_best
            best_prev = min(best_prev, group_best)
            i = j
    else:
        front = np.empty((0, k))
        for idx in range(len(w)):
            p = w[idx]
            if front.shape[0]:
                le = (front <= p).all(axis=1)
                lt = (front < p).any(axis=1)
                if (le & lt).any():
                    continue
            keep[idx] = True
            front = np.vstack([front, p])
    mask[ok[order[keep]]] = True
    return mask


def non_dominated_brute(values, maximize: Sequence[bool] | None = None) -> np.ndarray:
    """O(n^2) reference implementation (for tests)."""
    v = as_minimisation(values, maximize)
    n = v.shape[0]
    mask = np.zeros(n, dtype=bool)
    for i in range(n):
        if np.isnan(v[i]).any():
            continue
        dominated = False
        for j in range(n):
            if j != i and not np.isnan(v[j]).any() and (v[j] <= v[i]).all() and (v[j] < v[i]).any():
                dominated = True
                break
        mask[i] = not dominated
    return mask


def pareto_frame(df, objectives: Sequence[tuple[str, str]]):
    """The non-dominated rows of a DataFrame for [(column, 'min'|'max'), ...], sorted by the first."""
    cols = [c for c, _ in objectives]
    values = df[cols].to_numpy(dtype=np.float64) if len(df) else np.empty((0, len(cols)))
    mask = non_dominated(values, [d == "max" for _, d in objectives])
    return df[mask].sort_values(cols[0], ascending=objectives[0][1] == "min", kind="stable")


__all__ = ["non_dominated", "non_dominated_brute", "pareto_frame", "as_minimisation"]
