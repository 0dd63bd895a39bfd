"""Kernels that call each other, run as plain Python for short runs and compiled together later.

numba can only call a compiled function from a compiled function, so kernels that call each other
(the mapping engine's reuse model and search) are compiled as one group: at compile time each
member is re-created over a copy of its module's globals in which every member name is bound to
its `numba.njit(cache=True)` dispatcher, so the compiled entry points call compiled callees (and
load from numba's on-disk cache like any `cache=True` kernel). Until then the module's own
functions are the plain Python members, calling each other at plain-Python speed, and no numba
import is paid: a short CLI run finishes before numba would have loaded.

When a group compiles: after `simulator.kernels.jit_now()`; for a call whose estimated work is
over `max_call_work` units (each entry says what one call costs, e.g. an upper bound of the
candidate mappings a search visits), so one big call never runs interpreted; and once the group
has spent `seconds` of CPU time interpreted (about what importing numba and loading its cache
costs, so a long run pays at most about twice the faster choice; CPU time, so a loaded machine
does not shorten the interpreted phase). Interpreted and compiled forms give identical floats
(numba keeps IEEE semantics and the operation order; no fastmath), so when the switch happens
never changes a result (tests/test_mapping_lazy.py checks it exactly).
"""

from __future__ import annotations

import functools
import time
import types

from simulator import kernels


class KernelGroup:
    """The kernels of one module; `member` registers a callee, `entry` a function called from outside."""

    def __init__(self, module_globals: dict, max_call_work: float, seconds: float):
        self._globals = module_globals
        self._members: list[str] = []
        self._jitted: dict | None = None
        self.max_call_work, self.seconds = max_call_work, seconds
        self.spent = 0.0                    # CPU seconds spent running interpreted so far

    def member(self, fn):
        """Register `fn` (called by other members); the module keeps the plain function."""
        self._members.append(fn.__name__)
        return fn

    def entry(self, work=None, interpreted_args=None):
        """Decorator: register `fn` and return a callable that runs it interpreted or compiled.
        `work(*args)` estimates one call's cost in units of `max_call_work` (default 1);
        `interpreted_args(args)` may hand the plain function faster equivalents (e.g. a read-only float64 array as a list of
        the same Python floats: the same IEEE doubles, indexed without numpy's scalar overhead)."""
        def wrap(fn):
            self.member(fn)
            return _Entry(self, fn, work, interpreted_args)
        return wrap

    def compiled(self, name: str):
        """The compiled dispatcher of member `name` (compiling the group's bindings if needed)."""
        if self._jitted is None:
            from numba import njit
            g = dict(self._globals)
            jitted = {}
            for name_ in self._members:
                fn = self._globals[name_]
                fn = getattr(fn, "py_func", fn)
                copy = types.FunctionType(fn.__code__, g, fn.__name__, fn.__defaults__, fn.__closure__)
                copy.__qualname__, copy.__module__, copy.__doc__ = fn.__qualname__, fn.__module__, fn.__doc__
                jitted[name_] = njit(cache=True)(copy)
            g.update(jitted)
            self._jitted = jitted
        return self._jitted[name]

    def should_compile(self, work: float) -> bool:
        return self._jitted is not None or kernels._jit_now or work > self.max_call_work or \
            self.spent > self.seconds


class _Entry:
    """A group entry point: the plain function while the group runs interpreted, else its dispatcher."""

    def __init__(self, group: KernelGroup, fn, work, interpreted_args):
        self._group, self._fn, self._work, self._args = group, fn, work, interpreted_args
        functools.update_wrapper(self, fn)

    def __call__(self, *args):
        group = self._group
        if group._jitted is not None:
            return group._jitted[self._fn.__name__](*args)
        work = 1.0 if self._work is None else self._work(*args)
        if group.should_compile(work):
            return group.compiled(self._fn.__name__)(*args)
        t0 = time.process_time()
        try:
            return self._fn(*(args if self._args is None else self._args(args)))
        finally:
            group.spent += time.process_time() - t0

    @property
    def py_func(self):
        """The plain Python function (as numba's dispatchers expose it)."""
        return self._fn
