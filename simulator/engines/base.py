"""The engine contract: what `simulator` asks of an engine module, and each hook's default.

An engine module must define `ComputeSpec` (a `ComputeSpecBase` subclass whose `kind` is a
`Literal` of its registry name, with a `peak_macs_per_cycle` property) and `estimate(op, arch)`.
The other hooks are optional; `load_engine` fills a missing one with the default documented on
`Engine`, so callers use `load_engine(kind).hook(...)` and never probe a module with getattr.

Why `Arch.compute` is typed `ComputeSpecBase` and not a pydantic union of the registered specs:
- the registry is open at run time (`register_engine` from a plugin or a test adds a kind after
  `simulator.spec` is imported); a union is fixed when the `Arch` class is built, so a
  registered kind would need the model rebuilt (and every module holding `Arch` to see it);
- a union means importing every engine module to load any arch; only the selected one is
  imported now (the other three cost ~55 ms more of imports on a simulate start-up of ~0.6 s);
- the registry lookup gives the one-line "unknown compute kind 'x' (did you mean ...)" error
  before pydantic runs; a union's tag error would have to be translated back into it.
`arch_from_dict` picks the concrete class from `kind` through the registry, so at run time
`arch.compute` is always that engine's `ComputeSpec`; code outside an engine uses only what
`ComputeSpecBase` declares, and an engine narrows it with `spec: ComputeSpec = arch.compute`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Callable, Protocol

from simulator.inputs import StrictSpec
from simulator.memory import offchip_bytes_per_cycle

if TYPE_CHECKING:  # the spec and trace modules import this one (Arch.compute is a ComputeSpecBase)
    from simulator.cost import OpCost
    from simulator.spec import Arch, DatapathPrecision
    from simulator.trace import Op, Trace


class ComputeSpecBase(StrictSpec):
    """The `compute:` block every engine's `ComputeSpec` extends: a `kind` (a Literal of the
    engine's registry name in the subclass), its peak MACs per cycle, its datapath precision and its board power limit."""
    kind: str

    @property
    def peak_macs_per_cycle(self) -> float:
        """Dense MACs the engine can issue per cycle (the denominator of utilisation)."""
        raise NotImplementedError(f"{type(self).__qualname__} must define peak_macs_per_cycle")

    @property
    def datapath_precision(self) -> DatapathPrecision | None:
        """Operand bits of a fixed datapath (ops are quantised to them), or None where the engine
        runs each op at the op's own precision (GPU)."""
        return None

    @property
    def board_tdp_w(self) -> float | None:
        """The power the board may draw (W), or None when the spec does not say (no TDP check)."""
        return None


class Engine(Protocol):
    """One compute engine. Required: `ComputeSpec`, `estimate`. Optional hooks, with the default
    `load_engine` supplies when a module leaves one out:

    - `check_arch(arch)`: cross-field checks needing the whole arch; raise SparsimInputError.
      Default: no check.
    - `compute_area_mm2(arch, pe_mm2)`: silicon area of the compute part. Default: 0.0.
    - `resources_report(arch)`: FPGA-style resource use, `{name: {"used", "available",
      "utilization"}}`. Default: {} (none).
    - `memory_bound(trace, arch)`: the whole-trace memory-bound limit (see dsp_chain). Default: {}.
    - `offchip_bytes_per_cycle(arch)`: achievable off-chip bytes per cycle (what a core pulls
      from a shared DRAM). Default: the off-chip level's peak `bytes_per_cycle`.
    - `energy_components(arch)`: names of the energy components the engine may add to the common
      ones (mac, gated_mac, each memory level's read/write, leakage): `index_select` when its
      `OpCost` counts index selects, and each `extra_energy_pj` key. Sweeps read it to know the
      metric names without simulating (`simulator.totals.totals_keys`). Default: () (none).
    """
    kind: str
    ComputeSpec: type[ComputeSpecBase]

    def estimate(self, op: Op, arch: Arch) -> OpCost: ...
    def check_arch(self, arch: Arch) -> None: ...
    def compute_area_mm2(self, arch: Arch, pe_mm2: float) -> float: ...
    def resources_report(self, arch: Arch) -> dict: ...
    def memory_bound(self, trace: Trace, arch: Arch) -> dict: ...
    def offchip_bytes_per_cycle(self, arch: Arch) -> float: ...
    def energy_components(self, arch: Arch) -> tuple[str, ...]: ...


def _no_check(arch: Arch) -> None:
    return None


def _no_area(arch: Arch, pe_mm2: float) -> float:
    return 0.0


def _no_resources(arch: Arch) -> dict:
    return {}


def _no_bound(trace: Trace, arch: Arch) -> dict:
    return {}


def _no_components(arch: Arch) -> tuple[str, ...]:
    return ()


DEFAULT_HOOKS: dict[str, Callable] = {
    "check_arch": _no_check, "compute_area_mm2": _no_area, "resources_report": _no_resources,
    "memory_bound": _no_bound, "offchip_bytes_per_cycle": offchip_bytes_per_cycle, "energy_components": _no_components,
}


class ModuleEngine:
    """An `Engine` read from a module: its required names, and each optional hook or its default."""

    def __init__(self, kind: str, module_name: str):
        module = importlib.import_module(module_name)
        missing = [name for name in ("ComputeSpec", "estimate") if not hasattr(module, name)]
        if missing:
            raise TypeError(f"engine module {module_name} (kind '{kind}') lacks {', '.join(missing)}")
        if not issubclass(module.ComputeSpec, ComputeSpecBase):
            raise TypeError(f"{module_name}.ComputeSpec must subclass simulator.engines.base.ComputeSpecBase")
        self.kind = kind
        self.module = module
        self.ComputeSpec: type[ComputeSpecBase] = module.ComputeSpec
        self.estimate: Callable[[Op, Arch], OpCost] = module.estimate
        for name, default in DEFAULT_HOOKS.items():
            setattr(self, name, getattr(module, name, default))

    def __repr__(self) -> str:
        return f"<engine {self.kind} from {self.module.__name__}>"
