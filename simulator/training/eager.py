"""Eager PyTorch kernels of a Llama block's fused vector ops: RMSNorm, rotary embedding, SwiGLU.

A config-derived trace has one memory pass per vector op (what a fused kernel, torch.compile or
Megatron's fused kernels run). PyTorch eager runs the reference Llama code op by op, one kernel
per tensor operation, with fp32 intermediates (Meta's reference implementation,
github.com/meta-llama/llama, llama/model.py; Hugging Face's LlamaRMSNorm does the same casts):

- RMSNorm `(_norm(x.float())).type_as(x) * weight`, `_norm = x * rsqrt(x.pow(2).mean(-1) + eps)`:
  cast up, pow, mean, multiply by the row scale, cast down, multiply by the weight;
- rotary `view_as_real(view_as_complex(x.float()) * freqs_cis).type_as(x)` on q and k;
- SwiGLU `silu(w1 x) * (w3 x)`: a silu and a multiply.

Autograd then runs each op's backward as its own kernels (the table below, per element of the
op's tensor; `n` bytes = one value at that width). A reduction over a row (mean, the weight
gradient's sum over tokens) is charged to the kernel that produced its input: same bytes, one
launch fewer. Kernels over one value per row (+eps, rsqrt) and the broadcast freqs_cis/weight
reads are left out (rows are 1/hidden of the elements). LayerNorm, GELU and softmax have native
fused PyTorch kernels and are left as they are.

The optimizer: `torch.optim.AdamW`/`Adam` default to their `foreach` implementation on CUDA
(pytorch/pytorch, torch/optim/adamw.py: "we default to foreach and pass False to use_fused"),
which runs one multi-tensor pass per arithmetic step over fp32 tensors (`FOREACH_ADAM`; the
weight-decay pass is AdamW's), instead of one fused pass. With mixed precision the fp32 master's
gradient is the 16-bit gradient cast up, and the 16-bit working copy is cast down from the master
afterwards: one pass each.
"""

from __future__ import annotations

from simulator.trace import Op

BF, FP = "x", "f32"   # kernel operand widths: the op's own precision, or fp32

# (label, input width, tensors read, output width): every kernel writes one tensor of the op's elements.
RMSNORM_FORWARD = [("to_fp32", BF, 1, FP), ("pow_mean", FP, 2, FP), ("mul_rsqrt", FP, 1, FP),
                   ("to_input_dtype", FP, 1, BF), ("mul_weight", BF, 1, BF)]
RMSNORM_BACKWARD = [("mul_weight.dx", BF, 1, BF), ("mul_weight.dweight", BF, 3, BF),
                    ("to_input_dtype.bwd", BF, 1, FP), ("mul_rsqrt.dx", FP, 1, FP), ("mul_rsqrt.drsqrt", FP, 3, FP),
                    ("mean.bwd", FP, 0, FP), ("pow.bwd", FP, 2, FP), ("accumulate_dx", FP, 2, FP),
                    ("to_fp32.bwd", FP, 1, BF)]
ROTARY_FORWARD = [("to_fp32", BF, 1, FP), ("complex_mul", FP, 1, FP), ("to_input_dtype", FP, 1, BF)]
ROTARY_BACKWARD = [("to_input_dtype.bwd", BF, 1, FP), ("complex_mul.bwd", FP, 1, FP), ("to_fp32.bwd", FP, 1, BF)]
SWIGLU_FORWARD = [("silu", BF, 1, BF), ("mul", BF, 2, BF)]
SWIGLU_BACKWARD = [("mul.dgate", BF, 2, BF), ("mul.dup", BF, 2, BF), ("silu.bwd", BF, 2, BF)]

# torch.optim foreach Adam(W), every tensor fp32: (label, tensors read, tensors written in place or new)
FOREACH_ADAM = [("weight_decay", 1), ("lerp_exp_avg", 2), ("mul_exp_avg_sq", 1), ("addcmul_exp_avg_sq", 2),
                ("sqrt", 1), ("div_bias_correction", 1), ("add_eps", 1), ("addcdiv_params", 3)]

KERNELS = {"rmsnorm": (RMSNORM_FORWARD, RMSNORM_BACKWARD), "rotary": (ROTARY_FORWARD, ROTARY_BACKWARD),
           "swiglu": (SWIGLU_FORWARD, SWIGLU_BACKWARD)}


def role(op: Op) -> str | None:
    """Which eager decomposition applies: RMSNorm (a norm at 4 flops per element, the config
    extractor's RMSNorm; LayerNorm is 6), the rotary op, the gated MLP's activation-multiply."""
    if op.kind == "norm" and op.dims.flops_per_element == 4:
        return "rmsnorm"
    leaf = op.name.rsplit(".", 1)[-1]
    if op.kind == "elementwise" and leaf == "rotary":
        return "rotary"
    if op.kind == "elementwise" and leaf == "act_mul" and op.dims.inputs == 2:
        return "swiglu"
    return None


def kernel_bytes(table: list[tuple], bits: int) -> tuple[float, float]:
    """(bytes read, bytes written) per element of a kernel table at operand width `bits`."""
    width = {BF: bits / 8.0, FP: 4.0}
    return (sum(width[w_in] * reads for _, w_in, reads, _ in table),
            sum(width[w_out] for _, _, _, w_out in table))


def _kernels(op: Op, table: list[tuple], *, phase: str, repeat: int, prefix: str, last_name: str | None,
             depends_on: list[str] | None) -> list[dict]:
    bits = op.precision.activations
    width = {BF: bits, FP: 32}
    out, prev = [], depends_on
    for i, (label, w_in, reads, w_out) in enumerate(table):
        name = last_name if (last_name and i == len(table) - 1) else f"{prefix}{op.name}.eager.{label}"
        d = {"name": name, "kind": "elementwise", "phase": phase, "repeat": repeat,
             "precision": {"activations": width[w_in], "weights": width[w_in], "outputs": width[w_out]},
             "dims": {"elements": op.dims.elements, "inputs": reads, "flops_per_element": 1}}
        if op.layer:
            d["layer"] = op.layer
        if op.skip_probability:
            d["skip_probability"] = op.skip_probability
        if prev:
            d["depends_on"] = list(prev)
        out.append(d)
        prev = [name]
    return out


def eager_forward(op: Op, *, phase: str, repeat: int, prefix: str = "", depends_on: list[str] | None = None
                  ) -> list[dict] | None:
    """The eager forward kernels replacing `op` (the last one keeps the op's name, so ops that
    depend on it still do); None when `op` has no eager decomposition."""
    r = role(op)
    if r is None:
        return None
    return _kernels(op, KERNELS[r][0], phase=phase, repeat=repeat, prefix=prefix,
                    last_name=None if prefix else op.name, depends_on=depends_on)


def eager_backward(op: Op, *, repeat: int) -> list[dict] | None:
    """The autograd kernels of `op`'s eager forward, in execution order; None when none apply."""
    r = role(op)
    if r is None:
        return None
    return _kernels(op, KERNELS[r][1], phase="backward", repeat=repeat, prefix="", last_name=None, depends_on=None)


def foreach_adam_ops(params: int, *, decoupled_decay: bool, master_weights: bool, param_bits: int,
                     name: str) -> list[dict]:
    """The optimizer step as torch.optim's foreach Adam/AdamW passes (fp32), plus the gradient cast
    up and the working copy cast down under mixed precision."""
    def op(label, reads, in_bits=32, out_bits=32):
        return {"name": f"optimizer.{name}.foreach.{label}", "kind": "elementwise", "phase": "optimizer",
                "precision": {"activations": in_bits, "weights": in_bits, "outputs": out_bits},
                "dims": {"elements": params, "inputs": reads, "flops_per_element": 1}}
    casts = master_weights and param_bits != 32
    passes = [op(label, reads) for label, reads in FOREACH_ADAM if decoupled_decay or label != "weight_decay"]
    if casts:
        passes.insert(0, op("grad_to_fp32", 1, param_bits, 32))
        passes.append(op("master_to_working_copy", 1, 32, param_bits))
    return passes


__all__ = ["role", "eager_forward", "eager_backward", "kernel_bytes", "foreach_adam_ops", "KERNELS",
           "FOREACH_ADAM"]
