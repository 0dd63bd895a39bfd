"""Load-imbalance kernels: per-fold maxima, counts from masks, expected maxima, binomial pmf, speed."""

import math
import time

import numpy as np
import pytest

from simulator.kernels.imbalance import (binomial_pmf, expected_max_of_draws, fold_max, row_nnz_from_mask,
                                         warm_up)
from simulator.sparsity import tile_max_nnz
from simulator.trace import Sparsity


def test_fold_max_takes_the_busiest_unit_of_each_consecutive_tile():
    work = np.array([3.0, 9.0, 1.0, 4.0, 4.0, 7.0, 2.0])
    # tiles of 3: [3, 9, 1] [4, 4, 7] [2]
    assert fold_max(work, 3).tolist() == [9.0, 7.0, 2.0]


def test_row_counts_from_a_mask_match_a_plain_sum_along_either_axis():
    rng = np.random.default_rng(0)
    mask = (rng.random((37, 53)) < 0.3).astype(np.uint8)
    assert row_nnz_from_mask(mask, 1).tolist() == mask.sum(axis=1).tolist()
    assert row_nnz_from_mask(mask, 0).tolist() == mask.sum(axis=0).tolist()


def test_expected_max_of_bernoulli_draws_is_one_minus_all_zero_probability():
    p, t = 0.3, 5
    got = expected_max_of_draws(np.array([0.0, 1.0]), np.array([1 - p, p]), t)
    assert got == pytest.approx(1 - (1 - p) ** t)


def test_expected_max_of_one_draw_is_the_mean():
    values = np.array([2.0, 5.0, 11.0])
    probs = np.array([0.5, 0.3, 0.2])
    assert expected_max_of_draws(values, probs, 1) == pytest.approx(float(values @ probs))


def test_binomial_pmf_matches_the_closed_form_and_sums_to_one():
    n, p = 12, 0.35
    pmf = binomial_pmf(n, p)
    for x in range(n + 1):
        assert pmf[x] == pytest.approx(math.comb(n, x) * p ** x * (1 - p) ** (n - x), rel=1e-9)
    big = binomial_pmf(16384, 0.3)
    assert big.sum() == pytest.approx(1.0, abs=1e-9)
    assert float(np.arange(16385) @ big) == pytest.approx(16384 * 0.3, rel=1e-9)


def test_per_fold_max_of_exact_measured_counts_is_the_tile_maximum():
    counts = [10, 30, 20, 5, 40, 0]
    sp = Sparsity(kind="unstructured", density=0.5, measured={"density": 0.5, "row_nnz": counts})
    values, model = tile_max_nnz(sp, K=64, units=6, tile=4)
    assert values.tolist() == [30.0, 40.0]
    assert "measured" in model and "exact" in model


def test_binomial_imbalance_exceeds_the_mean_and_grows_with_the_tile():
    sp = Sparsity(kind="unstructured", density=0.3)
    one, _ = tile_max_nnz(sp, K=1024, units=1, tile=1)
    many, model = tile_max_nnz(sp, K=1024, units=64, tile=64)
    assert one[0] == pytest.approx(1024 * 0.3)        # max of one draw = mean
    assert many[0] > one[0] + 2 * math.sqrt(1024 * 0.3 * 0.7)  # max of 64 draws: > mean + 2 sigma
    assert "binomial" in model


def test_a_4096_square_weight_statistics_take_milliseconds():
    warm_up()
    rng = np.random.default_rng(1)
    mask = (rng.random((4096, 4096)) < 0.3).astype(np.uint8)
    sp = Sparsity(kind="unstructured", density=0.3)
    best_mask = best_model = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        counts = row_nnz_from_mask(mask, 0)               # nonzeros per column over K = 4096
        per_fold = fold_max(counts.astype(np.float64), 128)
        best_mask = min(best_mask, time.perf_counter() - t0)
        t0 = time.perf_counter()
        tile_max_nnz(sp, K=4096, units=4096, tile=128)    # binomial model, no mask
        best_model = min(best_model, time.perf_counter() - t0)
    assert per_fold.shape == (32,)
    # Generous bounds for a loaded 2-core CI machine; measured ~10 ms and ~1 ms when idle.
    assert best_mask < 0.25
    assert best_model < 0.05
