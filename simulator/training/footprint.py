"""Memory per device during training: weights, master copies, gradients, optimizer state,
stashed activations (by recomputation mode) and attention workspace; ZeRO / FSDP sharding.

Activations (Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer
Models", arXiv 2205.05198, Sec. 4): a GPT block stores, in 16-bit values with 1-byte dropout
masks, s*b*h*(34 + 5*a*s/h) bytes without recomputation; 34*s*b*h with selective recomputation
(attention core recomputed); 2*s*b*h with full recomputation (only the block input). The terms
are counted here one by one so the same count applies to GQA (K, V of kv_dim), other MLP widths,
gated MLPs (SwiGLU: gate, up and their product) and models without dropout; for a GPT block
(ffn = 4h, kv_dim = h, dropout, plain MLP) it is exactly the paper's formula. Input and output
layers (Sec. 4.3): the embedding dropout mask s*b*h and 4*s*b*h*(1 + v/h) (final norm input,
head input, fp32 logits). Tensor and sequence parallelism (the paper's t) are not modelled (t = 1).
FlashAttention's fp32 log-sum-exp (4*a*s*b bytes per layer, under 1% of 34*s*b*h for
usual head sizes) is left out, as the paper leaves it out.

Model state (Rajbhandari et al. 2020, "ZeRO", arXiv 1910.02054, Sec. 3.1 and 5): with Psi
parameters, 16-bit weights (2 Psi) and gradients (2 Psi) and an optimizer holding K*Psi bytes
(K = 12 for mixed-precision Adam: fp32 master, momentum, variance), a data-parallel rank holds
(2 + 2 + K) Psi; ZeRO-1 shards the optimizer state over N_d ranks (2 Psi + 2 Psi + K Psi / N_d),
ZeRO-2 also the gradients (2 Psi + (2 + K) Psi / N_d), ZeRO-3 (and PyTorch FSDP full
sharding) everything ((2 + 2 + K) Psi / N_d). The sharded sparse variant shards only the kept
weights (with their index metadata), their gradients and their optimizer state.
"""

from __future__ import annotations

from dataclasses import dataclass

from simulator.errors import SparsimInputError

ZERO_STAGES = (0, 1, 2, 3)


@dataclass(frozen=True)
class TransformerShape:
    """What the activation formulas need: sequence s, micro-batch b, hidden h, heads a, layers L."""
    seq: int
    micro_batch: int
    hidden: int
    heads: int
    layers: int
    ffn: int
    kv_dim: int
    vocab: int
    gated: bool = False
    dropout: bool = True


def activation_terms_per_layer(t: TransformerShape, recompute: str) -> dict[str, float]:
    """Bytes one block stashes for its backward, by what stores them (16-bit values, 1-byte masks)."""
    s, b, h, a, f, kv = t.seq, t.micro_batch, t.hidden, t.heads, t.ffn, t.kv_dim
    sbh, d = s * b * h, 1 if t.dropout else 0
    if recompute == "full":
        return {"block input (full recompute)": 2.0 * sbh}
    terms = {
        "qkv input": 2.0 * sbh, "Q and K": 2.0 * sbh + 2.0 * s * b * kv, "V": 2.0 * s * b * kv,
        "attention output projection input": 2.0 * sbh, "attention dropout mask": 1.0 * sbh * d,
        "layer norm inputs": 4.0 * sbh,
    }
    if t.gated:
        terms["mlp input"] = 2.0 * sbh
        terms["mlp gate, up and product"] = 6.0 * s * b * f
    else:
        terms["mlp input"] = 2.0 * sbh
        terms["mlp activation input and output"] = 4.0 * s * b * f
    terms["mlp dropout mask"] = 1.0 * sbh * d
    if recompute == "none":
        terms["softmax output"] = 2.0 * a * s * s * b
        if d:
            terms["softmax dropout mask and output"] = 3.0 * a * s * s * b
    return terms


def activation_bytes(t: TransformerShape, recompute: str) -> dict[str, float]:
    """Stashed activations of one micro-batch: the blocks, and the input/output layers."""
    per_layer = sum(activation_terms_per_layer(t, recompute).values())
    sbh = t.seq * t.micro_batch * t.hidden
    io = (sbh if t.dropout else 0.0) + 4.0 * sbh * (1.0 + t.vocab / t.hidden)
    return {"blocks": t.layers * per_layer, "embedding and output layer": io}


def model_state_bytes(params: float, *, stage: int = 0, dp: int = 1, param_bytes: float = 2.0,
                      grad_bytes: float = 2.0, master_bytes: float = 4.0, moment_bytes: float = 8.0,
                      density: float = 1.0, index_bytes: float = 0.0, sparse_sharded: bool = False) -> dict[str, float]:
    """Per-rank weights, gradients, master weights and optimizer moments under ZeRO stage 0-3.

    `sparse_sharded`: only the kept `density * params` weights (plus `index_bytes` of metadata
    per kept weight) and their gradients and optimizer state are stored and sharded."""
    if stage not in ZERO_STAGES:
        raise SparsimInputError(f"unknown ZeRO stage {stage}", field="--zero", hint="0, 1, 2 or 3 (3 = FSDP)")
    if isinstance(dp, bool) or not isinstance(dp, int) or dp < 1:
        raise SparsimInputError(f"data-parallel ranks must be a positive integer (got {dp!r})", field="--dp")
    n = params * density if sparse_sharded else params
    weights = n * (param_bytes + (index_bytes if sparse_sharded else 0.0))
    grads, master, moments = n * grad_bytes, n * master_bytes, n * moment_bytes
    return {"weights": weights / (dp if stage >= 3 else 1), "gradients": grads / (dp if stage >= 2 else 1),
            "master weights": master / (dp if stage >= 1 else 1), "optimizer moments": moments / (dp if stage >= 1 else 1)}


@dataclass
class Footprint:
    """Per-device bytes by component, against the device capacity (None = unknown)."""
    components: dict[str, float]
    capacity_bytes: float | None

    @property
    def total(self) -> float:
        return sum(self.components.values())

    @property
    def fits(self) -> bool | None:
        return None if self.capacity_bytes is None else self.total <= self.capacity_bytes

    def over_capacity_line(self) -> str | None:
        """One line naming what does not fit, or None when it fits (or capacity is unknown)."""
        if self.fits is not False:
            return None
        parts = sorted(self.components.items(), key=lambda kv: -kv[1])
        biggest = ", ".join(f"{k} {v / 2**30:.3g} GiB" for k, v in parts[:3] if v > 0)
        return (f"over capacity: needs {self.total / 2**30:.4g} GiB per device, has {self.capacity_bytes / 2**30:.4g} "
                f"GiB ({biggest}); try --recompute full, a higher --zero stage, more --dp ranks or fewer --batch")

    def to_dict(self) -> dict:
        # an unknown capacity is omitted (every quantity in an output is a number)
        cap = {} if self.capacity_bytes is None else {"capacity_bytes": self.capacity_bytes}
        return {"components_bytes": dict(self.components), "total_bytes": self.total, **cap, "fits": self.fits,
                "over_capacity": self.over_capacity_line()}


def device_capacity_bytes(arch) -> float | None:
    """Device memory from the spec: a GPU's `hbm_capacity_gib`, else an off-chip level's capacity."""
    gib = getattr(arch.compute, "hbm_capacity_gib", None)
    if gib:
        return float(gib) * 2**30
    for level in reversed(list(arch.memory.values())):
        cap = getattr(level, "capacity_kib", None)
        if cap and getattr(level, "kind", "") in ("dram", "hbm", "ddr"):
            return float(cap) * 1024.0
    return None


__all__ = ["TransformerShape", "activation_terms_per_layer", "activation_bytes", "model_state_bytes", "Footprint",
           "device_capacity_bytes", "ZERO_STAGES"]
