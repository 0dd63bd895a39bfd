"""The engine contract (simulator.engines.base): a toy engine registered in-process, following only
the docstrings of simulator.engines, loads from YAML, simulates an op and gets every hook's default."""

import math
from typing import Literal

import pytest
from pydantic import Field

from simulator.cost import OpCost
from simulator.engines import ENGINE_KINDS, load_engine, register_engine
from simulator.engines.base import ComputeSpecBase
from simulator.engines.vector import vector_op_cost
from simulator.errors import SparsimInputError
from simulator.simulate import simulate
from simulator.spec import arch_from_dict
from simulator.trace import Op, Trace


# ---------------------------------------------------------------- the toy engine (this module is it)

class ComputeSpec(ComputeSpecBase):
    kind: Literal["toy"] = "toy"
    lanes: int = Field(ge=1, description="MACs per cycle")

    @property
    def peak_macs_per_cycle(self) -> float:
        return float(self.lanes)


def estimate(op: Op, arch) -> OpCost:
    spec: ComputeSpec = arch.compute
    if op.is_vector:
        return vector_op_cost(op, arch, spec.lanes, 8, "toy")
    macs = float(op.dense_macs)
    return OpCost(engine="toy", model="toy: one MAC per lane per cycle", compute_cycles=math.ceil(macs / spec.lanes),
                  stall_cycles=0.0, macs=macs, dense_macs=macs, peak_macs_per_cycle=spec.peak_macs_per_cycle,
                  notes=("toy engine",))


# ---------------------------------------------------------------- tests

@pytest.fixture
def toy():
    register_engine("toy", __name__)
    yield
    ENGINE_KINDS.pop("toy", None)


def toy_arch(lanes=4):
    return arch_from_dict({"clock_mhz": 1000, "compute": {"kind": "toy", "lanes": lanes},
                           "memory": {"dram": {"kind": "dram", "bandwidth_bytes_per_cycle": 16}}})


def test_a_registered_toy_engine_simulates_an_op(toy):
    arch = toy_arch(lanes=4)
    trace = Trace(ops=[Op(name="g", kind="gemm", dims={"M": 3, "N": 5, "K": 7}, repeat=2)])
    result = simulate(trace, arch)
    row = result.rows[0]
    assert row["engine"] == "toy" and row["notes"] == "toy engine"
    assert row["cycles"] == 2 * math.ceil(3 * 5 * 7 / 4)            # 27 cycles per execution, 2 executions
    assert result.totals["utilization"] == pytest.approx(105 / (27 * 4))
    # hooks the toy leaves out take their documented defaults
    assert result.area_mm2["compute"] == 0.0 and result.resources == {} and result.memory_bound == {}
    engine = load_engine("toy")
    assert engine.offchip_bytes_per_cycle(arch) == 16.0
    assert arch.compute.datapath_precision is None and arch.compute.board_tdp_w is None


def test_unknown_kind_error_is_unchanged_and_names_the_registered_kinds(toy):
    assert toy_arch().compute.kind == "toy"
    with pytest.raises(SparsimInputError) as info:
        arch_from_dict({"clock_mhz": 1, "compute": {"kind": "tyo"},
                        "memory": {"dram": {"kind": "dram", "ideal": True}}})
    assert "unknown compute kind 'tyo'" in str(info.value) and "toy" in str(info.value)


def test_shipped_engines_fill_the_optional_hooks():
    for kind in ("systolic", "nm_tensor_core", "dsp_chain", "gpu"):
        engine = load_engine(kind)
        assert issubclass(engine.ComputeSpec, ComputeSpecBase)
        for hook in ("check_arch", "compute_area_mm2", "resources_report", "memory_bound", "offchip_bytes_per_cycle",
                     "energy_components"):
            assert callable(getattr(engine, hook))
