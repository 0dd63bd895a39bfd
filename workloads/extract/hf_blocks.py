"""One transformer block's ops (and the embedding/head ops around the blocks) as trace dicts.

`phase_ops` lays out one prefill or decode step of a `ModelShape` in the order the model runs:
norm -> q/k/v -> rotary -> QK^T -> softmax -> PV -> output projection -> residual -> norm ->
MLP (or router + experts) -> residual, per family (names as the HF modules call them), then
the final norm and the LM head. The sparsity recipe is applied per operand role here.
"""

from __future__ import annotations

from dataclasses import dataclass

from simulator.trace import Sparsity
from workloads.extract.hf_shape import DECODER_LLAMA, ModelShape


@dataclass
class Recipe:
    """Sparsity per operand role and the skip probability of each block op (see hf_config)."""
    weights: Sparsity | None = None
    activations: Sparsity | None = None
    kv: Sparsity | None = None
    attention: Sparsity | None = None
    skip: float = 0.0


class _Block:
    """Collects one block's ops as dicts with names relative to the block."""

    def __init__(self, bits: int, phase: str, recipe: Recipe, in_block: bool):
        self.ops: list[dict] = []
        self.bits, self.phase, self.recipe, self.in_block = bits, phase, recipe, in_block

    def _base(self, name, kind, dims, depends_on=None) -> dict:
        op = {"name": name, "kind": kind, "dims": dims, "phase": self.phase,
              "precision": {"activations": self.bits, "weights": self.bits, "outputs": self.bits}}
        if depends_on is not None:
            op["depends_on"] = list(depends_on)
        if self.in_block and self.recipe.skip:
            op["skip_probability"] = self.recipe.skip
        self.ops.append(op)
        return op

    def linear(self, name, M, K, N, prunable=True, depends_on=None):
        op = self._base(name, "gemm", {"M": M, "K": K, "N": N}, depends_on)
        self._sparsify(op, prunable)
        return name

    def moe(self, name, counts, K, N, depends_on=None):
        op = self._base(name, "moe_gemm", {"tokens_per_expert": list(counts), "K": K, "N": N}, depends_on)
        self._sparsify(op, True)
        return name

    def _sparsify(self, op, prunable):
        sp = {}
        if prunable and self.recipe.weights is not None:
            sp["weights"] = self.recipe.weights
        if prunable and self.recipe.activations is not None:
            sp["activations"] = self.recipe.activations
        if sp:
            op["sparsity"] = sp

    def attention(self, prefix, batch, heads, kv_heads, q_len, kv_len, head_dim, qk_deps, v_dep):
        dims = {"batch": batch, "heads": heads, "kv_heads": kv_heads, "q_len": q_len, "kv_len": kv_len,
                "head_dim": head_dim}
        self._attention_sparsity(self._base(f"{prefix}attn_qk", "attention_qk", dims, qk_deps), "outputs")
        self.vector(f"{prefix}softmax", "softmax", batch * heads * q_len * kv_len, flops=5)
        self._attention_sparsity(self._base(f"{prefix}attn_pv", "attention_pv", dims, [f"{prefix}softmax", v_dep]),
                                 "activations")
        return f"{prefix}attn_pv"

    def _attention_sparsity(self, op: dict, probabilities: str) -> None:
        """KV-cache pruning as the B operand's sparsity; sparse attention on the attention
        probabilities, which QK^T produces (`outputs`) and PV reads (`activations`)."""
        rc = self.recipe
        sp = {}
        if rc.kv is not None:
            sp["weights"] = rc.kv
        if rc.attention is not None:
            sp[probabilities] = rc.attention
        if sp:
            op["sparsity"] = sp

    def residual(self, name, kind, elements, skip_from, flops=1.0):
        """An add (or post-LN norm) of the op just before it and a skipped-over tensor: the
        block input (`BLOCK_INPUT`) or an earlier op of the block. That second edge makes
        the residual branch visible in the op graph."""
        return self.vector(name, kind, elements, inputs=2, flops=flops,
                           depends_on=[self.ops[-1]["name"], skip_from])

    def vector(self, name, kind, elements, inputs=1, flops=1.0, depends_on=None):
        self._base(name, kind, {"elements": int(elements), "inputs": inputs, "flops_per_element": flops}, depends_on)
        return name


BLOCK_INPUT = "<block input>"  # resolved by `_prefixed` to the op that feeds the block


def _block_ops(s: ModelShape, T: int, B: int, q_len: int, kv_len: int, phase: str, recipe: Recipe,
               counts: list[int] | None) -> list[dict]:
    """Ops of one transformer block (names relative to the block); `counts` makes its MLP routed."""
    b = _Block(s.bits, phase, recipe, in_block=True)
    h, hd = s.hidden, s.head_dim
    q_out, kv_out = s.heads * hd, s.kv_heads * hd
    if s.model_type in DECODER_LLAMA:
        norm = b.vector("input_layernorm", "norm", T * h, flops=4)
        b.linear("self_attn.q_proj", T, h, q_out, depends_on=[norm])
        b.linear("self_attn.k_proj", T, h, kv_out, depends_on=[norm])
        b.linear("self_attn.v_proj", T, h, kv_out, depends_on=[norm])
        b.vector("self_attn.rotary", "elementwise", T * (q_out + kv_out), flops=3,
                 depends_on=["self_attn.q_proj", "self_attn.k_proj"])
        pv = b.attention("self_attn.", B, s.heads, s.kv_heads, q_len, kv_len, hd, ["self_attn.rotary"],
                         "self_attn.v_proj")
        b.linear("self_attn.o_proj", T, q_out, h, depends_on=[pv])
        b.residual("residual_attn", "elementwise", T * h, BLOCK_INPUT)
        norm2 = b.vector("post_attention_layernorm", "norm", T * h, flops=4)
        if counts is not None:
            _moe_ops(b, s, T, counts, norm2)
        else:
            ffn = s.ffn
            b.linear("mlp.gate_proj", T, h, ffn, depends_on=[norm2])
            b.linear("mlp.up_proj", T, h, ffn, depends_on=[norm2])
            b.vector("mlp.act_mul", "elementwise", T * ffn, inputs=2, flops=5,
                     depends_on=["mlp.gate_proj", "mlp.up_proj"])
            b.linear("mlp.down_proj", T, ffn, h)
        b.residual("residual_mlp", "elementwise", T * h, "residual_attn")
    elif s.model_type == "opt":
        norm = b.vector("self_attn_layer_norm", "norm", T * h, flops=5)
        b.linear("self_attn.q_proj", T, h, h, depends_on=[norm])
        b.linear("self_attn.k_proj", T, h, h, depends_on=[norm])
        b.linear("self_attn.v_proj", T, h, h, depends_on=[norm])
        pv = b.attention("self_attn.", B, s.heads, s.heads, q_len, kv_len, hd,
                         ["self_attn.q_proj", "self_attn.k_proj"], "self_attn.v_proj")
        b.linear("self_attn.out_proj", T, h, h, depends_on=[pv])
        b.residual("residual_attn", "elementwise", T * h, BLOCK_INPUT)
        b.vector("final_layer_norm", "norm", T * h, flops=5)
        b.linear("fc1", T, h, s.ffn)
        b.vector("activation_fn", "elementwise", T * s.ffn)
        b.linear("fc2", T, s.ffn, h)
        b.residual("residual_mlp", "elementwise", T * h, "residual_attn")
    elif s.model_type == "gpt2":
        b.vector("ln_1", "norm", T * h, flops=5)
        b.linear("attn.c_attn", T, h, 3 * h)
        pv = b.attention("attn.", B, s.heads, s.heads, q_len, kv_len, hd, ["attn.c_attn"], "attn.c_attn")
        b.linear("attn.c_proj", T, h, h, depends_on=[pv])
        b.residual("residual_attn", "elementwise", T * h, BLOCK_INPUT)
        b.vector("ln_2", "norm", T * h, flops=5)
        b.linear("mlp.c_fc", T, h, s.ffn)
        b.vector("mlp.act", "elementwise", T * s.ffn, flops=8)
        b.linear("mlp.c_proj", T, s.ffn, h)
        b.residual("residual_mlp", "elementwise", T * h, "residual_attn")
    else:  # bert, post-LN
        b.linear("attention.self.query", T, h, h)
        b.linear("attention.self.key", T, h, h)
        b.linear("attention.self.value", T, h, h)
        pv = b.attention("attention.self.", B, s.heads, s.heads, q_len, kv_len, hd,
                         ["attention.self.query", "attention.self.key"], "attention.self.value")
        b.linear("attention.output.dense", T, h, h, depends_on=[pv])
        b.residual("attention.output.LayerNorm", "norm", T * h, BLOCK_INPUT, flops=6)
        b.linear("intermediate.dense", T, h, s.ffn)
        b.vector("intermediate.act", "elementwise", T * s.ffn, flops=8)
        b.linear("output.dense", T, s.ffn, h)
        b.residual("output.LayerNorm", "norm", T * h, "attention.output.LayerNorm", flops=6)
    return b.ops


def _moe_ops(b: _Block, s: ModelShape, T: int, counts: list[int], norm: str) -> None:
    """Router, routed experts (SwiGLU: w1 = gate, w3 = up, w2 = down, as Mixtral names them) and,
    for Qwen2-MoE, the always-on shared expert with its sigmoid gate."""
    h, e, f = s.hidden, s.experts, s.expert_ffn
    p = "block_sparse_moe." if s.model_type == "mixtral" else "mlp."
    routed = sum(counts)
    b.linear(f"{p}gate", T, h, e, prunable=False, depends_on=[norm])
    b.vector(f"{p}router_topk", "softmax", T * e, flops=5)
    b.moe(f"{p}experts.w1", counts, h, f, depends_on=[f"{p}router_topk"])
    b.moe(f"{p}experts.w3", counts, h, f, depends_on=[f"{p}router_topk"])
    b.vector(f"{p}experts.act_mul", "elementwise", max(routed, 1) * f, inputs=2, flops=5,
             depends_on=[f"{p}experts.w1", f"{p}experts.w3"])
    b.moe(f"{p}experts.w2", counts, f, h)
    last = [f"{p}experts.w2"]
    if s.shared_expert_ffn:
        sf = s.shared_expert_ffn
        b.linear(f"{p}shared_expert.gate_proj", T, h, sf, depends_on=[norm])
        b.linear(f"{p}shared_expert.up_proj", T, h, sf, depends_on=[norm])
        b.vector(f"{p}shared_expert.act_mul", "elementwise", T * sf, inputs=2, flops=5,
                 depends_on=[f"{p}shared_expert.gate_proj", f"{p}shared_expert.up_proj"])
        b.linear(f"{p}shared_expert.down_proj", T, sf, h)
        b.linear(f"{p}shared_expert_gate", T, h, 1, prunable=False, depends_on=[norm])
        last += [f"{p}shared_expert.down_proj", f"{p}shared_expert_gate"]
    b.vector(f"{p}combine", "elementwise", max(routed, 1) * h, inputs=2, depends_on=last)


def _prefixed(ops: list[dict], prefix: str, layer: str, block_input: str | None) -> list[dict]:
    """The block's ops named `prefix + name`, `BLOCK_INPUT` bound to `block_input`."""
    out = []
    names = {o["name"] for o in ops}
    for o in ops:
        o = dict(o)
        o["name"] = prefix + o["name"]
        o["layer"] = layer
        if "depends_on" in o:
            deps = [block_input if d == BLOCK_INPUT else prefix + d if d in names else d for d in o["depends_on"]]
            o["depends_on"] = [d for d in deps if d is not None]
        out.append(o)
    return out


def phase_ops(s: ModelShape, phase: str, seq_len: int, kv_len: int, batch: int, recipe: Recipe,
               counts_per_layer: list[list[int]] | None, lm_head: bool, logits: str, repeat_layers: bool,
               prune_lm_head: bool) -> list[dict]:
    q_len = seq_len if phase == "prefill" else 1
    T = batch * q_len
    ops: list[dict] = []
    head = _Block(s.bits, phase, recipe, in_block=False)
    h = s.hidden
    head.vector("embed_tokens", "elementwise", T * (s.embed_proj or h), inputs=1, flops=0)
    if s.model_type in ("opt", "gpt2", "bert"):
        head.vector("embed_positions", "elementwise", T * h, inputs=2)
    if s.model_type == "bert":
        head.vector("embeddings.LayerNorm", "norm", T * h, flops=5)
    if s.embed_proj:
        head.linear("project_in", T, s.embed_proj, h, prunable=False)
    ops += head.ops

    moe, windowed = set(s.moe_layers), set(s.window_layers)
    layer_ops = [_block_ops(s, T, batch, q_len, min(kv_len, s.sliding_window) if i in windowed else kv_len, phase,
                            recipe, counts_per_layer[i] if (counts_per_layer is not None and i in moe) else None)
                 for i in range(s.layers)]
    if repeat_layers and all(lo == layer_ops[0] for lo in layer_ops[1:]):
        block = _prefixed(layer_ops[0], "layers.", f"layers.0-{s.layers - 1}" if s.layers > 1 else "layers.0",
                          ops[-1]["name"])
        for o in block:
            o["repeat"] = s.layers
        ops += block
    else:
        for i, lo in enumerate(layer_ops):
            ops += _prefixed(lo, f"layers.{i}.", f"layers.{i}", ops[-1]["name"])

    tail = _Block(s.bits, phase, recipe, in_block=False)
    lm_tokens = T if logits == "all" else batch
    if s.model_type == "bert":
        tail.linear("pooler.dense", batch, h, h, prunable=False)
        tail.vector("pooler.activation", "elementwise", batch * h)
        if lm_head:
            tail.linear("cls.predictions.transform.dense", lm_tokens, h, h, prunable=False)
            tail.vector("cls.predictions.transform.LayerNorm", "norm", lm_tokens * h, flops=5)
            tail.linear("cls.predictions.decoder", lm_tokens, h, s.vocab, prunable=prune_lm_head)
    else:
        tail.vector("final_norm", "norm", T * h, flops=4)
        if s.embed_proj:
            # OPTDecoder projects every position before the head sees any of them
            tail.linear("project_out", T, h, s.embed_proj, prunable=False)
        if lm_head:
            tail.linear("lm_head", lm_tokens, s.embed_proj or h, s.vocab, prunable=prune_lm_head)
    ops += tail.ops
    return ops
