"""Size limits checked before any work, so an extreme input is one clear error, not a huge allocation.

The engines keep per-fold arrays (one float per array fold of a GEMM) and per-row counts,
and the system model creates one SimPy process per core; a dimension of 10^15 or a million
cores would ask for terabytes or hours. Each limit below is far above any real workload
(the largest shipped case, Llama-3.1-8B attention at 32k tokens, needs 2^23 folds on the
VEGETA-like array, and the largest count in a shipped trace, softmax elements, is about 2^35) and is stated in the error that enforces it.
"""

from __future__ import annotations

from simulator.errors import SparsimInputError

MAX_DIM = 2 ** 40              # any one dimension, count or length in a trace (or an HF config)
MAX_GEMM_EXTENT = 2 ** 40      # M, N, K of a lowered GEMM (conv: batch x output pixels)
MAX_REPEAT = 2 ** 40           # identical instances of an op
MAX_FOLDS = 2 ** 24            # folds of one GEMM on an array (the per-fold model keeps several float arrays of them)
MAX_MAPPED_DIM = 2 ** 24       # one loop dim of a searched mapping (its balanced tile sizes are enumerated)
MAX_CORES = 4096               # cores in a system
MAX_GRID_POINTS = 10 ** 6      # points of a sweep's grid, counted before it is built


def check_limit(value: int, limit: int, what: str, *, field: str | None = None, path=None, fix: str = "") -> None:
    """Raise one located error when `value` exceeds `limit`."""
    if value > limit:
        raise SparsimInputError(f"{what} is {value:,}, over the limit of {limit:,}", path=path, field=field,
                                hint=fix or "sparsim does not model sizes this large; use smaller dimensions")


def int_fields(model, prefix: str = ""):
    """(dotted name, value) of every int held by a pydantic model's fields, lists included."""
    for name in type(model).model_fields:
        value = getattr(model, name)
        values = value if isinstance(value, (list, tuple)) else [value]
        for i, v in enumerate(values):
            if isinstance(v, int) and not isinstance(v, bool):
                yield (f"{prefix}{name}" + (f"[{i}]" if isinstance(value, (list, tuple)) else "")), v


def check_op_size(op) -> None:
    """Every dimension of `op` and of the GEMMs it lowers to within the limits (a ValueError for pydantic)."""
    for name, value in int_fields(op.dims, "dims."):
        if value > MAX_DIM:
            raise ValueError(f"{name} = {value:,} is over the limit of {MAX_DIM:,} per dimension")
    if op.repeat > MAX_REPEAT:
        raise ValueError(f"repeat = {op.repeat:,} is over the limit of {MAX_REPEAT:,}")
    for g in op.gemm_shapes():
        for axis in ("M", "N", "K", "count"):
            value = getattr(g, axis)
            if value > MAX_GEMM_EXTENT:
                raise ValueError(f"the op lowers to a GEMM with {axis} = {value:,}, over the limit of "
                                 f"{MAX_GEMM_EXTENT:,}; use smaller dimensions")


def check_folds(folds: int, rows: int, cols: int) -> None:
    """An array engine's fold count for one GEMM within MAX_FOLDS (before its per-fold arrays exist)."""
    if folds > MAX_FOLDS:
        raise SparsimInputError(f"one GEMM needs {folds:,} folds of the {rows}x{cols} array, over the limit of "
                                f"{MAX_FOLDS:,} that the per-fold model keeps", field="dims",
                                hint="use smaller dimensions or a larger array")


def check_mapped_nest(nest) -> None:
    """Every tiled dim of a loop nest within MAX_MAPPED_DIM before the mapping search enumerates its
    tile sizes (an array of that many floats per dim; the largest shipped GEMM dim is 2^17)."""
    for dim in ("G", "N", "K", "C", "P", "Q"):
        size = nest.size(dim)
        if size > MAX_MAPPED_DIM:
            raise SparsimInputError(f"loop dim {nest.name(dim)} of the op is {size:,}, over the limit of "
                                    f"{MAX_MAPPED_DIM:,} that the mapping search enumerates tiles for", field="dims",
                                    hint="use smaller dimensions, or compute.mapping.mode: fixed")
