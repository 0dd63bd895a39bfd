"""Traces from a Hugging Face `config.json` alone: no weights, no network, no `transformers`.

A transformer's compute is fixed by a handful of config numbers (hidden size, heads, KV
heads, FFN width, layers, vocabulary, experts), so a trace of every GEMM can be written
from the config before any weights exist. This module reads those numbers for the common
decoder families (Llama/Llama-2/3, Mistral, Qwen2: gated SiLU MLP, RMSNorm, GQA; Mixtral
and Qwen2-MoE: routed experts; OPT; GPT-2) and the BERT encoder, and lays out one block's
ops in the order the model runs them:

    norm -> q/k/v projections -> rotary -> QK^T -> softmax -> PV -> output projection ->
    residual -> norm -> MLP (or router + experts) -> residual

then the final norm and the LM head. Every GEMM of the model is present; ops without MACs
(norms, softmax, activation functions, residual adds, embedding gathers) are kept as
zero-MAC vector ops so that memory-bound time is not lost. Biases are taken as fused into
their GEMM and dropout as absent (inference).

Shapes follow the model code's conventions (cited per family below):
- GQA: k/v projections are hidden x (num_key_value_heads x head_dim); attention carries
  `kv_heads` so KV traffic is counted per KV head, not per query head
  (docs/references.md#gqa-kv-heads);
- MoE: each token goes to `num_experts_per_tok` of `num_local_experts` (Mixtral) or
  `num_experts` (Qwen2-MoE) experts; the per-expert token counts come from a routing
  distribution (uniform, Zipf with a skew, or measured counts from a file);
- prefill of S tokens: q_len = kv_len = S per sequence, the LM head over all S positions
  (what a plain `forward` computes; pass `logits="last"` for serving engines that keep only
  the last position); decode: one query token per sequence against `kv_len` cached keys.
Causal masking is not subtracted from QK^T/PV MACs (a dense GEMM computes the full square).
A sliding window W (Mistral; Qwen2 only with `use_sliding_window`, and only from layer
`max_window_layers` on, or as `layer_types` says) caps the keys each query sees at W in both
phases: the windowed kernel computes an S x W band and the rolling KV cache holds W entries.

Sparsity recipes (`workloads.extract.recipe`) apply per operand role: `weights` to the
linear layers inside the blocks (router, LM head and other heads stay dense, as SparseGPT
and Wanda leave them), `activations` to the inputs of those same linear layers (TEAL/CATS
style), `kv` to the KV cache (the `weights` operand of the attention ops), `attention` to
the attention-probability map as block sparsity (the outputs of QK^T and the A operand of
PV), `skip_layers` as each block op's skip probability (SWIFT-style layer skipping).

Layout: `hf_shape` reads the config into a `ModelShape`, `hf_blocks` lays out the ops of each
family, and this module holds the MoE routing and `trace_from_hf_config`, which joins them.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from pydantic import ValidationError

from simulator.errors import SparsimInputError
from simulator.split import largest_remainder
from simulator.trace import Trace
from workloads.extract.hf_blocks import Recipe, phase_ops
from workloads.extract.hf_shape import SUPPORTED, ModelShape, model_shape
from workloads.extract.recipe import parse_block_density, parse_density, parse_weights

log = logging.getLogger(__name__)

ROUTINGS = ("uniform", "zipf", "file")
PHASES = ("prefill", "decode", "both")


# ----------------------------------------------------------------------------- MoE routing

def expert_token_counts(tokens: int, experts: int, top_k: int, routing: str = "uniform",
                        zipf_skew: float = 1.0) -> list[int]:
    """Tokens each expert receives when `tokens` tokens each pick `top_k` distinct experts.

    uniform: the tokens x top_k assignments spread as evenly as possible (the first experts
    take the remainder). zipf: expert of rank r gets a share proportional to 1/r^skew
    (skew 0 = uniform); no expert can take more than every token once, the excess goes to
    the next ranks. Counts are integers that sum to tokens x top_k exactly.
    """
    total = tokens * top_k
    if routing == "uniform" or zipf_skew == 0:
        base, extra = divmod(total, experts)
        return [base + (1 if e < extra else 0) for e in range(experts)]
    if routing != "zipf":
        raise SparsimInputError(f"unknown routing '{routing}'", field="routing", hint="one of " + ", ".join(ROUTINGS))
    if not 0 <= zipf_skew <= 1e30:  # NaN and infinity too
        raise SparsimInputError(f"zipf skew {zipf_skew} must be a finite number >= 0", field="zipf_skew")
    weights = [1.0 / (r + 1) ** zipf_skew for r in range(experts)]
    return largest_remainder(total, weights, cap=tokens)  # simulator.split: one rounding rule for all


def load_expert_counts(source, experts: int, layers: int) -> list[list[int]]:
    """Per-layer expert token counts from a list, a list of lists, or a JSON/YAML file holding
    either (or `{"layers": [...]}`); one list applies to every layer."""
    path = None
    if isinstance(source, (str, Path)):
        from simulator.inputs import read_yaml_file
        path = Path(source)
        source = read_yaml_file(path, "expert-counts file")
    if isinstance(source, dict):
        source = source.get("layers", source.get("counts"))
    hint = f"give {experts} non-negative integers per layer, or a list of {layers} such lists"
    if not isinstance(source, list) or not source:
        raise SparsimInputError("expert counts must be a list", path=path, field="expert_counts", hint=hint)
    rows = source if isinstance(source[0], list) else [source] * layers
    if len(rows) != layers:
        raise SparsimInputError(f"expert counts give {len(rows)} layers, the model has {layers}", path=path,
                                field="expert_counts", hint=hint)
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != experts or any(
                isinstance(c, bool) or not isinstance(c, int) or c < 0 for c in row):
            raise SparsimInputError(f"layer {i}: expected {experts} non-negative integer counts, got {row!r}",
                                    path=path, field=f"expert_counts[{i}]", hint=hint)
        if sum(row) == 0:
            raise SparsimInputError(f"layer {i}: every expert count is 0 (no token is routed)", path=path,
                                    field=f"expert_counts[{i}]", hint=hint)
    return [list(r) for r in rows]



def trace_from_hf_config(config: str | Path | dict, *, phase: str = "prefill", seq_len: int = 2048,
                         kv_len: int | None = None, batch: int = 1, weights=None, activations=None, kv=None,
                         routing: str = "uniform", zipf_skew: float = 1.0, expert_counts=None,
                         attention=None, skip_layers: float = 0.0, lm_head: bool | None = None,
                         logits: str = "all", prune_lm_head: bool = False, bits: int | None = None,
                         repeat_layers: bool = True, name: str | None = None,
                         shape: ModelShape | None = None) -> Trace:
    """A trace of every op of the model in `config` for one prefill or decode step.

    phase: prefill (batch x seq_len tokens, attention over seq_len keys, or `kv_len` keys when
    given: cached context plus the new tokens), decode (one token per sequence against kv_len
    cached keys; kv_len defaults to seq_len), or both (two sets of ops, names prefixed).
    weights: None | "N:M" | density | "block:RxC:D"; activations, kv: density (or a recipe);
    attention: density of a block-sparse attention map (64x64 blocks) or "block:RxC:D";
    routing: uniform | zipf (with zipf_skew) | file (expert_counts: path, list or list of lists).
    lm_head: include the LM head (default: decoders yes; BERT only when its architecture is a
    masked-LM); identical layers collapse into one op with `repeat` unless `repeat_layers=False`
    or the layers differ (per-layer routing counts, Qwen2-MoE dense layers).
    `shape`: `model_shape(config)` when the caller already read it (one pass after another).
    """
    s = _checked_shape(config, bits, shape)
    _check_options(s, phase, seq_len, kv_len, batch, routing, logits, skip_layers)
    recipe = Recipe(parse_weights(weights, "weights"), parse_density(activations, "activations"),
                    parse_density(kv, "kv"), parse_block_density(attention, "attention"), float(skip_layers))
    counts_per_layer = None
    if s.experts and (routing == "file" or expert_counts is not None):
        if expert_counts is None:
            raise SparsimInputError("routing 'file' needs expert_counts", field="expert_counts",
                                    hint="pass --expert-counts FILE (JSON/YAML list of per-expert token counts)")
        counts_per_layer = load_expert_counts(expert_counts, s.experts, s.layers)

    want_lm = lm_head if lm_head is not None else (s.mlm_head if s.encoder else True)
    phases = ["prefill", "decode"] if phase == "both" else [phase]
    ops: list[dict] = []
    for ph in phases:
        if ph == "prefill":
            kv_p = kv_len if (kv_len is not None and phase == "prefill") else seq_len
            if kv_p < seq_len:
                raise SparsimInputError(f"prefill kv_len {kv_p} is shorter than seq_len {seq_len}", field="kv_len",
                                        hint="in prefill kv_len counts cached context plus the new tokens")
            q = seq_len
        else:
            kv_p = kv_len if kv_len is not None else seq_len
            q = 1
        counts = _layer_counts(s, batch * q, counts_per_layer, routing, zipf_skew) if s.experts else None
        part = phase_ops(s, ph, seq_len, kv_p, batch, recipe, counts, want_lm, logits, repeat_layers, prune_lm_head)
        if len(phases) > 1:
            part = _prefixed_phase(part, ph)
        ops += part

    desc = _description(s, phase, seq_len, kv_len, batch, recipe, routing, zipf_skew)
    return _validated_trace(config, name or _default_name(config, s), desc, ops)


def _checked_shape(config, bits: int | None, shape: ModelShape | None = None) -> ModelShape:
    """The config's shape (read unless given), with `bits` (1..64) overriding its dtype when given."""
    s = shape if shape is not None else model_shape(config)
    if bits is not None:
        if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 64:
            raise SparsimInputError(f"bits must be an integer in 1..64, got {bits!r}", field="bits")
        s = dataclasses.replace(s, bits=int(bits))
    return s


def _check_options(s: ModelShape, phase, seq_len, kv_len, batch, routing, logits, skip_layers) -> None:
    """One clear error for the first option out of range (checked in the order the flags are documented)."""
    if routing not in ROUTINGS:
        raise SparsimInputError(f"unknown routing '{routing}'", field="routing",
                                hint="one of " + ", ".join(ROUTINGS))
    if phase not in PHASES:
        raise SparsimInputError(f"unknown phase '{phase}'", field="phase", hint="one of " + ", ".join(PHASES))
    if logits not in ("all", "last"):
        raise SparsimInputError(f"unknown logits mode '{logits}'", field="logits", hint="all or last")
    from simulator.bounds import MAX_DIM
    for label, v in (("seq_len", seq_len), ("batch", batch), ("kv_len", kv_len)):
        if v is None and label == "kv_len":
            continue
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise SparsimInputError(f"{label} must be a positive integer, got {v!r}", field=label)
        if v > MAX_DIM:
            raise SparsimInputError(f"{label} is {v:,}, over the limit of {MAX_DIM:,}", field=label)
    if s.encoder and phase != "prefill":
        raise SparsimInputError(f"'{s.model_type}' is an encoder: it has no decode phase", field="phase",
                                hint="use --phase prefill")
    if not 0.0 <= skip_layers < 1.0:
        raise SparsimInputError(f"skip_layers {skip_layers} must be in [0, 1)", field="skip_layers")


def _layer_counts(s: ModelShape, tokens: int, counts_per_layer, routing: str, zipf_skew: float) -> list[list[int]]:
    """Per-layer expert token counts for `tokens` routed tokens: the given counts (warning when a
    MoE layer's counts do not sum to tokens x top_k) or the routing distribution's."""
    if counts_per_layer is None:
        return [expert_token_counts(tokens, s.experts, s.top_k, routing, zipf_skew)] * s.layers
    off = [i for i, row in enumerate(counts_per_layer) if i in s.moe_layers and sum(row) != tokens * s.top_k]
    if off:
        log.warning("warning: expert counts of %d layer(s) (first: layer %d, %d) do not sum to tokens x "
                    "top_k = %d", len(off), off[0], sum(counts_per_layer[off[0]]), tokens * s.top_k)
    return counts_per_layer


def _description(s: ModelShape, phase, seq_len, kv_len, batch, recipe: Recipe, routing, zipf_skew) -> str:
    return (f"{s.model_type} {phase}: batch {batch}, seq_len {seq_len}"
            + (f", kv_len {kv_len}" if kv_len else "")
            + (f", sliding window {s.sliding_window} in {len(s.window_layers)} of {s.layers} layers"
               if s.sliding_window else "")
            + (f"; weights {recipe.weights.label}" if recipe.weights else "")
            + (f", activations {recipe.activations.label}" if recipe.activations else "")
            + (f", kv {recipe.kv.label}" if recipe.kv else "")
            + (f", attention {recipe.attention.label}" if recipe.attention else "")
            + (f", routing {routing}" + (f"(skew {zipf_skew})" if routing == "zipf" else "") if s.experts else ""))


def _validated_trace(config, label: str, desc: str, ops: list[dict]) -> Trace:
    """The ops as a validated Trace; sizes past the trace's limits are the user's error, anything else a bug."""
    src = config if isinstance(config, (str, Path)) else "config dict"
    try:
        return Trace.model_validate({"name": label, "description": desc,
                                     "source": f"workloads.extract.hf_config from {src}", "ops": ops})
    except ValidationError as exc:
        if "over the limit" in str(exc):  # the flags make a model too large to represent
            raise SparsimInputError("the model is too large at these settings: " + str(exc.errors()[0]["msg"])
                                    .removeprefix("Value error, "), field="--seq-len/--batch/--kv-len",
                                    hint="use smaller sizes") from None
        raise RuntimeError(f"hf_config built an invalid trace for {src}: {exc}") from exc
    except Exception as exc:  # a bug in this module, not a user error: say which config caused it
        raise RuntimeError(f"hf_config built an invalid trace for {src}: {exc}") from exc


def _prefixed_phase(ops: list[dict], phase: str) -> list[dict]:
    names = {o["name"] for o in ops}
    out = []
    for o in ops:
        o = dict(o)
        o["name"] = f"{phase}.{o['name']}"
        if "depends_on" in o:
            o["depends_on"] = [f"{phase}.{d}" if d in names else d for d in o["depends_on"]]
        out.append(o)
    return out


def _default_name(config, s: ModelShape) -> str:
    if isinstance(config, (str, Path)):
        return Path(config).stem
    return s.model_type


__all__ = ["trace_from_hf_config", "model_shape", "ModelShape", "expert_token_counts", "load_expert_counts",
           "SUPPORTED"]
