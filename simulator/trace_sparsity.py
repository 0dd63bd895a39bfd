"""Per-operand sparsity of a trace op: the pattern (dense, N:M, unstructured, block), its density and
optional statistics measured on the real tensor; and the operands' stored precision.

Split from `simulator.trace` (which re-exports every name) so the workload IR module holds the ops.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, field_validator, model_validator

from simulator.inputs import StrictSpec


def _is_number(c) -> bool:
    try:
        float(c)
        return True
    except (TypeError, ValueError):
        return False


def _is_whole(c) -> bool:
    return float(c).is_integer()


class MeasuredStats(StrictSpec):
    """Statistics measured on a real tensor, so engines need not assume uniform zeros.

    `group_histograms[m][j]` counts the M-groups (along K) holding exactly j nonzeros (whole
    counts, or fractions of the groups that sum to 1).
    `row_nnz` holds nonzeros along K of each unit the array tiles: per output column of a
    weight matrix (N index), per row of an activation matrix (M index); either one count per
    unit (exact per-fold maxima) or a sample of them (`row_nnz_is_sample`: i.i.d. draws).
    `block_density` maps a block shape such as "32x32" to the fraction of nonzero blocks.
    Engines name the statistics they used in `OpCost.model` (see `simulator.sparsity`).
    """
    density: float = Field(gt=0.0, le=1.0)
    group_histograms: dict[int, list[int | float]] = Field(default_factory=dict)
    row_nnz: list[int] | None = None
    row_nnz_is_sample: bool = False
    block_density: dict[str, float] = Field(default_factory=dict)

    @field_validator("group_histograms", mode="before")
    @classmethod
    def _whole_counts_stay_ints(cls, value):
        # Counts (numpy or float-typed) stay ints in saved traces; only true fractions are floats.
        if not isinstance(value, dict):
            return value
        out = {}
        for m, hist in value.items():
            if isinstance(hist, (list, tuple)) or hasattr(hist, "tolist"):
                hist = hist.tolist() if hasattr(hist, "tolist") else list(hist)
                for c in hist:
                    if isinstance(c, bool) or not _is_number(c) or not math.isfinite(float(c)):
                        raise ValueError(f"histogram for groups of {m} holds {c!r}, not a group count")
                hist = [int(float(c)) if _is_whole(c) else float(c) for c in hist]
            out[m] = hist
        return out

    @model_validator(mode="after")
    def _check(self):
        for m, hist in self.group_histograms.items():
            if m < 1:
                raise ValueError(f"group size {m} must be >= 1")
            if len(hist) != m + 1:
                raise ValueError(f"histogram for groups of {m} needs {m + 1} bins (0..{m} nonzeros), got {len(hist)}")
            if any(c < 0 for c in hist) or sum(hist) == 0:
                raise ValueError(f"histogram for groups of {m} must hold non-negative counts that do not sum to 0")
            total = sum(hist)
            if any(not float(c).is_integer() for c in hist) and abs(total - 1.0) > 1e-6:
                raise ValueError(f"histogram for groups of {m} holds fractions that sum to {total:.6g}, not 1: "
                                 "the histogram does not sum (give whole group counts, or fractions summing to 1)")
            implied = sum(j * c for j, c in enumerate(hist)) / (m * total)
            if abs(implied - self.density) > 0.02:
                raise ValueError(f"histogram for groups of {m} implies density {implied:.3f}, "
                                 f"but density is {self.density:.3f}: the histogram does not sum to the tensor")
        if self.row_nnz is not None and any(c < 0 for c in self.row_nnz):
            raise ValueError("row_nnz counts must be >= 0")
        for key, value in self.block_density.items():
            parts = str(key).lower().split("x")
            if len(parts) != 2 or not all(x.isdigit() and int(x) >= 1 for x in parts):
                raise ValueError(f"block_density key '{key}' is not a block shape such as '32x32'")
            if not 0.0 < value <= 1.0:
                raise ValueError(f"block_density['{key}'] = {value} must be in (0, 1] (the fraction of nonzero blocks)")
        return self


class Sparsity(StrictSpec):
    """How an operand's zeros are laid out: dense, N:M, unstructured (density) or block."""
    kind: Literal["dense", "nm", "unstructured", "block"] = "dense"
    n: int | None = Field(default=None, ge=0)
    m: int | None = Field(default=None, ge=1)
    density: float | None = Field(default=None, gt=0.0, le=1.0)
    block: tuple[int, int] | None = None
    measured: MeasuredStats | None = None

    @model_validator(mode="after")
    def _check(self):
        if self.kind == "nm":
            if self.n is None or self.m is None:
                raise ValueError("nm sparsity needs both n and m (e.g. n: 2, m: 4)")
            if self.n > self.m:
                raise ValueError(f"N:M sparsity needs n <= m, got {self.n}:{self.m}")
            if self.n == 0:
                raise ValueError("N:M sparsity needs n >= 1 (0 keeps no values)")
        elif self.n is not None or self.m is not None:
            raise ValueError(f"n and m belong to kind 'nm', not '{self.kind}'")
        if self.kind in ("unstructured", "block") and self.density is None and self.measured is None:
            raise ValueError(f"{self.kind} sparsity needs a density in (0, 1]")
        if self.kind == "block":
            if self.block is None or min(self.block) < 1:
                raise ValueError("block sparsity needs block: [rows, cols] with both >= 1")
        elif self.block is not None:
            raise ValueError(f"block belongs to kind 'block', not '{self.kind}'")
        if self.kind == "dense" and self.density not in (None, 1.0):
            raise ValueError("a dense operand has density 1; use kind: unstructured for zeros")
        if self.measured is not None:
            got = self.measured.density
            if self.kind == "unstructured" and self.density is not None and abs(self.density - got) > 0.02:
                raise ValueError(f"density {self.density:.3g} disagrees with measured.density {got:.3g}; "
                                 "give one density, or make them agree")
            if self.kind == "nm":
                if got > self.n / self.m + 0.02:
                    raise ValueError(f"measured.density {got:.3g} is above {self.n}:{self.m}'s {self.n / self.m:.3g}: "
                                     "the tensor is not N:M-sparse")
                for size, hist in self.measured.group_histograms.items():
                    if size % self.m == 0 and any(c > 0 for c in hist[self.n * (size // self.m) + 1:]):
                        raise ValueError(f"measured histogram for groups of {size} has groups with more than "
                                         f"{self.n * (size // self.m)} nonzeros, which {self.n}:{self.m} forbids")
        return self

    @property
    def effective_density(self) -> float:
        """Fraction of values that are nonzero (what a perfect skipping engine would keep)."""
        if self.measured is not None:
            return self.measured.density
        if self.kind == "nm":
            return self.n / self.m
        if self.kind in ("unstructured", "block"):
            return float(self.density)
        return 1.0

    @property
    def label(self) -> str:
        if self.kind == "nm":
            return f"{self.n}:{self.m}"
        if self.kind == "dense":
            return "dense"
        return f"{self.kind}:{self.effective_density:.2f}"


DENSE = Sparsity()


class Precision(StrictSpec):
    """Bits per value of each operand as the model stores it."""
    activations: int = Field(default=8, ge=1, le=64)
    weights: int = Field(default=8, ge=1, le=64)
    outputs: int = Field(default=8, ge=1, le=64)


class OperandSparsity(StrictSpec):
    activations: Sparsity = DENSE
    weights: Sparsity = DENSE
    outputs: Sparsity = DENSE
