"""A training recipe: how a step is run (micro-batches, recomputation, optimizer) and what is
sparse in each pass (transposable masks, gradient sparsity, masked weight gradients, periodic
dense-gradient steps of dynamic sparse training).

The forward pass's sparsity is the forward trace's own (weights N:M, activations, MoE routing);
the recipe says how it carries over to the two backward GEMMs of every forward GEMM.
"""

from __future__ import annotations

from dataclasses import dataclass

from simulator.errors import SparsimInputError

RECOMPUTE_MODES = ("none", "selective", "full")
OPTIMIZERS = ("adamw", "adam", "sgd_momentum", "sgd")
VECTOR_KERNELS = ("fused", "eager")
# optimizer state per parameter in moments (fp32 each): Adam/AdamW m and v; SGD with momentum one buffer
MOMENTS = {"adamw": 2, "adam": 2, "sgd_momentum": 1, "sgd": 0}


@dataclass(frozen=True)
class TrainingRecipe:
    """How one training step runs and which sparsity each pass can use.

    micro_batches: gradient-accumulation steps per optimizer step (forward + backward run that often).
    recompute: none (store everything, attention probabilities included), selective (attention core
      recomputed in backward, as FlashAttention does), full (each block's forward rerun in backward).
    transposable: the weight mask is N:M along both axes (SAT's bidirectional mask), so the
      backward-data GEMM dY W^T can use it; otherwise W^T is only unstructured-sparse there.
    grad_density: density of the output gradients dY (gradient sparsity), None = dense.
    masked_weight_grad: compute dW only where the mask keeps weights (an output-sparse GEMM).
    update_every: dynamic sparse training: every this many steps a dense-gradient step (dense dW)
      and a mask update (RigL-style drop/grow over all weights); None = static mask.
    sparse_state: keep optimizer state and gradients only for kept weights (the sharded sparse
      variant); default keeps them dense (SR-STE-style training updates the dense weights).
    master_weights: fp32 master copy of the weights (mixed precision).
    vector_kernels: fused (one memory pass per norm / rotary / activation op: torch.compile, fused
      kernels) or eager (PyTorch eager: the reference Llama code's kernels one by one with fp32
      intermediates, and their autograd kernels; `simulator.training.eager`).
    """
    micro_batches: int = 1
    recompute: str = "selective"
    optimizer: str = "adamw"
    transposable: bool = False
    grad_density: float | None = None
    masked_weight_grad: bool = False
    update_every: int | None = None
    sparse_state: bool = False
    master_weights: bool = True
    vector_kernels: str = "fused"

    def check(self) -> "TrainingRecipe":
        """Raise one clear error for a recipe that cannot run; return self."""
        if isinstance(self.micro_batches, bool) or not isinstance(self.micro_batches, int) or self.micro_batches < 1:
            raise SparsimInputError(f"micro-batches must be a positive integer (got {self.micro_batches!r})",
                                    field="--micro-batches", hint="the gradient-accumulation steps per optimizer "
                                                                  "step, e.g. 1 or 8")
        if self.recompute not in RECOMPUTE_MODES:
            raise SparsimInputError(f"unknown recompute mode '{self.recompute}'", field="--recompute",
                                    hint="one of " + ", ".join(RECOMPUTE_MODES))
        if self.optimizer not in OPTIMIZERS:
            raise SparsimInputError(f"unknown optimizer '{self.optimizer}'", field="--optimizer",
                                    hint="one of " + ", ".join(OPTIMIZERS))
        if self.grad_density is not None and not 0.0 < self.grad_density <= 1.0:
            raise SparsimInputError(f"gradient density {self.grad_density} must be in (0, 1]", field="--grad-density",
                                    hint="the fraction of nonzero output gradients, e.g. 0.5")
        if self.update_every is not None and (isinstance(self.update_every, bool) or
                                              not isinstance(self.update_every, int) or self.update_every < 1):
            raise SparsimInputError(f"update-every must be a positive integer (got {self.update_every!r})",
                                    field="--update-every", hint="steps between mask updates, e.g. 100")
        if self.vector_kernels not in VECTOR_KERNELS:
            raise SparsimInputError(f"unknown vector-kernel mode '{self.vector_kernels}'", field="--vector-kernels",
                                    hint="auto, eager (PyTorch eager) or fused (torch.compile / fused kernels)")
        return self

    @property
    def moments(self) -> int:
        return MOMENTS[self.optimizer]


__all__ = ["TrainingRecipe", "RECOMPUTE_MODES", "OPTIMIZERS", "MOMENTS", "VECTOR_KERNELS"]
