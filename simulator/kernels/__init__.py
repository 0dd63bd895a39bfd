"""Numba-jitted hot loops: pure functions on numpy arrays and scalars, compiled once (cache=True).

Kernels are declared with `lazy_njit` so that a short CLI run never pays for numba: importing
numba and loading a kernel from its on-disk cache costs ~0.5 s, more than a one-GEMM simulation.
For kernels declared `interpret_small=True` (whose loops are bounded by the sizes of their
array arguments), the first `INTERPRETED_CALLS` calls with small arrays (at most
`INTERPRETED_MAX_ELEMENTS` elements in all) run the same function as plain Python, which gives the same floats (numba
keeps IEEE semantics and the loop order; no fastmath); after that, or for a large input, or
after `jit_now()` (the `warm_up()` of each kernel module calls it), the kernel is compiled
with `numba.njit(cache=True)` or loaded from the cache. These kernels do not call each other;
kernels that do (the mapping engine's) form a `simulator.kernels.group.KernelGroup`, compiled together.
"""

from __future__ import annotations

import functools

import numpy as np

INTERPRETED_CALLS = 16
INTERPRETED_MAX_ELEMENTS = 2048
_jit_now = False


def jit_now() -> None:
    """Compile every kernel at its next call (long runs and sweep workers call this up front)."""
    global _jit_now
    _jit_now = True


def _small(args) -> bool:
    return sum(a.size for a in args if isinstance(a, np.ndarray)) <= INTERPRETED_MAX_ELEMENTS


class _LazyKernel:
    """`fn`, run as `numba.njit(cache=True)(fn)` once compiled (see the module docstring for when)."""

    def __init__(self, fn, interpret_small: bool = False):
        self._fn = fn
        self._jitted = None
        self._interpreted = 0 if interpret_small else INTERPRETED_CALLS
        functools.update_wrapper(self, fn)

    def __call__(self, *args):
        if self._jitted is None:
            if not _jit_now and self._interpreted < INTERPRETED_CALLS and _small(args):
                self._interpreted += 1
                return self._fn(*args)
            from numba import njit
            self._jitted = njit(cache=True)(self._fn)
        return self._jitted(*args)

    @property
    def py_func(self):
        """The plain Python function (as numba's dispatchers expose it)."""
        return self._fn


def lazy_njit(fn=None, *, interpret_small: bool = False, cache: bool = True):
    """Decorator: `@lazy_njit` or `@lazy_njit(cache=True, interpret_small=True)`; compiled kernels
    always cache on disk (`cache` is accepted for numba's spelling)."""
    if fn is None:
        return lambda f: _LazyKernel(f, interpret_small)
    return _LazyKernel(fn, interpret_small)
