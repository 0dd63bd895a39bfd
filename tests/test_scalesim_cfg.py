"""`--arch scale.cfg`: a SCALE-Sim v3 config is read into the same spec its YAML twin gives.

Reference cycles in tests/data/scalesim_cfg/*_reference.json come from running the real
scalesim==3.0.0 on the very same .cfg and topology files
(benchmarks/scalesim_reference/run_cfg.py), with non-square arrays.
"""

import json
import warnings

import pytest

from cli_helpers import run_cli
from conftest import ARCH_DIR, TRACE_DIR
from simulator import load_arch, load_trace, simulate
from simulator.errors import SparsimInputError, SparsimWarning

DATA = TRACE_DIR.parents[1] / "tests" / "data" / "scalesim_cfg"

TWIN_CFG = """
[general]
run_name = scalesim_32x32_os

[architecture_presets]
ArrayHeight = 32
ArrayWidth = 32
IfmapSramSzkB = 6144
FilterSramSzkB = 6144
OfmapSramSzkB = 2048
IfmapOffset = 0
FilterOffset = 10000000
OfmapOffset = 20000000
Dataflow = os

[sparsity]
SparsitySupport = {sparse}

[run_presets]
InterfaceBandwidth = CALC
"""


@pytest.mark.parametrize("cfg,topology", [("nonsquare_ws", "topology"), ("nonsquare_is_sparse", "topology_nm")])
def test_nonsquare_cfg_gives_scalesim_cycles(cfg, topology):
    arch = load_arch(DATA / f"{cfg}.cfg")
    assert arch.compute.rows != arch.compute.cols
    reference = json.loads((DATA / f"{cfg}_reference.json").read_text())
    result = simulate(load_trace(DATA / f"{topology}.csv"), arch)
    assert [r["cycles"] for r in result.rows] == [layer["total_cycles"] for layer in reference["layers"]]
    assert [r["stall_cycles"] for r in result.rows] == [layer["stall_cycles"] for layer in reference["layers"]]


@pytest.mark.parametrize("sparse,twin", [("false", "scalesim_32x32_os"), ("true", "scalesim_32x32_os_sparse")])
def test_cfg_and_its_yaml_twin_give_identical_results(tmp_path, sparse, twin):
    cfg = tmp_path / "scale.cfg"
    cfg.write_text(TWIN_CFG.format(sparse=sparse))
    from_cfg, from_yaml = load_arch(cfg), load_arch(ARCH_DIR / f"{twin}.yaml")
    assert from_cfg.compute == from_yaml.compute and from_cfg.memory == from_yaml.memory
    assert from_cfg.clock_mhz == from_yaml.clock_mhz
    trace = load_trace(TRACE_DIR / "resnet18.yaml")
    a, b = simulate(trace, from_cfg), simulate(trace, from_yaml)
    assert a.rows == b.rows and a.totals == b.totals


def test_overrides_apply_to_a_cfg(tmp_path):
    cfg = tmp_path / "scale.cfg"
    cfg.write_text(TWIN_CFG.format(sparse="false"))
    assert load_arch(cfg, ["compute.cols=8"]).compute.cols == 8


def test_unmodelled_settings_are_named_in_one_warning(tmp_path):
    cfg = tmp_path / "scale.cfg"
    cfg.write_text(TWIN_CFG.format(sparse="false").replace("[run_presets]", "[run_presets]\nUseRamulatorTrace = True")
                   + "MysteryKnob = 3\n[layout]\nIfmapCustomLayout = True\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_arch(cfg)
    mine = [w for w in caught if issubclass(w.category, SparsimWarning)]
    assert len(mine) == 1
    text = str(mine[0].message)
    assert "mysteryknob" in text and "UseRamulatorTrace" in text and "IfmapCustomLayout" in text


def test_cli_prints_the_warning_as_one_line(capsys, tmp_path):
    cfg = tmp_path / "scale.cfg"
    cfg.write_text(TWIN_CFG.format(sparse="false") + "MysteryKnob = 3\n")
    code, _, err = run_cli(capsys, "simulate", "-a", cfg, "-w", TRACE_DIR / "resnet18.yaml", "-q")
    assert code == 0
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("warning: ") and "mysteryknob" in lines[0]


def test_user_bandwidth_limits_dram(tmp_path):
    cfg = tmp_path / "scale.cfg"
    text = TWIN_CFG.format(sparse="false").replace("InterfaceBandwidth = CALC", "InterfaceBandwidth = USER")
    cfg.write_text(text.replace("Dataflow = os", "Dataflow = os\nBandwidth = 10"))
    dram = load_arch(cfg).memory["dram"]
    assert not dram.ideal and dram.bandwidth_bytes_per_cycle == 10


@pytest.mark.parametrize("edit,field", [
    (("Dataflow = os", "Dataflow = xs"), "Dataflow"),
    (("ArrayHeight = 32", "ArrayHeight = -4"), "ArrayHeight"),
    (("ArrayWidth = 32", "ArrayWidth = wide"), "ArrayWidth"),
    (("InterfaceBandwidth = CALC", "InterfaceBandwidth = USER"), "Bandwidth"),
])
def test_bad_cfg_is_one_located_error(tmp_path, edit, field):
    cfg = tmp_path / "scale.cfg"
    cfg.write_text(TWIN_CFG.format(sparse="false").replace(*edit))
    with pytest.raises(SparsimInputError) as info:
        load_arch(cfg)
    assert field in info.value.one_line() and str(cfg) in info.value.one_line()


def test_not_a_cfg_is_one_error(tmp_path):
    cfg = tmp_path / "scale.cfg"
    cfg.write_text("ArrayHeight = 4\n")
    with pytest.raises(SparsimInputError):
        load_arch(cfg)
