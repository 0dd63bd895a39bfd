"""The backward pass of each forward op, as trace ops (phase `backward`).

For a GEMM `Y = X W` ((M x K) @ (K x N)):
- backward-data `dX = dY W^T`: (M x N) @ (N x K), A operand dY, B operand W^T;
- backward-weight `dW = X^T dY`: (K x M) @ (M x N), A operand X^T, B operand dY,
so each has the forward's MACs and backward = 2 x forward. Convolutions use the same two
forms of their im2col lowering: backward-data is the transposed convolution
(output pixels x (K/g) @ (K/g) x (C/g)RS, then col2im) and backward-weight the
weight-gradient GEMM ((C/g)RS x NPQ @ NPQ x K/g); both are emitted as `gemm` ops of those
shapes. A routed-expert op has a routed backward-data op and one weight-gradient GEMM per
distinct token count: experts that received no tokens get no gradient.

Attention follows the FlashAttention-2 backward (Dao 2023, Algorithm 2): with the
probabilities P recomputed from Q, K and the saved log-sum-exp (`recompute_attention`), it runs
S = Q K^T again, then dV = P^T dO, dP = dO V^T, dS = P o (dP - rowsum(dO o O)), dQ = dS K and
dK = dS^T Q: four GEMMs of the forward's size each (backward = 2 x the two forward GEMMs) plus
the recomputed one. dV and dK reduce over the queries; they are written as attention ops with
q_len and kv_len swapped, which keeps their MACs exact (under GQA the group's query heads
are stacked along M instead of the reduction: same MACs, approximate tiling).

Sparsity per pass (what the hardware is offered; the engine decides what it can use, as for
inference, and says so in `notes`):
- W^T keeps an N:M mask only when the mask is transposable (`recipe.transposable`); a mask
  that is N:M along K only is, seen along N, unstructured at the same density (modelled so);
- X^T of backward-weight reduces over tokens, so any activation structure along features
  becomes unstructured at the same density;
- dY takes `recipe.grad_density` (gradient sparsity); a masked dW is output sparsity.
Vector ops: norm and softmax backward read the saved tensor and dY; a nonlinear elementwise
op reads its saved inputs and dY; a linear one (residual add, copy) only dY; an embedding
gather (0 flops) becomes its scatter-add. Approximation: these per-element counts are
estimates, not measured kernels.
"""

from __future__ import annotations

from simulator.trace import Op, Sparsity
from simulator.training.recipe import TrainingRecipe

DENSE = Sparsity()


def transposed_weights(sp: Sparsity, transposable: bool) -> tuple[Sparsity, str | None]:
    """The sparsity of W^T (backward-data's B operand) and a note when the structure is lost."""
    if sp.kind == "dense":
        return DENSE, None
    if sp.kind == "block":
        return Sparsity(kind="block", block=(sp.block[1], sp.block[0]), density=sp.effective_density), None
    if sp.kind == "nm" and transposable:
        return Sparsity(kind="nm", n=sp.n, m=sp.m), None
    density = sp.effective_density
    if sp.kind == "nm":
        return (Sparsity(kind="unstructured", density=density),
                f"backward-data: W^T of a non-transposable {sp.label} mask is not {sp.label} "
                f"(unstructured, density {density:.3g})")
    return Sparsity(kind="unstructured", density=density), None


def over_tokens(sp: Sparsity) -> Sparsity:
    """X^T reduces over tokens: feature-wise structure is lost, the density stays."""
    if sp.kind == "dense" or sp.effective_density >= 1.0:
        return DENSE
    return Sparsity(kind="unstructured", density=sp.effective_density)


def grad_sparsity(recipe: TrainingRecipe) -> Sparsity:
    if recipe.grad_density is None or recipe.grad_density >= 1.0:
        return DENSE
    return Sparsity(kind="unstructured", density=recipe.grad_density)


def _sparsity(**roles: Sparsity) -> dict:
    return {k: v for k, v in roles.items() if v.kind != "dense"}


class _Emitter:
    """Backward op dicts that inherit the forward op's repeat, skipping, layer and precision."""

    def __init__(self, op: Op):
        self.op, self.ops, self.notes = op, [], {}

    def add(self, suffix: str, kind: str, dims: dict, sparsity: dict | None = None, note: str | None = None,
            skip: float | None = None) -> str:
        op = self.op
        name = f"{op.name}.{suffix}"
        d = {"name": name, "kind": kind, "dims": dims, "phase": "backward", "repeat": op.repeat,
             "precision": op.precision.model_dump()}
        prob = op.skip_probability if skip is None else skip
        if prob:
            d["skip_probability"] = prob
        if op.layer:
            d["layer"] = op.layer
        if sparsity:
            d["sparsity"] = sparsity
        self.ops.append(d)
        if note:
            self.notes[name] = note
        return name


def _gemm(M, N, K, count=1) -> dict:
    return {"M": int(M), "N": int(N), "K": int(K), "batch": int(count)}


def _weight_grad_variants(e: _Emitter, recipe: TrainingRecipe, mask: Sparsity, make) -> None:
    """Backward-weight op(s): masked on ordinary steps and dense every `update_every` steps
    (dynamic sparse training), as expected executions via skip probabilities."""
    masked = (recipe.masked_weight_grad or recipe.update_every is not None) and mask.kind != "dense"
    k = recipe.update_every
    if not masked or k == 1:
        make("bwd_weight", {}, "dense dW every step (update-every 1)" if masked else None)
        return
    out_mask = _sparsity(outputs=Sparsity(kind="unstructured", density=mask.effective_density))
    why = ("masked dW: only the kept weights' gradients are needed (output sparsity, which no engine here "
           "skips: the GEMM runs in full)")
    if k is None:
        make("bwd_weight", out_mask, why)
        return
    run = 1.0 - e.op.skip_probability
    make("bwd_weight", out_mask, why, 1.0 - run * (1.0 - 1.0 / k))
    make("bwd_weight_dense", {}, f"dense dW for the mask update, one step in {k}", 1.0 - run / k)


def _gemm_like(e: _Emitter, recipe: TrainingRecipe, shapes: list, needs_input_grad: bool) -> None:
    op, sp = e.op, e.op.sparsity
    dy = grad_sparsity(recipe)
    w_t, note = transposed_weights(sp.weights, recipe.transposable)
    lowered = " (transposed conv, im2col-lowered)" if op.kind == "conv2d" else ""
    if needs_input_grad:
        if op.kind == "moe_gemm":
            dims = {"tokens_per_expert": list(op.dims.tokens_per_expert), "N": op.dims.K, "K": op.dims.N}
            e.add("bwd_data", "moe_gemm", dims, _sparsity(activations=dy, weights=w_t), note)
        else:
            for i, g in enumerate(shapes):
                tag = "bwd_data" if len(shapes) == 1 else f"bwd_data.{i}"
                e.add(tag, "gemm", _gemm(g.M, g.K, g.N, g.count), _sparsity(activations=dy, weights=w_t),
                      (note + lowered) if note and lowered else note)
    x_t = over_tokens(sp.activations)
    for i, g in enumerate(shapes):
        tag = "" if len(shapes) == 1 else (f".t{g.M}" if op.kind == "moe_gemm" else f".{i}")

        def make(suffix, extra, why, skip=None, g=g, tag=tag):
            e.add(suffix + tag, "gemm", _gemm(g.K, g.N, g.M, g.count),
                  {**_sparsity(activations=x_t, weights=dy), **extra}, why, skip)

        _weight_grad_variants(e, recipe, sp.weights, make)


def _attention(e: _Emitter, recompute: bool) -> None:
    op = e.op
    d = op.dims.model_dump()
    swapped = {**d, "q_len": d["kv_len"], "kv_len": d["q_len"]}
    if op.kind == "attention_pv":
        p = op.sparsity.activations
        if recompute:
            e.add("recompute_qk", "attention_qk", d, _sparsity(outputs=p),
                  "FlashAttention-2 backward recomputes S = Q K^T (softmax fused, on chip)")
        p_t, _ = transposed_weights(p, True)
        e.add("bwd_dv", "attention_pv", swapped, _sparsity(activations=p_t))
        e.add("bwd_dp", "attention_qk", d, _sparsity(outputs=p))
    else:
        s = op.sparsity.outputs
        s_t, _ = transposed_weights(s, True)
        e.add("bwd_dq", "attention_pv", d, _sparsity(activations=s))
        e.add("bwd_dk", "attention_pv", swapped, _sparsity(activations=s_t))


def _vector(e: _Emitter) -> None:
    d = e.op.dims
    if e.op.kind in ("norm", "softmax"):
        e.add("bwd", e.op.kind, {"elements": d.elements, "inputs": 2, "flops_per_element": 2 * d.flops_per_element})
    elif d.flops_per_element == 0:
        e.add("bwd", "elementwise", {"elements": d.elements, "inputs": 1, "flops_per_element": 1},
              note="embedding backward: scatter-add of dY into the table")
    elif d.flops_per_element > 1:
        e.add("bwd", "elementwise", {"elements": d.elements, "inputs": d.inputs + 1,
                                     "flops_per_element": d.flops_per_element})
    else:
        e.add("bwd", "elementwise", {"elements": d.elements, "inputs": 1, "flops_per_element": 1})


def backward_ops(op: Op, recipe: TrainingRecipe, *, needs_input_grad: bool = True,
                 recompute_attention: bool = True) -> tuple[list[dict], dict[str, str]]:
    """The backward op dicts of one forward op (in execution order) and notes by op name."""
    e = _Emitter(op)
    if op.kind in ("attention_qk", "attention_pv"):
        _attention(e, recompute_attention)
    elif op.is_vector:
        _vector(e)
    else:
        _gemm_like(e, recipe, op.gemm_shapes(), needs_input_grad)
    return e.ops, e.notes


__all__ = ["backward_ops", "transposed_weights", "over_tokens", "grad_sparsity"]
