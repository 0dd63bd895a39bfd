"""Compute engines, one module per kind. Each module provides:

- `ComputeSpec`: the pydantic model of its `compute:` block (with `kind: Literal[...]`);
- `estimate(op, arch) -> OpCost`: a pure function of the op and the arch;
- optionally `check_arch(arch)`: cross-field checks that need the whole arch (raise SparsimInputError).

Adding a kind means writing one module and one line here.
"""

from __future__ import annotations

import importlib
from types import ModuleType

ENGINE_KINDS: dict[str, str] = {
    "systolic": "simulator.engines.systolic",
    "nm_tensor_core": "simulator.engines.nm_tensor_core",
    "dsp_chain": "simulator.engines.dsp_chain",
    "gpu": "simulator.engines.gpu",
}


def engine_module(kind: str) -> ModuleType:
    return importlib.import_module(ENGINE_KINDS[kind])
