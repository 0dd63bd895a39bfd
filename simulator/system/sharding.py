"""Cutting one op over several cores: the cuts an op allows and the shard each core runs."""

from __future__ import annotations

from simulator.split import largest_remainder
from simulator.trace import Op


def _split(total: int, parts: int, weights: list[float] | None = None) -> list[int]:
    """`total` units over `parts`, evenly or in proportion to `weights` (largest remainders)."""
    return largest_remainder(total, weights, parts=parts)


def _conv_out_h(d) -> int:
    return d.out_h if d.out_h is not None else (d.H + 2 * d.pad - d.R) // d.stride + 1


def split_dims(op: Op, parts: int) -> list[str]:
    """The ways `op` can be cut over `parts` cores, the default first.

    gemm: output columns N (each core reads all the activations, 1/parts of the weights),
    output rows M (all the weights, 1/parts of the activations), independent GEMMs (batch).
    conv2d: filters K (or groups), output rows (each shard reads its input rows plus the
    filter's halo), batch. attention: KV-head groups, else batch, else query rows. moe_gemm
    (when not expert-parallel): N. Vector ops: elements."""
    d = op.dims
    if op.kind == "gemm":
        first = "N" if d.N >= parts or d.N >= d.M else "M"
        return [first, "M" if first == "N" else "N"] + (["batch"] if d.batch > 1 else [])
    if op.kind == "conv2d":
        return ["K", "rows"] + (["batch"] if d.N > 1 else [])
    if op.kind in ("attention_qk", "attention_pv"):
        return ["heads"]
    return ["default"]


def shard_slots(op: Op, parts: int, weights: list[float] | None = None, dim: str | None = None) -> list[Op | None]:
    """One piece of `op` per core (None: that core gets nothing), split evenly or by `weights`
    (a core's relative speed on this op) along `dim` (one of `split_dims`; default the first)."""
    if parts <= 1:
        return [op]
    d = op.dims
    kind = op.kind
    dim = dim or split_dims(op, parts)[0]

    def split(total: int) -> list[int]:
        return _split(total, parts, weights)

    sizes: list[dict] = []
    if kind == "gemm":
        sizes = [{dim: s} for s in split(getattr(d, dim))]
    elif kind == "moe_gemm":
        sizes = [{"N": s} for s in split(d.N)]
    elif kind == "conv2d":
        if dim == "rows":
            # e output rows need (e - 1) x stride + R padded input rows; the shard keeps the
            # op's padding, so interior shards read 2 x pad rows fewer than their real halo
            for e in split(_conv_out_h(d)):
                h = (e - 1) * d.stride + d.R - 2 * d.pad if e else 0
                if e and h < 1:
                    return [op] + [None] * (parts - 1)
                sizes.append({"H": h, **({"out_h": e} if d.out_h is not None else {})})
        elif dim == "batch":
            sizes = [{"N": s} for s in split(d.N)]
        elif d.groups > 1:
            per_c, per_k = d.C // d.groups, d.K // d.groups
            sizes = [{"groups": g, "C": per_c * g, "K": per_k * g} for g in split(d.groups)]
        else:
            sizes = [{"K": s} for s in split(d.K)]
    elif kind in ("attention_qk", "attention_pv"):
        kvh = d.n_kv_heads
        group = d.heads // kvh
        if kvh >= parts or (kvh > 1 and d.batch < parts):
            sizes = [{"kv_heads": s, "heads": s * group} for s in split(kvh)]
        elif d.batch > 1:
            sizes = [{"batch": s} for s in split(d.batch)]
        else:
            sizes = [{"q_len": s} for s in split(d.q_len)]
    elif op.is_vector:
        sizes = [{"elements": s} for s in split(d.elements)]
    if sum(1 for s in sizes if all(v for v in s.values())) <= 1:
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
