"""A training step as one trace: forward, backward and optimizer ops (phases of the trace IR).

`training_trace(forward, recipe)` takes any forward trace (from `sparsim extract`, a file, or
hand-written) and adds, per `simulator.training.backward`, the backward ops of every forward op
in reverse order, then the optimizer step:

- gradient accumulation: forward and backward run `micro_batches` times (their `repeat` is
  multiplied), gradients are summed into the fp32/16-bit gradient buffer by a `grad_accumulate`
  op (micro_batches - 1 times), the optimizer runs once;
- recomputation: `none` stores the attention probabilities (no recompute); `selective` and
  `full` use the FlashAttention-2 backward (S and P recomputed); `full` also reruns each
  block's forward ops just before that block's backward (Chen et al. 2016 checkpointing of
  whole layers, as Megatron's full recompute does);
- optimizer (Adam/AdamW by default, Kingma & Ba 2015; Loshchilov & Hutter 2019): one fused
  elementwise pass over the parameters. Its traffic per parameter, with mixed precision
  (Micikevicius et al. 2018: fp32 master weights), reads the fp32 master and each fp32 moment
  and the gradient, and writes the master, the moments and the 16-bit working copy
  (`optimizer_bytes`). The trace carries it as two streams of that one pass: the fp32 state
  (master + moments, read and written) and gradient-in / working-weight-out;
- dynamic sparse training (`update_every` k): a `mask_update` over the masked weights one step
  in k (RigL, Evci et al. 2020: drop by magnitude, grow by dense-gradient magnitude), with the
  dense weight gradient of that step (see `backward`).

Approximation: ops run in one sequence per rank (no overlap between forward ops of different
micro-batches). Every GEMM gets both backward GEMMs; with `input_needs_grad=False` the first
op's backward-data GEMM is left out when nothing precedes it (its input is data, an image batch),
as autograd leaves it out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from simulator.errors import SparsimInputError
from simulator.trace import SCHEMA_VERSION, Op, Trace, trace_from_dict
from simulator.training.backward import backward_ops
from simulator.training.eager import eager_backward, eager_forward, foreach_adam_ops
from simulator.training.recipe import TrainingRecipe

PARAM_KINDS = ("gemm", "conv2d", "moe_gemm")
FP32_BYTES = 4


@dataclass
class TrainingTrace:
    """A training-step trace plus what the simulator needs that the ops do not say."""
    trace: Trace
    recipe: TrainingRecipe
    params: int                      # trainable parameters (GEMM weights + `extra_params`)
    kept_params: float               # parameters the weight masks keep (= params when dense)
    notes: dict[str, str] = field(default_factory=dict)   # op name -> what the training recipe changed
    tokens_per_micro_batch: int | None = None
    param_bits: int = 16


def op_params(op: Op) -> int:
    """Weight values of one instance of a GEMM-like op (every expert of a MoE op)."""
    d = op.dims
    if op.kind == "moe_gemm":
        return len(d.tokens_per_expert) * d.K * d.N
    if op.kind in PARAM_KINDS:
        return op.operand_elements()["weights"]
    return 0


def trace_params(forward: Trace) -> tuple[int, float]:
    """(parameters, kept parameters) of the GEMM-like ops of a forward trace, repeats included."""
    total = kept = 0.0
    for op in forward.ops:
        n = op_params(op) * op.repeat
        total += n
        kept += n * op.sparsity.weights.effective_density
    return int(total), kept


def optimizer_bytes(params: float, *, moments: int = 2, master_weights: bool = True, param_bits: int = 16,
                    grad_bits: int = 16) -> tuple[float, float]:
    """(bytes read, bytes written) by one optimizer step over `params` parameters.

    Adam/AdamW with mixed precision: read master (4) + m (4) + v (4) + gradient; write master,
    m, v and the working copy. Without a master copy the weights are read and written at
    their own precision and there is no working copy.
    """
    weight = FP32_BYTES if master_weights else param_bits / 8
    state = FP32_BYTES * moments + weight
    reads = params * (state + grad_bits / 8)
    writes = params * (state + (param_bits / 8 if master_weights else 0))
    return reads, writes


def _optimizer_ops(params: float, recipe: TrainingRecipe, param_bits: int) -> list[dict]:
    """The optimizer pass as two elementwise streams whose bytes sum to `optimizer_bytes` (fused);
    with eager kernels, Adam/AdamW as torch.optim's foreach passes (`eager.foreach_adam_ops`)."""
    n = int(round(params))
    if n < 1:
        return []
    opt = recipe.optimizer
    k = recipe.moments
    if recipe.vector_kernels == "eager" and opt in ("adam", "adamw"):
        return foreach_adam_ops(n, decoupled_decay=opt == "adamw", master_weights=recipe.master_weights,
                                param_bits=param_bits, name=opt)
    fp32 = {"activations": 32, "weights": 32, "outputs": 32}
    pb = {"activations": param_bits, "weights": param_bits, "outputs": param_bits}
    if recipe.master_weights:
        streams = [(f"optimizer.{opt}.fp32_state", (k + 1) * n, 1, fp32),     # master + moments, in place
                   (f"optimizer.{opt}.grad_to_weights", n, 1, pb)]             # gradient in, working copy out
    else:
        streams = [(f"optimizer.{opt}.weights_and_grads", n, 2, pb)]           # weights + gradient in, weights out
        if k:
            streams.insert(0, (f"optimizer.{opt}.moments", k * n, 1, fp32))
    flops = {"adamw": 12, "adam": 11, "sgd_momentum": 4, "sgd": 2}[opt]
    per = max(1, round(flops / len(streams)))
    return [{"name": name, "kind": "elementwise", "phase": "optimizer", "precision": prec,
             "dims": {"elements": elems, "inputs": inputs, "flops_per_element": per}}
            for name, elems, inputs, prec in streams]


def _copy(op: Op, *, phase: str, repeat: int, name: str | None = None, keep_deps: bool = True,
          dropped: set[str] = frozenset()) -> dict:
    d = op.model_dump(mode="json", exclude_defaults=True)
    d.update(name=name or op.name, phase=phase, repeat=repeat)
    if not keep_deps:
        d.pop("depends_on", None)
    elif d.get("depends_on"):
        d["depends_on"] = [n for n in d["depends_on"] if n not in dropped]
    return d


def fused_softmax(forward: Trace, recipe: TrainingRecipe) -> set[str]:
    """Softmax ops inside attention (just before an `attention_pv`) that a FlashAttention kernel
    keeps on chip: with recomputation (selective/full) they cost no memory pass forward or backward."""
    if recipe.recompute == "none":
        return set()
    ops = forward.ops
    return {op.name for i, op in enumerate(ops[:-1]) if op.kind == "softmax" and ops[i + 1].kind == "attention_pv"}


def _forward_ops(forward: Trace, eager: bool, G: int, fused: set[str]) -> list[dict]:
    """The forward ops, repeated per micro-batch; with eager vector kernels a fused vector op becomes
    the kernels PyTorch eager runs for it (`simulator.training.eager`)."""
    ops: list[dict] = []
    for op in forward.ops:
        if op.name in fused:
            continue
        base = _copy(op, phase="forward", repeat=op.repeat * G, dropped=fused)
        kernels = eager and eager_forward(op, phase="forward", repeat=op.repeat * G,
                                                                     depends_on=base.get("depends_on"))
        ops += kernels or [base]
    return ops


def _backward(forward: Trace, recipe: TrainingRecipe, G: int, notes: dict, input_needs_grad: bool) -> list[dict]:
    ops: list[dict] = []
    fused = fused_softmax(forward, recipe)
    eager = recipe.vector_kernels == "eager"
    first_mac = next((i for i, op in enumerate(forward.ops) if not op.is_vector), None)
    recomputed: set[str] = set()
    by_layer: dict[str, list[Op]] = {}
    for op in forward.ops:
        if op.layer:
            by_layer.setdefault(op.layer, []).append(op)
    for i in range(len(forward.ops) - 1, -1, -1):
        op = forward.ops[i]
        if op.name in fused:
            continue
        if recipe.recompute == "full" and op.layer and op.layer not in recomputed:
            recomputed.add(op.layer)
            for f in (f for f in by_layer[op.layer] if f.name not in fused):
                name = f"recompute.{f.name}"
                rerun = eager and eager_forward(f, phase="backward", repeat=f.repeat * G, prefix="recompute.")
                ops += rerun or [_copy(f, phase="backward", repeat=f.repeat * G, name=name, keep_deps=False)]
                notes[name] = "full recomputation: forward rerun before the block's backward"
        kernels = eager and eager_backward(op, repeat=op.repeat)
        if kernels:
            bwd, why = kernels, {}
        else:
            bwd, why = backward_ops(op, recipe, needs_input_grad=input_needs_grad or not (i == first_mac == 0),
                                    recompute_attention=recipe.recompute != "none")
        for b in bwd:
            b["repeat"] *= G
        ops += bwd
        notes.update(why)
    return ops


def training_trace(forward: Trace, recipe: TrainingRecipe | None = None, *, extra_params: int = 0,
                   param_bits: int | None = None, tokens_per_micro_batch: int | None = None,
                   name: str | None = None, backward: list[dict] | None = None,
                   input_needs_grad: bool = True) -> TrainingTrace:
    """One optimizer step of training on `forward` (one micro-batch's forward pass).

    `backward`: backward op dicts recorded from a real autograd run (phase `backward`), used
    instead of the derived ones; the recipe's per-pass sparsity then does not apply to them."""
    recipe = (recipe or TrainingRecipe()).check()
    done = next((op for op in forward.ops if op.phase in ("backward", "optimizer")), None)
    if done is not None:
        raise SparsimInputError(f"op '{done.name}' is already a {done.phase} op: this is a training trace",
                                field="ops", hint="give a forward trace, or run this one with sparsim simulate")
    G = recipe.micro_batches
    gemm_params, kept = trace_params(forward)
    params = gemm_params + int(extra_params)
    kept += int(extra_params)
    bits = param_bits or max((op.precision.weights for op in forward.ops if not op.is_vector), default=16)
    notes: dict[str, str] = {}
    fused = fused_softmax(forward, recipe)
    # a recorded backward ran the forward as traced: its kernels are not decomposed again
    ops = _forward_ops(forward, recipe.vector_kernels == "eager" and backward is None, G, fused)
    if backward is None:
        ops += _backward(forward, recipe, G, notes, input_needs_grad)
    else:
        ops += [{**b, "phase": "backward", "repeat": b.get("repeat", 1) * G} for b in backward]
    state_params = kept if recipe.sparse_state else params
    grad_prec = {"activations": bits, "weights": bits, "outputs": bits}
    if G > 1 and round(state_params) >= 1:
        ops.append({"name": "grad_accumulate", "kind": "elementwise", "phase": "backward", "repeat": G - 1,
                    "precision": grad_prec, "dims": {"elements": int(round(state_params)), "inputs": 2}})
    if recipe.update_every is not None:
        masked = sum(op_params(op) * op.repeat for op in forward.ops if op.sparsity.weights.kind != "dense")
        if masked:
            ops.append({"name": "mask_update", "kind": "elementwise", "phase": "optimizer",
                        "skip_probability": 1.0 - 1.0 / recipe.update_every, "precision": grad_prec,
                        "dims": {"elements": int(masked), "inputs": 2, "flops_per_element": 4}})
            notes["mask_update"] = (f"dynamic sparse training: drop/grow the masks one step in {recipe.update_every}")
    ops += _optimizer_ops(state_params, recipe, bits)
    desc = (f"training step of {forward.name}: {G} micro-batch(es), recompute {recipe.recompute}, "
            + ("attention softmax fused (FlashAttention-2), " if fused else "")
            + f"{recipe.vector_kernels} vector kernels, {recipe.optimizer}" + (", transposable masks" if recipe.transposable else "")
            + (f", gradient density {recipe.grad_density:g}" if recipe.grad_density else "")
            + (f", mask update every {recipe.update_every} steps" if recipe.update_every else ""))
    # validated as a trace file is (one located line), e.g. a repeat x micro-batches over the size limit
    trace = trace_from_dict({"schema_version": SCHEMA_VERSION, "name": name or f"{forward.name}_train",
                             "description": desc, "source": f"simulator.training from {forward.source or forward.name}",
                             "ops": ops})
    return TrainingTrace(trace=trace, recipe=recipe, params=params, kept_params=kept, notes=notes,
                         tokens_per_micro_batch=tokens_per_micro_batch, param_bits=bits)


__all__ = ["TrainingTrace", "training_trace", "optimizer_bytes", "trace_params", "op_params"]
