"""A Hugging Face `config.json` read into the few numbers that fix a transformer's compute.

`model_shape` accepts a path, a shipped name (workloads/hf_configs/NAME.json) or a dict and
returns a `ModelShape` under one naming for every supported family, or raises one located
error naming the key to fix. Per-family key names and defaults follow the HF modelling code
cited at each reader below; the trace itself is laid out by `workloads.extract.hf_blocks`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from simulator.dtypes import torch_dtype_bits
from simulator.errors import SparsimInputError, nearest

CONFIG_DIR = Path(__file__).resolve().parents[1] / "hf_configs"

DECODER_LLAMA = ("llama", "mistral", "qwen2", "mixtral", "qwen2_moe")
SUPPORTED = DECODER_LLAMA + ("opt", "gpt2", "bert")


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
    bits = torch_dtype_bits(cfg.get("torch_dtype") or cfg.get("dtype") or "float16")

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
