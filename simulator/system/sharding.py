"""Cutting one op over several cores: the cuts an op allows and the shard each core runs."""

from __future__ import annotations

from simulator.split import largest_remainder
from simulator.trace import Op


def _split(total: int, parts: int, weights: list[float] | None = None) -> list[int]:
    """`total` units over `parts`, evenly or in proportion to `weights` (largest remainders)."""
    return largest_remainder(total, weights, parts=parts)


def split_dims(op: Op, parts: int) -> list[str]:
    """The ways `op` can be cut over `parts` cores, the default first (its dims class's rule)."""
    return op.dims.split_dims(parts)


def shard_slots(op: Op, parts: int, weights: list[float] | None = None, dim: str | None = None) -> list[Op | None]:
    """One piece of `op` per core (None: that core gets nothing), split evenly or by `weights`
    (a core's relative speed on this op) along `dim` (one of `split_dims`; default the first).
    The op's dims class says how each cut sizes the pieces (`shard_sizes` in `simulator.trace`)."""
    if parts <= 1:
        return [op]
    d = op.dims
    dim = dim or split_dims(op, parts)[0]
    sizes = d.shard_sizes(dim, parts, lambda total: _split(total, parts, weights))
    if sizes is None or sum(1 for s in sizes if all(v for v in s.values())) <= 1:
        return [op] + [None] * (parts - 1)
    return [op.model_copy(update={"name": f"{op.name}[{i}]", "dims": d.model_copy(update=s)})
            if all(v for v in s.values()) else None for i, s in enumerate(sizes)]


def shard_op(op: Op, parts: int, weights: list[float] | None = None) -> list[Op]:
    """Split one op into up to `parts` independent pieces (fewer when it is too small)."""
    return [s for s in shard_slots(op, parts, weights) if s is not None]


def expert_ops(op: Op) -> list[tuple[int, Op]]:
    """One single-expert op per expert that received tokens: (expert index, op)."""
    d = op.dims
    return [(e, op.model_copy(update={"name": f"{op.name}.e{e}", "dims": d.model_copy(update={"tokens_per_expert": [t]})}))
            for e, t in enumerate(d.tokens_per_expert) if t > 0]
