"""Sparsifiers that turn a dense PyTorch model into a realistic sparse one, so a trace can measure it.

Each changes the module's weights in place, or installs hooks/modes that zero or mask tensors
during the forward pass; `workloads.extract.torch_trace` then *measures* the result. None of
them tries to preserve accuracy (no retraining, no SparseGPT/Wanda weight update): they give
the zero patterns those methods produce, which is what a hardware model needs.

- `magnitude_prune`: unstructured, smallest |w| per layer or with one global threshold
  (Han et al. 2015 style);
- `nm_prune`: keep the N largest of every M consecutive weights along the input features
  (2:4, 1:4, 2:8; the layout NVIDIA's sparse tensor cores read, Mishra et al. 2021);
- `block_prune`: keep the fraction of R x C weight blocks with the largest L1 norm;
- `threshold_activations`: zero the smallest-magnitude fraction of each token's input to the
  selected Linear layers (TEAL, Liu et al. 2024; CATS, Lee et al. 2024 threshold per layer);
- `prune_kv`: zero the smallest-magnitude fraction of each token's key and value vectors
  as they are produced (Mustafar-style per-token KV-cache pruning, e.g. 70%);
- `BlockSparseAttention`: a torch function mode that restricts every
  `scaled_dot_product_attention` call to the top-scoring key blocks of each query block,
  scored by block-pooled q.k (an oracle stand-in for SeerAttention's learned gate);
- `select_skipped_layers`: which layers a draft pass skips (SWIFT-style: middle layers first).

Default selection: every `nn.Linear` except heads and routers (names matching
`lm_head|pooler|classifier|score|cls|gate|router|shared_expert_gate` as a path component).
"""

from __future__ import annotations

import contextlib
import math
import re
import threading
from typing import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from simulator.errors import SparsimInputError
from simulator.trace import Sparsity
from workloads.extract.recipe import parse_weights

DEFAULT_EXCLUDE = re.compile(r"(^|\.)(lm_head|pooler|classifier|score|cls|gate|router|shared_expert_gate)(\.|$)")

_STATE = threading.local()


@contextlib.contextmanager
def internal():
    """Marks tensor work done by a sparsifier during a forward pass, so a tracer does not record it."""
    depth = getattr(_STATE, "depth", 0)
    _STATE.depth = depth + 1
    try:
        yield
    finally:
        _STATE.depth = depth


def in_internal() -> bool:
    return getattr(_STATE, "depth", 0) > 0


def prunable_linears(module: nn.Module, include: Callable[[str, nn.Module], bool] | None = None
                     ) -> list[tuple[str, nn.Linear]]:
    """(name, Linear) pairs a sparsifier touches: `include(name, mod)`, or all but heads and routers."""
    chosen = []
    for name, mod in module.named_modules():
        if not isinstance(mod, nn.Linear):
            continue
        if include is not None:
            if include(name, mod):
                chosen.append((name, mod))
        elif not DEFAULT_EXCLUDE.search(name):
            chosen.append((name, mod))
    return chosen


def prunable_weights(module: nn.Module, include: Callable[[str, nn.Module], bool] | None = None
                     ) -> list[tuple[str, nn.Parameter]]:
    """(parameter name, weight) pairs the weight pruners touch: the selected Linear weights plus 3-D
    expert weights (`...experts.gate_up_proj`, `[experts, out, in]` like Hugging Face's fused MoE),
    which are pruned as a stack of `[out, in]` matrices."""
    chosen = [(f"{name}.weight", lin.weight) for name, lin in prunable_linears(module, include)]
    for name, mod in module.named_modules():
        for pname, p in mod.named_parameters(recurse=False):
            full = f"{name}.{pname}" if name else pname
            if p.dim() == 3 and "experts" in full.split(".") + [name.rsplit(".", 1)[-1]]:
                if include(full, mod) if include is not None else not DEFAULT_EXCLUDE.search(full):
                    chosen.append((full, p))
    return chosen


def _check_density(density: float, what: str) -> float:
    if not 0.0 < float(density) <= 1.0:
        raise SparsimInputError(f"{what} density {density} is outside (0, 1]", field=what,
                                hint="a density is the fraction of values kept")
    return float(density)


# ----------------------------------------------------------------------------- weight pruning

@torch.no_grad()
def magnitude_prune(module: nn.Module, density: float, scope: str = "layer", include=None) -> dict[str, Sparsity]:
    """Zero the smallest-magnitude weights, keeping `density` of them per layer or globally."""
    density = _check_density(density, "weights")
    if scope not in ("layer", "global"):
        raise SparsimInputError(f"unknown pruning scope '{scope}'", field="scope", hint="layer or global")
    layers = prunable_weights(module, include)
    if not layers:
        raise SparsimInputError("the model has no Linear layers to prune", field="prune")
    if scope == "global":
        mags = torch.cat([w.detach().abs().flatten().float() for _, w in layers])
        drop = int(round((1.0 - density) * mags.numel()))
        threshold = mags.kthvalue(drop).values if drop > 0 else None
        for _, w in layers:
            if threshold is not None:
                w.mul_(w.abs() > threshold)
    else:
        for _, w in layers:
            drop = int(round((1.0 - density) * w.numel()))
            if drop <= 0:
                continue
            # rank by magnitude so exactly `drop` values go even when many tie at the threshold
            keep = torch.ones(w.numel(), dtype=torch.bool, device=w.device)
            keep[w.abs().flatten().argsort()[:drop]] = False
            w.mul_(keep.view_as(w))
    return {name: Sparsity(kind="unstructured", density=density) for name, _ in layers}


@torch.no_grad()
def nm_prune(module: nn.Module, n: int, m: int, include=None) -> dict[str, Sparsity]:
    """Keep the n largest |w| in every group of m consecutive input features (a tail < m is kept)."""
    if not 1 <= n <= m:
        raise SparsimInputError(f"N:M pattern {n}:{m} needs 1 <= N <= M", field="prune")
    layers = prunable_weights(module, include)
    if not layers:
        raise SparsimInputError("the model has no Linear layers to prune", field="prune")
    for _, param in layers:
        w = param.view(-1, param.shape[-1])     # a stack of expert matrices prunes like one tall matrix
        out_f, in_f = w.shape
        full = (in_f // m) * m
        if full == 0:
            continue
        groups = w[:, :full].reshape(out_f, full // m, m)
        keep = groups.abs().topk(n, dim=-1).indices
        mask = torch.zeros_like(groups, dtype=torch.bool).scatter_(-1, keep, True)
        w[:, :full] = (groups * mask).reshape(out_f, full)
    return {name: Sparsity(kind="nm", n=n, m=m) for name, _ in layers}


@torch.no_grad()
def block_prune(module: nn.Module, block: tuple[int, int], density: float, include=None) -> dict[str, Sparsity]:
    """Keep the `density` fraction of blocks (rows along K x cols along N of the trace's B operand)
    with the largest L1 norm, per layer; trailing partial blocks are kept."""
    density = _check_density(density, "weights")
    br, bc = block
    layers = prunable_weights(module, include)
    if not layers:
        raise SparsimInputError("the model has no Linear layers to prune", field="prune")
    for _, param in layers:
        w = param.view(-1, param.shape[-1])  # [N, K]; trace block (br along K, bc along N)
        n_, k_ = w.shape
        nn_, kk = (n_ // bc) * bc, (k_ // br) * br
        if nn_ == 0 or kk == 0:
            continue
        blocks = w[:nn_, :kk].reshape(nn_ // bc, bc, kk // br, br)
        norms = blocks.abs().sum(dim=(1, 3))
        keep_n = max(1, int(round(density * norms.numel())))
        keep = torch.zeros(norms.numel(), dtype=torch.bool)
        keep[norms.flatten().argsort(descending=True)[:keep_n]] = True
        mask = keep.view_as(norms)[:, None, :, None]
        w[:nn_, :kk] = (blocks * mask).reshape(nn_, kk)
    return {name: Sparsity(kind="block", block=(br, bc), density=density) for name, _ in layers}


def prune(module: nn.Module, recipe, scope: str = "layer", include=None) -> dict[str, Sparsity]:
    """Apply a weight recipe (`2:4`, `0.5`, `block:16x16:0.25`) and return the declared sparsity per weight."""
    sp = parse_weights(recipe, "prune")
    if sp is None:
        return {}
    if sp.kind == "nm":
        return nm_prune(module, sp.n, sp.m, include)
    if sp.kind == "block":
        return block_prune(module, sp.block, sp.density, include)
    return magnitude_prune(module, sp.density, scope, include)


# ----------------------------------------------------------------------------- activations and KV

def _keep_top_per_row(x: torch.Tensor, density: float) -> torch.Tensor:
    """Zero all but the `density` fraction of largest-|x| entries along the last axis."""
    d = x.shape[-1]
    keep = max(1, int(round(density * d)))
    if keep >= d:
        return x
    with internal():
        idx = x.abs().topk(keep, dim=-1).indices
        mask = torch.zeros_like(x, dtype=torch.bool).scatter_(-1, idx, True)
        return x * mask


def threshold_activations(module: nn.Module, density: float, include=None) -> list:
    """Zero the smallest-magnitude (1 - density) of each token's input to every selected Linear.
    Returns hook handles; call `.remove()` on each to undo."""
    density = _check_density(density, "activations")
    handles = []
    for _, lin in prunable_linears(module, include):
        def pre(mod, args, density=density):
            return (_keep_top_per_row(args[0], density),) + tuple(args[1:])
        handles.append(lin.register_forward_pre_hook(pre))
    return handles


KEY_NAMES = ("k_proj", "key", "wk")
VALUE_NAMES = ("v_proj", "value", "wv")


def prune_kv(module: nn.Module, density: float, key_names: Iterable[str] = KEY_NAMES,
             value_names: Iterable[str] = VALUE_NAMES) -> list:
    """Per-token magnitude pruning of the keys and values as the k/v projections emit them
    (what enters the KV cache). Returns hook handles."""
    density = _check_density(density, "kv")
    names = set(key_names) | set(value_names)
    handles = []
    for name, mod in module.named_modules():
        if isinstance(mod, nn.Linear) and name.rsplit(".", 1)[-1] in names:
            handles.append(mod.register_forward_hook(lambda m, a, out, d=density: _keep_top_per_row(out, d)))
    if not handles:
        raise SparsimInputError("no key/value projections found to prune", field="kv",
                                hint="the model's Linear layers must be named " + "/".join(sorted(names)))
    return handles


class BlockSparseAttention(TorchFunctionMode):
    """Restrict each `scaled_dot_product_attention` to `density` of its key blocks per query block.

    Blocks are scored by mean-pooled q . mean-pooled k (the oracle that SeerAttention's gate
    learns to approximate); each query block keeps its top ceil(density x blocks) key blocks,
    always including the diagonal one when q and k cover the same positions. Combined with any
    mask the call already had. Use as a context manager around the forward pass.
    """

    def __init__(self, density: float, block: int = 64):
        super().__init__()
        self.density = _check_density(density, "attention")
        self.block = int(block)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func is F.scaled_dot_product_attention:
            q, k = args[0], args[1]
            names = ("attn_mask", "dropout_p", "is_causal")
            for i, extra in enumerate(args[3:6]):          # positional attn_mask, dropout_p, is_causal
                kwargs.setdefault(names[i], extra)
            args = tuple(args[:3])
            with internal():
                mask = self.block_mask(q, k)
                old = kwargs.get("attn_mask")
                if kwargs.pop("is_causal", False):
                    L, S = q.shape[-2], k.shape[-2]
                    mask = mask & torch.ones(L, S, dtype=torch.bool, device=q.device).tril(S - L)
                if old is not None:
                    mask = mask & (old if old.dtype == torch.bool else old > torch.finfo(old.dtype).min / 2)
            kwargs["attn_mask"] = mask
        return func(*args, **kwargs)

    def block_mask(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        b = self.block
        L, S = q.shape[-2], k.shape[-2]
        nq, nk = math.ceil(L / b), math.ceil(S / b)
        qp = F.pad(q, (0, 0, 0, nq * b - L)).unflatten(-2, (nq, b)).mean(-2)
        kp = F.pad(k, (0, 0, 0, nk * b - S)).unflatten(-2, (nk, b)).mean(-2)
        if kp.shape[-3] != qp.shape[-3]:                        # GQA: repeat KV heads
            kp = kp.repeat_interleave(qp.shape[-3] // kp.shape[-3], dim=-3)
        scores = qp @ kp.transpose(-1, -2)                      # [..., nq, nk]
        if L == S:
            eye = torch.eye(nq, nk, dtype=torch.bool, device=q.device)
            scores = scores.masked_fill(eye, float("inf"))
        keep = max(1, math.ceil(self.density * nk))
        idx = scores.topk(keep, dim=-1).indices
        blocks = torch.zeros_like(scores, dtype=torch.bool).scatter_(-1, idx, True)
        full = blocks.repeat_interleave(b, dim=-2).repeat_interleave(b, dim=-1)
        return full[..., :L, :S]


def select_skipped_layers(num_layers: int, fraction: float) -> list[int]:
    """Indices of the layers a draft pass skips: round(fraction x layers), chosen from the middle
    outwards (SWIFT, Xia et al. 2024, finds intermediate layers the most skippable; the first
    and last layers are kept)."""
    if not 0.0 <= fraction < 1.0:
        raise SparsimInputError(f"skip fraction {fraction} must be in [0, 1)", field="skip_layers")
    count = min(int(round(fraction * num_layers)), max(0, num_layers - 2))
    mid = (num_layers - 1) / 2
    order = sorted(range(1, num_layers - 1), key=lambda i: (abs(i - mid), i))
    return sorted(order[:count])


__all__ = ["prune", "magnitude_prune", "nm_prune", "block_prune", "threshold_activations", "prune_kv",
           "BlockSparseAttention", "select_skipped_layers", "internal", "in_internal", "prunable_linears",
           "prunable_weights", "DEFAULT_EXCLUDE"]
