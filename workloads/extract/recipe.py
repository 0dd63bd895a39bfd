"""Sparsity recipes as users type them: `--weights 2:4|0.5|block:16x16:0.25`, `--activations D`, `--kv D`.

A recipe says what sparsity each *kind* of operand gets when a trace is built from a config
(where no tensors exist to measure). It is parsed here once, into `simulator.trace.Sparsity`
values, so the CLI and the Python API reject the same mistakes with the same message.

Conventions (stated because they are easy to get backwards):
- a bare number is a **density**, the fraction of values kept: `--weights 0.3` keeps 30%
  (70% pruned); `1` or `dense` means no sparsity;
- `N:M` keeps N nonzeros in every group of M consecutive values along the reduction axis
  (2:4, 1:4, 2:8, ...);
- `block:RxC:D` keeps a fraction D of R x C blocks (e.g. `block:16x16:0.25`).
"""

from __future__ import annotations

import re

from simulator.errors import SparsimInputError
from simulator.sparsity import split_nm
from simulator.trace import Sparsity

_BLOCK = re.compile(r"^\s*block\s*:\s*(\d+)\s*x\s*(\d+)\s*:\s*([0-9.eE+-]+)\s*$")

WEIGHT_HINT = "use N:M (e.g. 2:4), a density in (0, 1] (e.g. 0.5 keeps half), or block:RxC:D (e.g. block:16x16:0.25)"


def _density(value, field: str) -> float:
    try:
        d = float(value)
    except (TypeError, ValueError):
        raise SparsimInputError(f"'{value}' is not a density", field=field,
                                hint="give the fraction of values kept, a number in (0, 1]") from None
    if not 0.0 < d <= 1.0:
        raise SparsimInputError(f"density {d:g} is outside (0, 1]", field=field,
                                hint="a density is the fraction kept: 0.3 means 70% of the values are zero")
    return d


def parse_weights(spec: str | float | Sparsity | None, field: str = "--weights") -> Sparsity | None:
    """A weight recipe -> Sparsity, or None for dense."""
    if spec is None or isinstance(spec, Sparsity):
        return None if spec is not None and spec.kind == "dense" else spec
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        d = _density(spec, field)
        return None if d == 1.0 else Sparsity(kind="unstructured", density=d)
    text = str(spec).strip().lower()
    if text in ("", "dense", "none"):
        return None
    if nm := split_nm(text):
        n, mm = nm
        if not 1 <= n <= mm:
            raise SparsimInputError(f"N:M pattern {n}:{mm} needs 1 <= N <= M", field=field, hint=WEIGHT_HINT)
        return None if n == mm else Sparsity(kind="nm", n=n, m=mm)
    if m := _BLOCK.match(text):
        rows, cols = int(m.group(1)), int(m.group(2))
        if rows < 1 or cols < 1:
            raise SparsimInputError(f"block shape {rows}x{cols} needs both sides >= 1", field=field, hint=WEIGHT_HINT)
        d = _density(m.group(3), field)
        return None if d == 1.0 else Sparsity(kind="block", block=(rows, cols), density=d)
    try:
        float(text)
    except ValueError:
        raise SparsimInputError(f"cannot read the sparsity recipe '{spec}'", field=field, hint=WEIGHT_HINT) from None
    return parse_weights(float(text), field)


def parse_density(spec: str | float | Sparsity | None, field: str) -> Sparsity | None:
    """An activation or KV recipe (a density, or any weight-style recipe) -> Sparsity, or None for dense."""
    return parse_weights(spec, field)


def parse_block_density(spec: str | float | None, field: str = "--attention",
                        default_block: tuple[int, int] = (64, 64)) -> Sparsity | None:
    """A block-sparse attention recipe: a density (block `default_block`) or `block:RxC:D`."""
    if spec is None:
        return None
    if isinstance(spec, str) and spec.strip().lower().startswith("block"):
        return parse_weights(spec, field)
    d = _density(spec, field)
    return None if d == 1.0 else Sparsity(kind="block", block=default_block, density=d)


__all__ = ["parse_weights", "parse_density", "parse_block_density"]
