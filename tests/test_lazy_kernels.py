"""Kernels run interpreted for short runs and compiled later; both forms must give the same numbers."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from simulator import kernels
from simulator.kernels import _LazyKernel
from simulator.kernels.schedule import blocked_fold_schedule, fold_schedule

arrays = st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=40).map(np.array)


def _compiled(kernel):
    from numba import njit
    return njit(cache=True)(kernel.py_func)


@settings(max_examples=40, deadline=None)
@given(compute=arrays, spb=st.floats(0, 4), double=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_fold_schedule_interpreted_equals_compiled(compute, spb, double, seed):
    rng = np.random.default_rng(seed)
    load, store = rng.uniform(0, 1e6, len(compute)), rng.uniform(0, 1e6, len(compute))
    assert fold_schedule.py_func(compute, load, store, spb, double) == _compiled(fold_schedule)(
        compute, load, store, spb, double)


@settings(max_examples=40, deadline=None)
@given(n_out=st.integers(1, 6), n_in=st.integers(1, 6), block=st.integers(1, 6), resident=st.booleans(),
       double=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_blocked_schedule_interpreted_equals_compiled(n_out, n_in, block, resident, double, seed):
    rng = np.random.default_rng(seed)
    n = n_out * n_in
    args = (rng.uniform(1, 100, n), rng.uniform(0, 1e3, n), rng.uniform(0, 1e3, n_out), rng.uniform(0, 1e3, n_in),
            rng.uniform(0, 1e3, n), n_in, block, resident, 0.5, double)
    assert blocked_fold_schedule.py_func(*args) == _compiled(blocked_fold_schedule)(*args)


def test_small_calls_interpret_then_compile(monkeypatch):
    monkeypatch.setattr(kernels, "_jit_now", False)  # a warm_up() earlier in the session may have set it
    calls = []

    def kernel(x):
        calls.append(1)  # only the interpreted form can append to a Python list
        return x.sum()

    lazy = _LazyKernel(kernel, interpret_small=True)
    for _ in range(16):
        assert lazy(np.ones(3)) == 3.0
    assert len(calls) == 16 and lazy._jitted is None
    with pytest.raises(Exception):
        lazy(np.ones(3))  # the 17th call compiles, and numba cannot type the list append
    assert len(calls) == 16


def test_jit_now_compiles_at_the_next_call(monkeypatch):
    monkeypatch.setattr(kernels, "_jit_now", True)
    lazy = _LazyKernel(lambda x: x.sum(), interpret_small=True)
    assert lazy(np.ones(3)) == 3.0 and lazy._jitted is not None


def test_large_inputs_compile_at_once():
    lazy = _LazyKernel(lambda x: x.sum(), interpret_small=True)
    big = np.ones(5000)
    assert lazy(big) == 5000.0 and lazy._jitted is not None
