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
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from simulator.errors import SparsimInputError, nearest
from simulator.split import largest_remainder
from simulator.trace import Sparsity, Trace
from workloads.extract.recipe import parse_block_density, parse_density, parse_weights

log = logging.getLogger(__name__)

CONFIG_DIR = Path(__file__).resolve().parents[1] / "hf_configs"

DECODER_LLAMA = ("llama", "mistral", "qwen2", "mixtral", "qwen2_moe")
SUPPORTED = DECODER_LLAMA + ("opt", "gpt2", "bert")
ROUTINGS = ("uniform", "zipf", "file")
PHASES = ("prefill", "decode", "both")
DTYPE_BITS = {"float32": 32, "float": 32, "float16": 16, "half": 16, "bfloat16": 16, "float64": 64,
              "int8": 8, "float8_e4m3fn": 8}


# ----------------------------------------------------------------------------- config -> shape

@dataclass(frozen=True)
class ModelShape:
    """The numbers of a config that fix the model's compute, under one naming."""
    model_type: str
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    ffn: int
    layers: int
    vocab: int
    mlp: str = "gated"                      # gated (SwiGLU), plain (fc1/act/fc2)
    experts: int = 0                        # routed experts; 0 = dense MLP in every layer
    top_k: int = 0
    expert_ffn: int = 0
    shared_expert_ffn: int = 0
    moe_layers: tuple[int, ...] = ()
    fused_qkv: bool = False                 # GPT-2's c_attn
    embed_proj: int | None = None           # OPT's word_embed_proj_dim when != hidden
    encoder: bool = False                   # BERT: bidirectional, no decode, pooler
    mlm_head: bool = False
    sliding_window: int | None = None
    window_layers: tuple[int, ...] = ()     # layers whose attention uses sliding_window
    bits: int = 16


def _load_config(config: str | Path | dict) -> tuple[dict, str | None]:
    if isinstance(config, dict):
        _check_key_types(config, None)
        return config, None
    path = Path(config)
    if not path.exists():
        shipped = CONFIG_DIR / f"{config}.json"
        if shipped.exists():
            path = shipped
        else:
            names = sorted(p.stem for p in CONFIG_DIR.glob("*.json"))
            guess = nearest(str(config), names)
            raise SparsimInputError("config file not found", path=config,
                                    hint=(f"did you mean '{guess}'? " if guess else "")
                                    + "give a config.json path or one of: " + ", ".join(names))
    from simulator.inputs import read_json_file
    data = read_json_file(path, "config")
    if not isinstance(data, dict):
        raise SparsimInputError("a config.json must be a JSON object", path=path)
    _check_key_types(data, str(path))
    return data, str(path)


# Keys read as something other than a size (sizes go through `_Reader._int`): their JSON types.
_KEY_TYPES = {"model_type": (str,), "torch_dtype": (str,), "dtype": (str,), "architectures": (list, str),
              "layer_types": (list, str), "mlp_only_layers": (list, int), "use_sliding_window": (bool,)}


def _check_key_types(cfg: dict, path: str | None) -> None:
    """One located error when a key the reader uses holds the wrong JSON type (e.g. architectures: [3])."""
    for key, (kind, *item) in _KEY_TYPES.items():
        v = cfg.get(key)
        if v is None:
            continue
        ok = isinstance(v, kind) and not (kind is not bool and isinstance(v, bool))
        if ok and item:
            ok = all(isinstance(x, item[0]) and not isinstance(x, bool) for x in v)
        if not ok:
            want = f"a list of {item[0].__name__}" if item else kind.__name__
            raise SparsimInputError(f"'{key}' must be {want}, got {str(v)[:60]}", path=path, field=key)


# Keys that become per-layer or per-expert lists: bounded well above any published model (the
# largest have ~128 layers and 256 routed experts), so a typo cannot ask for a list of 10^12.
COUNT_LIMITS = {"num_hidden_layers": 10_000, "num_local_experts": 65_536, "num_experts": 65_536,
                "num_experts_per_tok": 65_536, "num_attention_heads": 1 << 20, "num_key_value_heads": 1 << 20}


# Sizes a model cannot have zero of (a zero head count would divide by zero).
POSITIVE_KEYS = {"hidden_size", "n_embd", "num_attention_heads", "n_head", "num_key_value_heads", "head_dim",
                 "num_hidden_layers", "n_layer", "vocab_size", "intermediate_size", "ffn_dim", "n_inner",
                 "moe_intermediate_size", "word_embed_proj_dim"}


class _Reader:
    """Reads required/optional integer keys with one located error naming what is missing."""

    def __init__(self, cfg: dict, path: str | None, model_type: str):
        self.cfg, self.path, self.model_type = cfg, path, model_type

    def req(self, *keys: str) -> int:
        for k in keys:
            if self.cfg.get(k) is not None:
                return self._int(k)
        alts = " or ".join(f"'{k}'" for k in keys)
        raise SparsimInputError(f"config is missing {alts}, needed for model_type '{self.model_type}'",
                                path=self.path, field=keys[0], hint="copy it from the model's config.json")

    def opt(self, key: str, default):
        return self._int(key) if self.cfg.get(key) is not None else default

    def _int(self, key: str) -> int:
        v = self.cfg[key]
        from simulator.bounds import MAX_DIM
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v != int(v) or v < 0:
            raise SparsimInputError(f"'{key}' must be a non-negative integer, got {str(v)[:40]}", path=self.path,
                                    field=key)
        if v == 0 and key in POSITIVE_KEYS:
            raise SparsimInputError(f"'{key}' must be at least 1, got 0", path=self.path, field=key)
        limit = COUNT_LIMITS.get(key, MAX_DIM)
        if v > limit:
            raise SparsimInputError(f"'{key}' is {int(v):,}, over the limit of {limit:,}", path=self.path, field=key)
        return int(v)


def _check_experts(experts: int, top_k: int, path) -> None:
    """A MoE config routes each token to 1..experts experts (0 experts is not a dense model)."""
    if experts < 1:
        raise SparsimInputError(f"a MoE model needs at least one expert, got {experts}", path=path,
                                field="num_local_experts", hint="copy it from the model's config.json")
    if not 1 <= top_k <= experts:
        raise SparsimInputError(f"num_experts_per_tok {top_k} must be in 1..{experts}", path=path,
                                field="num_experts_per_tok")


ARCHITECTURE_PREFIXES = (("Qwen2Moe", "qwen2_moe"), ("Qwen2", "qwen2"), ("Mixtral", "mixtral"), ("Mistral", "mistral"),
                         ("Llama", "llama"), ("OPT", "opt"), ("GPT2", "gpt2"), ("Bert", "bert"))


def _type_from_architectures(archs) -> str | None:
    """model_type implied by `architectures` (e.g. LlamaForCausalLM -> llama) for configs without it."""
    for arch in archs or []:
        for prefix, mt in ARCHITECTURE_PREFIXES:
            if str(arch).startswith(prefix):
                return mt
    return None


def model_shape(config: str | Path | dict) -> ModelShape:
    """Read a config (path, shipped name, or dict) into a ModelShape, or raise one clear error."""
    cfg, path = _load_config(config)
    mt = cfg.get("model_type") or _type_from_architectures(cfg.get("architectures"))
    if not mt:
        raise SparsimInputError("config has no 'model_type'", path=path, field="model_type",
                                hint="add it (one of: " + ", ".join(SUPPORTED) + ")")
    mt = str(mt)
    if mt not in SUPPORTED:
        guess = nearest(mt, SUPPORTED)
        raise SparsimInputError(f"unknown model_type '{mt}'", path=path, field="model_type",
                                hint=(f"did you mean '{guess}'? " if guess else "") + "supported: " + ", ".join(SUPPORTED))
    r = _Reader(cfg, path, mt)
    bits = DTYPE_BITS.get(str(cfg.get("torch_dtype") or cfg.get("dtype") or "float16"), 16)

    if mt in DECODER_LLAMA:
        # Llama/Mistral/Qwen2/Mixtral/Qwen2-MoE modelling code: q_proj hidden -> heads*head_dim,
        # k/v_proj hidden -> num_key_value_heads*head_dim, gate/up hidden -> intermediate, down back.
        hidden = r.req("hidden_size")
        heads = r.req("num_attention_heads")
        kv = r.opt("num_key_value_heads", heads)
        head_dim = r.opt("head_dim", hidden // heads if heads else 0)
        layers = r.req("num_hidden_layers")
        vocab = r.req("vocab_size")
        experts = top_k = expert_ffn = shared = 0
        moe_layers: tuple[int, ...] = ()
        if mt == "mixtral":
            experts = r.req("num_local_experts", "num_experts")
            top_k = r.req("num_experts_per_tok")
            _check_experts(experts, top_k, path)
            ffn = expert_ffn = r.req("intermediate_size")
            moe_layers = tuple(range(layers))
        elif mt == "qwen2_moe":
            # Qwen2-MoE: layer i is sparse when i is not in mlp_only_layers and
            # (i + 1) % decoder_sparse_step == 0; sparse layers add a shared expert.
            experts = r.req("num_experts")
            top_k = r.req("num_experts_per_tok")
            _check_experts(experts, top_k, path)
            expert_ffn = r.req("moe_intermediate_size")
            shared = r.opt("shared_expert_intermediate_size", 0)
            ffn = r.opt("intermediate_size", expert_ffn)
            step = r.opt("decoder_sparse_step", 1) or 1
            dense_only = set(cfg.get("mlp_only_layers") or [])
            moe_layers = tuple(i for i in range(layers) if i not in dense_only and (i + 1) % step == 0)
        else:
            ffn = r.req("intermediate_size")
        window, window_layers = _sliding_window(cfg, mt, layers, r)
        shape = ModelShape(mt, hidden, heads, kv, head_dim, ffn, layers, vocab, "gated", experts, top_k,
                           expert_ffn, shared, moe_layers, sliding_window=window, window_layers=window_layers,
                           bits=bits)
    elif mt == "opt":
        # OPT (HF modeling_opt): q/k/v/out_proj hidden x hidden, fc1 hidden -> ffn_dim, fc2 back;
        # project_in/out when word_embed_proj_dim differs from hidden; lm_head from that width.
        hidden = r.req("hidden_size")
        heads = r.req("num_attention_heads")
        proj = r.opt("word_embed_proj_dim", hidden)
        shape = ModelShape(mt, hidden, heads, heads, hidden // heads, r.req("ffn_dim"), r.req("num_hidden_layers"),
                           r.req("vocab_size"), "plain", embed_proj=proj if proj != hidden else None, bits=bits)
    elif mt == "gpt2":
        # GPT-2 (HF modeling_gpt2): fused c_attn hidden -> 3*hidden, c_proj, c_fc to n_inner (4*hidden).
        hidden = r.req("n_embd", "hidden_size")
        heads = r.req("n_head", "num_attention_heads")
        shape = ModelShape(mt, hidden, heads, heads, hidden // heads, r.opt("n_inner", 4 * hidden),
                           r.req("n_layer", "num_hidden_layers"), r.req("vocab_size"), "plain", fused_qkv=True,
                           bits=bits if cfg.get("torch_dtype") else 32)
    else:  # bert
        # BERT (Devlin et al. 2019; HF modeling_bert): query/key/value/output hidden x hidden,
        # intermediate hidden -> intermediate_size, output back; pooler on the first token.
        hidden = r.req("hidden_size")
        heads = r.req("num_attention_heads")
        archs = " ".join(cfg.get("architectures") or [])
        shape = ModelShape(mt, hidden, heads, heads, hidden // heads, r.req("intermediate_size"),
                           r.req("num_hidden_layers"), r.req("vocab_size"), "plain", encoder=True,
                           mlm_head="MaskedLM" in archs or "PreTraining" in archs,
                           bits=bits if cfg.get("torch_dtype") else 32)
    _check_shape(shape, path)
    return shape


def _sliding_window(cfg: dict, mt: str, layers: int, r: "_Reader") -> tuple[int | None, tuple[int, ...]]:
    """(window, layers using it) as the HF config classes read them: Mistral/Mixtral apply
    `sliding_window` to every layer; Qwen2/Qwen2-MoE only when `use_sliding_window` is true, and
    then to layers >= `max_window_layers` (default 28; Qwen2Config's rule); an explicit
    `layer_types` list wins. An absent key means 4096 (the Mistral/Qwen2 config defaults), none
    for Mixtral. Llama has no window."""
    if mt == "llama" or cfg.get("use_sliding_window") is False:
        return None, ()
    if mt in ("qwen2", "qwen2_moe") and not cfg.get("use_sliding_window"):
        return None, ()
    if "sliding_window" not in cfg and mt != "mixtral":
        window = 4096
    elif cfg.get("sliding_window") is None:
        return None, ()
    else:
        window = r.opt("sliding_window", 0)
        if window < 1:
            raise SparsimInputError(f"sliding_window must be >= 1 or null, got {window}", path=r.path,
                                    field="sliding_window", hint="use null for full attention")
    types = cfg.get("layer_types")
    if isinstance(types, list):
        if len(types) != layers:
            raise SparsimInputError(f"layer_types has {len(types)} entries for {layers} layers", path=r.path,
                                    field="layer_types", hint="give one entry per layer")
        chosen = tuple(i for i, t in enumerate(types) if t == "sliding_attention")
    elif mt in ("qwen2", "qwen2_moe"):
        chosen = tuple(range(r.opt("max_window_layers", 28), layers))
    else:
        chosen = tuple(range(layers))
    return (window, chosen) if chosen else (None, ())


# ModelShape field -> the config key a user must fix when it is out of range
_CONFIG_KEYS = {"hidden": "hidden_size", "heads": "num_attention_heads", "kv_heads": "num_key_value_heads",
                "head_dim": "head_dim", "ffn": "intermediate_size", "layers": "num_hidden_layers",
                "vocab": "vocab_size"}
_GPT2_KEYS = {"hidden": "n_embd", "heads": "n_head", "ffn": "n_inner", "layers": "n_layer"}


def _check_shape(s: ModelShape, path) -> None:
    for name in ("hidden", "heads", "kv_heads", "head_dim", "ffn", "layers", "vocab"):
        if getattr(s, name) < 1:
            key = (_GPT2_KEYS if s.model_type == "gpt2" else {}).get(name) or _CONFIG_KEYS[name]
            if s.model_type == "opt" and name == "ffn":
                key = "ffn_dim"
            raise SparsimInputError(f"{key} must be >= 1 (got {getattr(s, name)})", path=path, field=key,
                                    hint="check the config numbers")
    if s.heads % s.kv_heads:
        raise SparsimInputError(f"num_key_value_heads={s.kv_heads} must divide num_attention_heads={s.heads}",
                                path=path, field="num_key_value_heads")
    if s.experts and not 1 <= s.top_k <= s.experts:
        raise SparsimInputError(f"num_experts_per_tok={s.top_k} must be in 1..{s.experts}", path=path,
                                field="num_experts_per_tok")


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


# ----------------------------------------------------------------------------- op builders

@dataclass
class _Recipe:
    weights: Sparsity | None = None
    activations: Sparsity | None = None
    kv: Sparsity | None = None
    attention: Sparsity | None = None
    skip: float = 0.0


class _Block:
    """Collects one block's ops as dicts with names relative to the block."""

    def __init__(self, bits: int, phase: str, recipe: _Recipe, in_block: bool):
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
        rc = self.recipe
        qk = self._base(f"{prefix}attn_qk", "attention_qk", dims, qk_deps)
        sp = {}
        if rc.kv is not None:
            sp["weights"] = rc.kv
        if rc.attention is not None:
            sp["outputs"] = rc.attention
        if sp:
            qk["sparsity"] = sp
        self.vector(f"{prefix}softmax", "softmax", batch * heads * q_len * kv_len, flops=5)
        pv = self._base(f"{prefix}attn_pv", "attention_pv", dims, [f"{prefix}softmax", v_dep])
        sp = {}
        if rc.kv is not None:
            sp["weights"] = rc.kv
        if rc.attention is not None:
            sp["activations"] = rc.attention
        if sp:
            pv["sparsity"] = sp
        return f"{prefix}attn_pv"

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


def _block_ops(s: ModelShape, T: int, B: int, q_len: int, kv_len: int, phase: str, recipe: _Recipe,
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


def _phase_ops(s: ModelShape, phase: str, seq_len: int, kv_len: int, batch: int, recipe: _Recipe,
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


def _check_flags(bits, routing: str, seq_len, batch, kv_len) -> None:
    """The extraction settings, each one located error (before any op is built)."""
    from simulator.bounds import MAX_DIM
    if bits is not None and (isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 64):
        raise SparsimInputError(f"bits must be an integer in 1..64, got {bits!r}", field="bits")
    if routing not in ROUTINGS:
        raise SparsimInputError(f"unknown routing '{routing}'", field="routing", hint="one of " + ", ".join(ROUTINGS))
    for label, v in (("seq_len", seq_len), ("batch", batch), ("kv_len", kv_len)):
        if v is None and label == "kv_len":
            continue
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise SparsimInputError(f"{label} must be a positive integer, got {v!r}", field=label)
        if v > MAX_DIM:
            raise SparsimInputError(f"{label} is {v:,}, over the limit of {MAX_DIM:,}", field=label)


def trace_from_hf_config(config: str | Path | dict, *, phase: str = "prefill", seq_len: int = 2048,
                         kv_len: int | None = None, batch: int = 1, weights=None, activations=None, kv=None,
                         routing: str = "uniform", zipf_skew: float = 1.0, expert_counts=None,
                         attention=None, skip_layers: float = 0.0, lm_head: bool | None = None,
                         logits: str = "all", prune_lm_head: bool = False, bits: int | None = None,
                         repeat_layers: bool = True, name: str | None = None) -> Trace:
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
    """
    s = model_shape(config)
    _check_flags(bits, routing, seq_len, batch, kv_len)
    if bits is not None:
        s = dataclasses.replace(s, bits=int(bits))
    if phase not in PHASES:
        raise SparsimInputError(f"unknown phase '{phase}'", field="phase", hint="one of " + ", ".join(PHASES))
    if logits not in ("all", "last"):
        raise SparsimInputError(f"unknown logits mode '{logits}'", field="logits", hint="all or last")
    if s.encoder and phase != "prefill":
        raise SparsimInputError(f"'{s.model_type}' is an encoder: it has no decode phase", field="phase",
                                hint="use --phase prefill")
    if not 0.0 <= skip_layers < 1.0:
        raise SparsimInputError(f"skip_layers {skip_layers} must be in [0, 1)", field="skip_layers")
    recipe = _Recipe(parse_weights(weights, "weights"), parse_density(activations, "activations"),
                     parse_density(kv, "kv"), parse_block_density(attention, "attention"), float(skip_layers))

    counts_per_layer = None
    if s.experts:
        if routing == "file" or expert_counts is not None:
            if expert_counts is None:
                raise SparsimInputError("routing 'file' needs expert_counts", field="expert_counts",
                                        hint="pass --expert-counts FILE (JSON/YAML list of per-expert token counts)")
            counts_per_layer = load_expert_counts(expert_counts, s.experts, s.layers)
        elif routing not in ROUTINGS:
            raise SparsimInputError(f"unknown routing '{routing}'", field="routing", hint="one of " + ", ".join(ROUTINGS))

    def counts_for(tokens):
        if counts_per_layer is not None:
            return counts_per_layer
        row = expert_token_counts(tokens, s.experts, s.top_k, routing, zipf_skew)
        return [row] * s.layers

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
        counts = counts_for(batch * q) if s.experts else None
        if counts is not None and counts_per_layer is not None:
            off = [i for i, row in enumerate(counts) if i in s.moe_layers and sum(row) != batch * q * s.top_k]
            if off:
                log.warning("warning: expert counts of %d layer(s) (first: layer %d, %d) do not sum to tokens x "
                            "top_k = %d", len(off), off[0], sum(counts[off[0]]), batch * q * s.top_k)
        part = _phase_ops(s, ph, seq_len, kv_p, batch, recipe, counts, want_lm, logits, repeat_layers, prune_lm_head)
        if len(phases) > 1:
            part = _prefixed_phase(part, ph)
        ops += part

    label = name or _default_name(config, s)
    desc = (f"{s.model_type} {phase}: batch {batch}, seq_len {seq_len}"
            + (f", kv_len {kv_len}" if kv_len else "")
            + (f", sliding window {s.sliding_window} in {len(s.window_layers)} of {s.layers} layers"
               if s.sliding_window else "")
            + (f"; weights {recipe.weights.label}" if recipe.weights else "")
            + (f", activations {recipe.activations.label}" if recipe.activations else "")
            + (f", kv {recipe.kv.label}" if recipe.kv else "")
            + (f", attention {recipe.attention.label}" if recipe.attention else "")
            + (f", routing {routing}" + (f"(skew {zipf_skew})" if routing == "zipf" else "") if s.experts else ""))
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


def shipped_configs() -> list[str]:
    """Names of the configs shipped in workloads/hf_configs/."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.json"))


__all__ = ["trace_from_hf_config", "model_shape", "ModelShape", "expert_token_counts", "load_expert_counts",
           "shipped_configs", "SUPPORTED"]
