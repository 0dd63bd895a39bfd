"""Training-step traces from model sources: a Hugging Face config (backward derived from the
forward ops) or a live PyTorch module (backward recorded from autograd).

The forward pass is the extractor's own (`hf_config` prefill over all positions with the LM
head over every token, as training computes the loss; `torch_trace` for a module); the backward
and optimizer come from `simulator.training.build`. The config path also returns the
`TransformerShape` the activation-memory formulas need.
"""

from __future__ import annotations

from simulator.errors import SparsimInputError
from simulator.trace import Op, Trace
from simulator.training.build import TrainingTrace, training_trace
from simulator.training.footprint import TransformerShape
from simulator.training.recipe import TrainingRecipe
from workloads.extract.hf_config import ModelShape, _checked_shape, trace_from_hf_config

DROPOUT_FAMILIES = ("gpt2", "bert", "opt")   # their configs train with dropout; Llama-family configs set 0


def extra_params(s: ModelShape) -> int:
    """Parameters outside the GEMMs: token embeddings, learned positions, norm scales and biases."""
    norms = (2 * s.layers + 1) * s.hidden * (2 if s.model_type in DROPOUT_FAMILIES else 1)
    positions = 0
    if s.model_type in ("gpt2", "bert", "opt"):
        positions = 2048 * s.hidden if s.model_type == "opt" else 1024 * s.hidden if s.model_type == "gpt2" \
            else 512 * s.hidden
    return s.vocab * (s.embed_proj or s.hidden) + positions + norms


def transformer_shape(s: ModelShape, seq_len: int, micro_batch: int) -> TransformerShape:
    """The activation-formula view of a model; a MoE MLP counts top_k routed experts per token."""
    ffn = s.expert_ffn * s.top_k + s.shared_expert_ffn if s.experts else s.ffn
    return TransformerShape(seq=seq_len, micro_batch=micro_batch, hidden=s.hidden, heads=s.heads, layers=s.layers,
                            ffn=ffn, kv_dim=s.kv_heads * s.head_dim, vocab=s.vocab, gated=s.mlp == "gated",
                            dropout=s.model_type in DROPOUT_FAMILIES)


def _with_loss(forward: Trace, s: ModelShape, tokens: int) -> Trace:
    """The forward plus the loss: softmax cross-entropy over fp32 logits (what training adds after
    the LM head; Korthikanti et al. 2022 count those fp32 logits among the stored activations)."""
    if not forward.ops or forward.ops[-1].kind != "gemm" or forward.ops[-1].dims.N != s.vocab:
        return forward
    loss = {"name": "loss.cross_entropy", "kind": "softmax", "phase": "prefill",
            "precision": {"activations": 32, "weights": 32, "outputs": 32},
            "dims": {"elements": tokens * s.vocab, "inputs": 1, "flops_per_element": 5}}
    return forward.model_copy(update={"ops": [*forward.ops, Op.model_validate(loss)]})


def hf_training_trace(config, *, seq_len: int, batch: int, recipe: TrainingRecipe | None = None,
                      name: str | None = None, **forward_recipe) -> tuple[TrainingTrace, TransformerShape]:
    """A training step of the model in `config`: micro-batch `batch` x `seq_len` tokens.

    `forward_recipe` is `trace_from_hf_config`'s sparsity/routing recipe (weights, activations,
    routing, zipf_skew, expert_counts, bits, skip_layers, repeat_layers)."""
    recipe = (recipe or TrainingRecipe()).check()
    s = _checked_shape(config, forward_recipe.get("bits"))
    lm_head = forward_recipe.pop("lm_head", None)
    forward = trace_from_hf_config(config, phase="prefill", seq_len=seq_len, batch=batch, logits="all",
                                   lm_head=True if lm_head is None else lm_head, name=name, shape=s, **forward_recipe)
    forward = _with_loss(forward, s, batch * seq_len)
    tt = training_trace(forward, recipe, extra_params=extra_params(s), param_bits=s.bits,
                        tokens_per_micro_batch=batch * seq_len, name=f"{forward.name}_train")
    return tt, transformer_shape(s, seq_len, batch)


def torch_training_trace(model: str, *, seq_len: int = 128, prune=None, scope: str = "layer", text: str | None = None,
                         bits: int | None = None, recipe: TrainingRecipe | None = None,
                         name: str | None = None) -> TrainingTrace:
    """A training step of 'minilm' (or module:factory) with its backward recorded from autograd."""
    from workloads.extract import torch_trace
    from workloads.extract.torch_backward import record_backward
    recipe = (recipe or TrainingRecipe()).check()
    if model == "minilm":
        module, tok = torch_trace.load_minilm()
        longest = int(module.config.max_position_embeddings)
        if not isinstance(seq_len, int) or not 2 <= seq_len <= longest:
            raise SparsimInputError(f"seq_len {seq_len} is outside 2..{longest} for MiniLM", field="--seq-len")
        inputs = torch_trace.minilm_inputs(tok, text, seq_len)
        label = "all-MiniLM-L6-v2"
    else:
        module, inputs = torch_trace._load_factory(model)
        label = model
    if scope not in ("layer", "global"):
        raise SparsimInputError(f"unknown pruning scope '{scope}'", field="--scope", hint="layer or global")
    forward = torch_trace.sparsify_and_trace(module, inputs, prune=prune, scope=scope, bits=bits,
                                             name=name or f"{label}_traced",
                                             description=f"measured: {label}" + (f", weights {prune}" if prune else ""))
    backward = record_backward(module, inputs, bits=bits)
    params = sum(p.numel() for p in module.parameters() if p.requires_grad)
    gemm_params = sum(op.repeat * (op.operand_elements()["weights"] if op.kind in ("gemm", "conv2d") else 0)
                      for op in forward.ops)
    tokens = int(inputs["input_ids"].numel()) if isinstance(inputs, dict) and "input_ids" in inputs else None
    return training_trace(forward, recipe, extra_params=max(0, params - gemm_params), backward=backward,
                          tokens_per_micro_batch=tokens, name=f"{forward.name}_train")


__all__ = ["hf_training_trace", "torch_training_trace", "transformer_shape", "extra_params"]
