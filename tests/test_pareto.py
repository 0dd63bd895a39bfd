"""The non-dominated filter agrees with a brute-force definition on random data (ties, NaNs, maximise)."""

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from analysis.pareto import non_dominated, non_dominated_brute, pareto_frame


@st.composite
def problems(draw):
    n = draw(st.integers(0, 40))
    k = draw(st.integers(1, 4))
    # small integer values force ties and duplicates; occasional NaNs
    values = draw(arrays(np.float64, (n, k), elements=st.one_of(
        st.integers(0, 5).map(float), st.just(np.nan) if draw(st.booleans()) else st.integers(0, 5).map(float))))
    maximize = draw(st.lists(st.booleans(), min_size=k, max_size=k))
    return values, maximize


@settings(max_examples=300, deadline=None)
@given(problems())
def test_matches_brute_force(problem):
    values, maximize = problem
    fast = non_dominated(values, maximize)
    slow = non_dominated_brute(values, maximize)
    np.testing.assert_array_equal(fast, slow)


@settings(max_examples=50, deadline=None)
@given(arrays(np.float64, (30, 2), elements=st.floats(-1e6, 1e6)))
def test_front_properties_continuous(values):
    mask = non_dominated(values)
    np.testing.assert_array_equal(mask, non_dominated_brute(values))
    assert mask.any()
    # nothing on the front dominates another front point
    front = values[mask]
    for i in range(len(front)):
        dominated = ((front <= front[i]).all(axis=1) & (front < front[i]).any(axis=1))
        assert not dominated.any()


def test_small_cases():
    v = np.array([[1, 5], [2, 2], [5, 1], [3, 3], [2, 2], [np.nan, 0]])
    assert non_dominated(v).tolist() == [True, True, True, False, True, False]
    # maximising the second objective flips which points win
    assert non_dominated(v, [False, True]).tolist() == [True, False, False, False, False, False]
    assert non_dominated(np.empty((0, 3))).tolist() == []


def test_pareto_frame_sorted_and_directional():
    df = pd.DataFrame({"lat": [3.0, 1.0, 2.0, 2.5], "thr": [9.0, 1.0, 5.0, 4.0]})
    front = pareto_frame(df, [("lat", "min"), ("thr", "max")])
    assert front["lat"].tolist() == [1.0, 2.0, 3.0]
