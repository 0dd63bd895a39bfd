"""Sparsity statistics measured on real tensors, in the trace's `MeasuredStats` form.

Engines that skip zeros need more than a density: an N:M tensor core must know how many
M-groups hold more than N nonzeros (they fall back or split), a row-parallel engine's load
imbalance follows the spread of nonzeros per row, and block-skipping hardware only saves
the blocks that are entirely zero. This module measures those from a tensor:

- density: nonzeros / elements;
- per-M-group histograms (M = 4 and 8 by default) along the reduction axis, the axis the
  N:M constraint applies to (NVIDIA's 2:4 groups run along the input features of a
  Linear weight, Mishra et al. 2021, arXiv 2104.08378). A tail shorter than M is left out;
- nonzeros per row, where a row is one output column's reduction vector (one Linear output
  feature, or one activation row), kept as an evenly strided sample when long;
- block occupancy: the fraction of R x C blocks that hold at least one nonzero (what a
  block-skipping engine must still compute), for a few square block sizes.

All functions take a 2-D array `[rows, reduction]` (numpy or anything `np.asarray` reads);
higher-rank tensors are flattened to that form by the caller. They are pure functions.
"""

from __future__ import annotations

import numpy as np

from simulator.trace import MeasuredStats, Sparsity

GROUP_SIZES = (4, 8)
BLOCK_SIZES = (4, 16, 32)
ROW_SAMPLE = 64
NM_CANDIDATES = ((1, 4), (2, 4), (3, 4), (1, 8), (2, 8), (4, 8), (6, 8))


def as_rows_by_reduction(x) -> np.ndarray:
    """A tensor as a 2-D boolean nonzero mask `[rows, reduction]`; the last axis is the reduction."""
    arr = np.asarray(x)
    if arr.ndim == 0:
        arr = arr.reshape(1, 1)
    elif arr.ndim == 1:
        arr = arr.reshape(1, -1)
    elif arr.ndim > 2:
        arr = arr.reshape(-1, arr.shape[-1])
    return arr != 0


def group_histogram(mask: np.ndarray, m: int) -> list[int] | None:
    """Counts of M-groups (consecutive along the reduction axis) holding 0..m nonzeros; None if K < m."""
    rows, k = mask.shape
    full = (k // m) * m
    if full == 0 or rows == 0:
        return None
    per_group = mask[:, :full].reshape(rows, full // m, m).sum(axis=2)
    return np.bincount(per_group.ravel(), minlength=m + 1).astype(int).tolist()


def block_occupancy(mask: np.ndarray, rows_per_block: int, cols_per_block: int) -> float | None:
    """Fraction of R x C blocks with at least one nonzero (trailing partial blocks left out);
    at least one block, as for density, since a trace cannot hold an occupancy of 0."""
    r, c = mask.shape
    rr, cc = (r // rows_per_block) * rows_per_block, (c // cols_per_block) * cols_per_block
    if rr == 0 or cc == 0:
        return None
    blocks = mask[:rr, :cc].reshape(rr // rows_per_block, rows_per_block, cc // cols_per_block, cols_per_block)
    occupied = blocks.any(axis=(1, 3))
    return max(int(occupied.sum()), 1) / occupied.size


def row_nnz_sample(mask: np.ndarray, sample: int = ROW_SAMPLE) -> tuple[list[int], bool]:
    """Nonzeros per row; an evenly strided sample of `sample` rows when there are more."""
    counts = mask.sum(axis=1)
    if sample and len(counts) > sample:
        idx = np.linspace(0, len(counts) - 1, sample).round().astype(int)
        return counts[idx].astype(int).tolist(), True
    return counts.astype(int).tolist(), False


def measure(x, *, group_sizes=GROUP_SIZES, block_sizes=BLOCK_SIZES, row_sample: int = ROW_SAMPLE,
            block_transpose: bool = False) -> MeasuredStats:
    """Measure a tensor laid out `[rows, reduction]` (e.g. a torch Linear weight `[out, in]`).

    Block keys are `RxC` of the operand as the trace holds it; `block_transpose=True` says the
    array given is the transpose of that (true for Linear weights: the trace's B is `[K, N]`).
    An all-zero tensor is reported at density 1/elements (the trace cannot hold density 0).
    """
    mask = as_rows_by_reduction(x)
    total = mask.size
    nnz = int(mask.sum())
    density = max(nnz, 1) / max(total, 1)
    hists = {}
    for m in group_sizes:
        h = group_histogram(mask, m)
        if h is None or not nnz:
            continue
        # With a reduction length not a multiple of m the tail is left out; keep the histogram only
        # while it still describes the tensor (the trace checks it against the density).
        implied = sum(j * c for j, c in enumerate(h)) / (m * sum(h))
        if abs(implied - density) <= 0.01:
            hists[int(m)] = h
    blocks = {}
    oriented = mask.T if block_transpose else mask
    for b in block_sizes:
        occ = block_occupancy(oriented, b, b)
        if occ is not None:
            blocks[f"{b}x{b}"] = round(occ, 6)
    rows, sampled = row_nnz_sample(mask, row_sample)
    return MeasuredStats(density=round(density, 6), group_histograms=hists, row_nnz=rows,
                         row_nnz_is_sample=sampled, block_density=blocks)


def detect_nm(stats: MeasuredStats) -> tuple[int, int] | None:
    """The tightest N:M pattern the measured groups obey (no group above N, nearly all at N), if any."""
    for n, m in NM_CANDIDATES:
        hist = stats.group_histograms.get(m)
        if not hist or n >= m:
            continue
        groups = sum(hist)
        if sum(hist[n + 1:]) == 0 and hist[n] >= 0.9 * groups:
            return n, m
    return None


def sparsity_from_stats(stats: MeasuredStats, declared: Sparsity | None = None,
                        dense_above: float = 0.99) -> Sparsity:
    """A Sparsity carrying `stats`: the declared structure when one is known (a sparsifier ran),
    else the structure the measurement shows (N:M, whole zero blocks, or unstructured)."""
    if declared is not None and declared.kind != "dense":
        if declared.kind == "nm":
            return Sparsity(kind="nm", n=declared.n, m=declared.m, measured=stats)
        return Sparsity(kind=declared.kind, block=declared.block, density=stats.density, measured=stats)
    if stats.density >= 1.0:
        return Sparsity()                       # no zeros at all: nothing worth storing
    if stats.density >= dense_above:
        return Sparsity(kind="dense", measured=stats)
    nm = detect_nm(stats)
    if nm is not None:
        return Sparsity(kind="nm", n=nm[0], m=nm[1], measured=stats)
    # Zeros come in whole blocks when block occupancy equals the element density.
    for key in sorted(stats.block_density, key=lambda k: -int(k.split("x")[0])):
        occ = stats.block_density[key]
        if occ < 1.0 and abs(occ - stats.density) <= 0.005:
            r, c = (int(v) for v in key.split("x"))
            return Sparsity(kind="block", block=(r, c), density=stats.density, measured=stats)
    return Sparsity(kind="unstructured", density=stats.density, measured=stats)


def binomial_histogram(m: int, density: float) -> list[float]:
    """Expected fraction of M-groups with j nonzeros when zeros are i.i.d. (the unstructured baseline)."""
    from math import comb
    return [comb(m, j) * density ** j * (1 - density) ** (m - j) for j in range(m + 1)]


__all__ = ["measure", "group_histogram", "block_occupancy", "row_nnz_sample", "detect_nm",
           "sparsity_from_stats", "binomial_histogram", "as_rows_by_reduction", "GROUP_SIZES", "BLOCK_SIZES"]
