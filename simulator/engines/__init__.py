"""Compute engines, one module per kind, registered by one line in `ENGINE_KINDS`.

The contract is `simulator.engines.base.Engine`. To add an engine:

1. write `simulator/engines/<kind>.py` with
   - `ComputeSpec(ComputeSpecBase)`: the pydantic model of its `compute:` block, with
     `kind: Literal["<kind>"] = "<kind>"` and a `peak_macs_per_cycle` property (override
     `datapath_precision` when the datapath has a fixed operand precision);
   - `estimate(op, arch) -> OpCost`: a pure function of one op and the arch (cost of one
     execution); use `simulator.engines.vector.vector_op_cost` for `op.is_vector` ops and
     `simulator.engines.array` for a PE array;
   - optionally any hook `Engine` lists (`check_arch`, `compute_area_mm2`, `resources_report`,
     `memory_bound`, `offchip_bytes_per_cycle`, `energy_components`); a missing one takes the
     documented default (declare `energy_components` when `estimate` sets `index_selects` or
     `extra_energy_pj`: sweeps name their metrics from it, tests/test_totals_keys.py checks it);
2. add `"<kind>": "simulator.engines.<kind>"` to `ENGINE_KINDS` below (or call
   `register_engine(kind, module_name)` at run time, e.g. from a plugin or a test).

Nothing else changes: arch loading, `simulate`, area, sweeps and the system model reach an
engine only through `load_engine(kind)`. A registry line also adds the block to the generated
spec docs: run `python -m simulator.docs_gen` (tests/test_docs_gen.py checks they are current).
tests/test_engine_contract.py registers a toy engine this way.
"""

from __future__ import annotations

from functools import lru_cache

from simulator.engines.base import ComputeSpecBase, Engine, ModuleEngine

ENGINE_KINDS: dict[str, str] = {
    "systolic": "simulator.engines.systolic",
    "nm_tensor_core": "simulator.engines.nm_tensor_core",
    "dsp_chain": "simulator.engines.dsp_chain",
    "gpu": "simulator.engines.gpu",
}


@lru_cache(maxsize=None)
def _load(kind: str, module_name: str) -> ModuleEngine:
    return ModuleEngine(kind, module_name)


def load_engine(kind: str) -> Engine:
    """The registered engine of `kind` (KeyError for an unknown kind; arch loading reports those)."""
    return _load(kind, ENGINE_KINDS[kind])


def register_engine(kind: str, module_name: str) -> None:
    """Register (or replace) the engine module for `kind` in this process."""
    ENGINE_KINDS[kind] = module_name


__all__ = ["ENGINE_KINDS", "ComputeSpecBase", "Engine", "load_engine", "register_engine"]
