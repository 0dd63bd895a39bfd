"""Design points: keys that hash everything a result depends on, and the grid and random strategies
(NSGA-II asks its sampler, in the driver)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from analysis.sweep_spec import ResolvedSweep, code_version, digest, get_path
from simulator.errors import SparsimInputError


@dataclass
class Point:
    key: str
    params: dict          # every swept and derived parameter, by dotted path
    trial: int | None = None


def _jsonable(v):
    if isinstance(v, np.generic):
        return v.item()
    return v


class PointFactory:
    """Turns searched parameter values into a full point (derived values, key)."""

    def __init__(self, sweep: ResolvedSweep):
        self.sweep = sweep
        self.code = code_version()
        self.wl = [(w.digest, w.weight, w.name) for w in sweep.workloads]
        self.workload_hash = digest(self.wl)

    def make(self, values: dict, trial: int | None = None) -> Point:
        params = {k: _jsonable(v) for k, v in values.items()}
        for p in self.sweep.derived:
            env = {}
            for name in p.expr.names:
                env[name] = params[name] if name in params else get_path(self.sweep.base_raw, name)
            try:
                v = p.expr.evaluate(env)
            except ValueError as exc:
                raise SparsimInputError(f"derived value: {exc}", path=self.sweep.spec_path,
                                        field=f"parameters.{p.path}", hint="fix the expression") from None
            if isinstance(v, float) and v.is_integer() and all(isinstance(env[n], int) for n in env):
                v = int(v)
            params[p.path] = _jsonable(v)
        key = digest({"arch": self.sweep.base_digest, "set": params, "wl": self.wl, "code": self.code})
        return Point(key=key, params=params, trial=trial)

    def arch_hash(self, params: dict) -> str:
        return digest({"arch": self.sweep.base_digest, "set": params})


def grid_points(sweep: ResolvedSweep, factory: PointFactory, max_points: int | None) -> list[Point]:
    axes = [(p.path, p.grid_values()) for p in sweep.searched]
    sizes = [len(v) for _, v in axes]
    total = math.prod(sizes)  # a Python int: no overflow however many axes
    if max_points is not None and max_points < total:
        # evenly spread, exact in integers (the grid may have more points than an int64 holds)
        from fractions import Fraction
        idx = sorted({round(Fraction(i * (total - 1), max_points - 1)) if max_points > 1 else 0
                      for i in range(max_points)})
    else:
        idx = range(total)
    points = []
    for i in idx:
        rem, values = int(i), {}
        for (path, vals), n in zip(reversed(axes), reversed(sizes)):  # last axis varies fastest
            rem, j = divmod(rem, n)
            values[path] = vals[j]
        values = {path: values[path] for path, _ in axes}
        points.append(factory.make(values, trial=int(i)))
    return points


def _sample(rng: np.random.Generator, p):
    if p.kind == "values":
        return p.values[int(rng.integers(len(p.values)))]
    r = p.range
    if r.discrete:
        vals = r.grid_values()
        return vals[int(rng.integers(len(vals)))]
    if r.log:
        v = math.exp(rng.uniform(math.log(r.min), math.log(r.max)))
    else:
        v = rng.uniform(r.min, r.max)
    return min(max(r.cast(v), r.cast(r.min)), r.cast(r.max))


def random_points(sweep: ResolvedSweep, factory: PointFactory, n: int) -> list[Point]:
    """`n` distinct points drawn with the sweep's seed (fewer only when the space has fewer).

    A draw that repeats an earlier point is dropped and drawn again, so `random: 64` means 64
    designs, not 64 draws; the sequence depends only on the seed, so reruns replay it exactly."""
    rng = np.random.default_rng(sweep.seed)
    size = _space_size(sweep)
    want = n if size is None else min(n, size)
    points: list[Point] = []
    seen: set[str] = set()
    draws = 0
    while len(points) < want and draws < max(1000, 50 * n):
        draws += 1
        pt = factory.make({p.path: _sample(rng, p) for p in sweep.searched}, trial=len(points))
        if pt.key not in seen:
            seen.add(pt.key)
            points.append(pt)
    return points


def _space_size(sweep: ResolvedSweep) -> int | None:
    """Number of distinct searched combinations, or None when a range is sampled continuously."""
    size = 1
    for p in sweep.searched:
        if p.kind == "values":
            size *= len(p.values)
        elif p.range.discrete:
            size *= len(p.range.grid_values())
        elif p.range.is_int:
            size *= int(p.range.max) - int(p.range.min) + 1
        else:
            return None
    return size


def _suggest(trial, p):
    if p.kind == "values":
        return p.values[trial.suggest_categorical(p.path, list(range(len(p.values))))]
    r = p.range
    if r.discrete and (r.log or r.num is not None):
        vals = r.grid_values()
        return vals[trial.suggest_categorical(p.path, list(range(len(vals))))]
    if r.is_int:
        return trial.suggest_int(p.path, int(r.min), int(r.max), log=r.log, step=int(r.step or 1))
    if r.step is not None:
        return r.cast(trial.suggest_float(p.path, r.min, r.max, step=r.step))
    return r.cast(trial.suggest_float(p.path, r.min, r.max, log=r.log))
