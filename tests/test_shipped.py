"""Shipped specs, traces, HF configs and sweeps resolve by name from any working directory."""

import json
from pathlib import Path

import pytest

from cli_helpers import run_cli
from conftest import ARCH_DIR, TRACE_DIR
from simulator import __version__, shipped
from simulator.errors import SparsimInputError
from simulator.spec import load_arch
from simulator.trace import load_trace


@pytest.fixture(autouse=True)
def elsewhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_version(capsys):
    code, out, _ = run_cli(capsys, "--version")
    assert code == 0 and out.strip() == f"sparsim {__version__}"


@pytest.mark.parametrize("kind,folder,suffix", [("specs", ARCH_DIR, ".yaml"), ("traces", TRACE_DIR, ".yaml"),
                                                ("models", TRACE_DIR.parent / "hf_configs", ".json")])
def test_list_names_every_shipped_file_once(capsys, kind, folder, suffix):
    code, out, _ = run_cli(capsys, "list", kind, "--json")
    assert code == 0
    names = [e["name"] for e in json.loads(out)]
    assert sorted(names) == sorted(p.stem for p in folder.glob(f"*{suffix}"))
    code, out, _ = run_cli(capsys, "list", kind)
    assert len(out.strip().splitlines()) == len(names)


def test_simulate_by_name_from_another_folder(capsys):
    code, out, err = run_cli(capsys, "simulate", "-a", "edge_npu_32x32_os", "-w", "resnet50", "--json")
    assert code == 0, err
    by_path = json.loads(out)
    code, out, _ = run_cli(capsys, "simulate", "-a", ARCH_DIR / "edge_npu_32x32_os.yaml",
                           "-w", TRACE_DIR / "resnet50.yaml", "--json")
    assert json.loads(out) == by_path


def test_a_local_file_wins_over_a_shipped_name(elsewhere):
    (elsewhere / "resnet50").write_text((TRACE_DIR / "resnet18.yaml").read_text())
    assert load_trace("resnet50").name == "resnet18"
    assert load_arch("edge_npu_32x32_os.yaml").name == "edge_npu_32x32_os"  # suffix given: still found


def test_a_misspelt_name_suggests_the_nearest(capsys):
    code, _, err = run_cli(capsys, "simulate", "-a", "edge_npu_32x32", "-w", "resnet50")
    assert code == 2 and "did you mean 'edge_npu_32x32_os'?" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(SparsimInputError, match="did you mean 'resnet50'"):
        load_trace("resnet5O")


def test_a_path_is_never_replaced_by_a_name():
    assert shipped.resolve("nowhere/resnet50", "traces").as_posix() == "nowhere/resnet50"


def test_shipped_sweeps_name_their_specs_and_resolve(elsewhere):
    from analysis.sweep_spec import resolve_sweep
    for name in shipped.names("sweeps"):
        text = shipped.find("sweeps", name).read_text()
        assert "../" not in text.split("parameters:")[0], name   # base arch and workloads by name
    sweep = resolve_sweep(shipped.find("sweeps", "edge_npu_resnet50"))
    assert Path(sweep.base_arch_path).name == "edge_npu_32x32_os.yaml"


def test_system_spec_by_name():
    from simulator.system import load_system
    assert load_system("quad_edge_npu").name == "quad_edge_npu"
