"""sparsim: a cycle-approximate simulator for sparse neural-network accelerators.

    from simulator import load_arch, load_trace, simulate
    result = simulate(load_trace("resnet18"), load_arch("edge_npu_32x32_os"))
    result.to_pandas(); result.totals

The public names load on first use, so `import simulator` (and the CLI's start-up) stays cheap.
"""

from __future__ import annotations

import importlib
import sys
import types

__version__ = "0.1.0"

_HOME = {"SparsimInputError": "simulator.errors", "Arch": "simulator.spec", "arch_from_dict": "simulator.spec",
         "load_arch": "simulator.spec", "Op": "simulator.trace", "Trace": "simulator.trace",
         "load_trace": "simulator.trace", "save_trace": "simulator.trace", "Result": "simulator.simulate"}

__all__ = [*_HOME, "simulate", "__version__"]


def __getattr__(name: str):
    if name in _HOME:
        value = getattr(importlib.import_module(_HOME[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'simulator' has no attribute '{name}'")


class _Package(types.ModuleType):
    """`simulator.simulate` is the function, even after the submodule of that name is imported
    (the import system would otherwise bind the submodule over it)."""

    @property
    def simulate(self):
        return importlib.import_module("simulator.simulate").__dict__["simulate"]

    @simulate.setter
    def simulate(self, _module) -> None:
        pass


sys.modules[__name__].__class__ = _Package
