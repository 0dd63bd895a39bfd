"""The backward pass of a live PyTorch module, as autograd runs it: `sparsim extract torch --train`.

Why record instead of derive: autograd decides which gradients exist (an input that needs no
gradient gets no backward-data GEMM), how fused kernels split the work (the attention backward
is one kernel) and which small kernels run in between (bias-gradient sums, gradient adds at
branch points). A `TorchDispatchMode` sees every ATen kernel that `loss.backward()` executes:
- `mm`/`addmm`/`bmm` -> gemm ops with the shapes autograd used; the B operand is measured
  (`workloads.extract.stats`), so a pruned weight's mask is seen from the backward-data GEMM's
  side (W^T): a 2:4 mask that is not transposable shows up as unstructured there;
- `_scaled_dot_product_*_backward` -> the FlashAttention-2 backward's GEMMs (S recomputed,
  dV, dP, dQ, dK; `simulator.training.backward`), with heads, KV heads and lengths from the
  kernel's real arguments (a fused kernel's inner GEMMs are not visible to the dispatcher);
- layer-norm, softmax and activation backwards -> norm/softmax/elementwise ops; embedding
  backward and every other kernel that moves data -> elementwise ops over its largest tensor.
Views, transposes, detaches and other metadata-only kernels are left out.
The loss is the mean square of every floating-point output (so every parameter gets a
gradient); the module runs in eval mode (dropout off), so the recording is deterministic.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from simulator.dtypes import torch_dtype_bits
from simulator.trace import Op
from simulator.training.backward import backward_ops
from simulator.training.recipe import TrainingRecipe
from workloads.extract.stats import measure, sparsity_from_stats

METADATA = {"t", "view", "_unsafe_view", "detach", "transpose", "expand", "permute", "reshape", "as_strided",
            "unsqueeze", "squeeze", "alias", "ones_like", "zeros_like", "empty_like", "new_zeros", "zeros",
            "new_empty", "empty", "_to_copy", "lift_fresh", "slice", "select", "clone"}
NORMS = {"native_layer_norm_backward", "_fused_rms_norm_backward", "native_group_norm_backward",
         "native_batch_norm_backward"}
SOFTMAX = {"_softmax_backward_data"}


def _measured(x: torch.Tensor) -> dict:
    stats = measure(x.detach().float().cpu().numpy())
    sp = sparsity_from_stats(stats)
    return {} if sp.kind == "dense" and sp.measured is None else {"sp": sp}


class _Recorder(TorchDispatchMode):
    """Every non-metadata ATen call during backward: (name, tensor args, output)."""

    def __init__(self, measure_operands: bool):
        super().__init__()
        self.calls: list[tuple[str, list[torch.Tensor], object]] = []
        self.measure_operands = measure_operands

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = func.overloadpacket.__name__
        if name not in METADATA:
            tensors = [a for a in args if isinstance(a, torch.Tensor)]
            self.calls.append((name, tensors, out))
        return out


def _gemm(name, a, b, bits, measure_b) -> dict:
    batch = int(np.prod(a.shape[:-2])) if a.dim() > 2 else 1
    M, K, N = a.shape[-2], a.shape[-1], b.shape[-1]
    op = {"name": name, "kind": "gemm", "phase": "backward", "dims": {"M": M, "N": N, "K": K, "batch": batch},
          "precision": {"activations": bits, "weights": bits, "outputs": bits}}
    if measure_b and b.dim() == 2:
        sp = _measured(b.t())
        if sp:
            op["sparsity"] = {"weights": sp["sp"]}
    return op


def _attention(name, tensors, bits) -> list[dict]:
    """FlashAttention-2 backward GEMMs from the kernel's (grad_out, q, k, v, ...) arguments."""
    g, q, k = tensors[0], tensors[1], tensors[2]
    b, heads, q_len, hd = q.shape[0], q.shape[1], q.shape[2], q.shape[3]
    dims = {"batch": int(b), "heads": int(heads), "kv_heads": int(k.shape[1]), "q_len": int(q_len),
            "kv_len": int(k.shape[2]), "head_dim": int(hd)}
    prec = {"activations": bits, "weights": bits, "outputs": bits}
    fwd_pv = Op.model_validate({"name": name, "kind": "attention_pv", "dims": dims, "precision": prec})
    fwd_qk = Op.model_validate({"name": name, "kind": "attention_qk", "dims": dims, "precision": prec})
    ops = backward_ops(fwd_pv, TrainingRecipe())[0] + backward_ops(fwd_qk, TrainingRecipe())[0]
    return ops


def _vector(name, kind, tensors, out, bits) -> dict:
    outs = out if isinstance(out, (tuple, list)) else [out]
    sizes = [t.numel() for t in list(tensors) + [o for o in outs if isinstance(o, torch.Tensor)]]
    elements = max(sizes) if sizes else 1
    return {"name": name, "kind": kind, "phase": "backward",
            "dims": {"elements": int(max(1, elements)), "inputs": max(1, len(tensors))},
            "precision": {"activations": bits, "weights": bits, "outputs": bits}}


def _loss(output) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        parts = [output]
    elif isinstance(output, dict):
        parts = list(output.values())
    else:
        parts = list(getattr(output, "values", lambda: output)())
    parts = [p for p in parts if isinstance(p, torch.Tensor) and p.is_floating_point()]
    return sum(p.float().pow(2).mean() for p in parts)


def record_backward(module: torch.nn.Module, inputs, *, measure_operands: bool = True,
                    bits: int | None = None) -> list[dict]:
    """Backward op dicts (phase `backward`, in execution order) of `module` on `inputs`;
    `bits` overrides the precision recorded (default: each kernel's tensor dtype)."""
    was = module.training
    module.eval()
    try:
        with torch.enable_grad():
            out = module(**inputs) if isinstance(inputs, dict) else module(*inputs) \
                if isinstance(inputs, (tuple, list)) else module(inputs)
            loss = _loss(out)
            rec = _Recorder(measure_operands)
            with rec:
                loss.backward()
    finally:
        module.train(was)
        module.zero_grad(set_to_none=True)
    return calls_to_ops(rec.calls, measure_operands, bits)


def calls_to_ops(calls, measure_operands: bool = True, bits_override: int | None = None) -> list[dict]:
    ops: list[dict] = []
    for i, (fn, tensors, out) in enumerate(calls):
        name = f"autograd.{i:04d}.{fn}"
        bits = bits_override or (torch_dtype_bits(tensors[0].dtype) if tensors else 16)
        if fn in ("mm", "bmm"):
            ops.append(_gemm(name, tensors[0], tensors[1], bits, measure_operands))
        elif fn == "addmm":
            ops.append(_gemm(name, tensors[1], tensors[2], bits, measure_operands))
        elif fn.startswith("_scaled_dot_product") and fn.endswith("_backward"):
            ops += _attention(name, tensors, bits)
        elif fn in NORMS:
            ops.append(_vector(name, "norm", tensors[:2], out, bits))
        elif fn in SOFTMAX:
            ops.append(_vector(name, "softmax", tensors[:2], out, bits))
        elif tensors:
            ops.append(_vector(name, "elementwise", tensors, out, bits))
    return ops


__all__ = ["record_backward", "calls_to_ops"]
