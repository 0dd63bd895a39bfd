"""Sweep specs are validated completely before any point runs: one clear error per mistake."""

import importlib.util
from pathlib import Path

import pytest
import yaml

from analysis.sweep_spec import RangeParam, resolve_sweep
from simulator.errors import SparsimInputError

ROOT = Path(__file__).resolve().parents[1]
BASE_ARCH = ROOT / "arch_configs" / "edge_npu_32x32_os.yaml"
# without the dask extra the executor check stops at "needs dask.distributed", before any connection
needs_dask = pytest.mark.skipif(importlib.util.find_spec("distributed") is None, reason="needs the dask extra")

TINY_TRACE = {
    "schema_version": 1, "name": "tiny",
    "ops": [
        {"name": "c1", "kind": "conv2d", "dims": {"C": 8, "H": 14, "W": 14, "K": 16, "R": 3, "S": 3, "pad": 1}},
        {"name": "c2", "kind": "conv2d", "dims": {"C": 16, "H": 14, "W": 14, "K": 32, "R": 3, "S": 3, "stride": 2,
                                                    "pad": 1}},
        {"name": "fc", "kind": "gemm", "dims": {"M": 1, "N": 10, "K": 512}},
        {"name": "relu", "kind": "elementwise", "dims": {"elements": 4096}},
    ],
}


def make_sweep(tmp_path: Path, **changes) -> Path:
    """A small valid sweep spec (4 x 2 x 4 x 2 = 64 grid points) written to tmp_path; `changes` replace keys."""
    trace = tmp_path / "tiny.yaml"
    if not trace.exists():
        trace.write_text(yaml.safe_dump(TINY_TRACE))
    spec = {
        "name": "tiny",
        "base_arch": str(BASE_ARCH),
        "workloads": [{"path": "tiny.yaml", "weight": 1}],
        "parameters": {
            "compute.rows": [8, 16, 32, 64],
            "compute.cols": "=compute.rows",
            "compute.dataflow": ["os", "ws"],
            "memory.sram.capacity_kib": {"min": 64, "max": 512, "log": True},
            "memory.lpddr4.bandwidth_bytes_per_cycle": [8, 16],
        },
        "objectives": ["latency", "energy"],
        "constraints": ["area_mm2 <= 3"],
        "strategy": "grid",
        "seed": 0,
        "executor": "serial",
    }
    spec.update(changes)
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def _error(tmp_path, **changes) -> SparsimInputError:
    with pytest.raises(SparsimInputError) as info:
        resolve_sweep(make_sweep(tmp_path, **changes))
    return info.value


def test_valid_spec_resolves(tmp_path):
    s = resolve_sweep(make_sweep(tmp_path))
    assert s.grid_size() == 64
    assert [p.path for p in s.derived] == ["compute.cols"]
    assert [(o.key, o.direction) for o in s.objectives] == [("latency_s", "min"), ("energy_pj", "min")]
    assert s.workloads[0].name == "tiny" and s.workloads[0].data["ops"]


def test_range_grid_values():
    assert RangeParam(min=64, max=4096, log=True).grid_values() == [64, 128, 256, 512, 1024, 2048, 4096]
    assert RangeParam(min=8, max=32, step=8).grid_values() == [8, 16, 24, 32]
    assert RangeParam(min=1.0, max=2.0, num=3).grid_values() == [1.0, 1.5, 2.0]
    assert RangeParam(min=10, max=1000, log=True, step=10).grid_values() == [10, 100, 1000]


def test_unknown_dotted_path_suggests_nearest(tmp_path):
    params = {"compute.row": [8, 16]}
    err = _error(tmp_path, parameters=params)
    assert err.field == "parameters.compute.row"
    assert "compute.rows" in err.hint
    err = _error(tmp_path, parameters={"memory.sramm.capacity_kib": [64]})
    assert "memory.sram.capacity_kib" in err.hint


def test_range_min_above_max(tmp_path):
    err = _error(tmp_path, parameters={"memory.sram.capacity_kib": {"min": 512, "max": 64}})
    assert "min" in err.message and "max" in err.message
    assert err.field.startswith("parameters.memory.sram.capacity_kib")


def test_objective_not_produced(tmp_path):
    err = _error(tmp_path, objectives=["latncy", "energy"])
    assert err.field == "objectives[0]" and "latency" in err.hint
    err = _error(tmp_path, objectives=["latency", "frobnication"])
    assert "not a metric" in err.message


@needs_dask
def test_unreachable_dask_scheduler(tmp_path):
    err = _error(tmp_path, executor="dask://127.0.0.1:1")
    assert "Dask scheduler" in err.message and err.field == "executor"


@pytest.mark.parametrize("changes, field, words", [
    ({"executor": "cluster"}, "executor", "unknown executor"),
    ({"strategy": {"randm": 10}}, "strategy", "strategy"),
    ({"constraints": ["aera_mm2 <= 3"]}, "constraints[0]", "not a metric"),
    ({"constraints": ["area_mm2"]}, "constraints[0]", "comparison"),
    ({"parameters": {"compute.rows": ["many"]}}, "parameters.compute.rows", "value 'many'"),
    ({"parameters": {"compute.cols": "=compute.rowz"}}, "parameters.compute.cols", "compute.rowz"),
    ({"parameters": {"memory.sram.capacity_kib": {"min": 1, "max": 9, "lg": True}}},
     "parameters.memory.sram.capacity_kib.lg", "unknown key"),
    ({"workloads": ["missing.yaml"]}, "workloads[0].path", "not found"),
])
def test_one_clear_error_each(tmp_path, changes, field, words):
    err = _error(tmp_path, **changes)
    assert err.field == field, err
    assert words in str(err)


def test_bad_spec_fails_before_any_work(tmp_path):
    from analysis.sweep import run_sweep
    out = tmp_path / "out"
    with pytest.raises(SparsimInputError):
        run_sweep(make_sweep(tmp_path, objectives=["nope"]), out)
    assert not out.exists()


@pytest.mark.parametrize("changes, args, words", [
    ({"parameters": {"compute.rowz": [8]}}, [], ["parameters.compute.rowz", "did you mean 'compute.rows'"]),
    ({"parameters": {"memory.sram.capacity_kib": {"min": 512, "max": 64}}}, [],
     ["parameters.memory.sram.capacity_kib", "min 512 > max 64", "swap them"]),
    ({"objectives": ["latency", "throughput_per_mm2"]}, [], ["objectives[1]", "not a metric the engine produces"]),
    pytest.param({}, ["--executor", "dask://127.0.0.1:1"],
                 ["--executor", "cannot reach the Dask scheduler", "dask scheduler"], marks=needs_dask),
    pytest.param({"executor": "dask://127.0.0.1:1"}, [], ["sweep.yaml", "executor", "cannot reach the Dask scheduler"],
                 marks=needs_dask),
], ids=["dotted-path", "min-above-max", "objective", "dask-cli", "dask-spec"])
def test_each_bad_input_is_one_line_exit_2_before_any_work(tmp_path, capsys, changes, args, words):
    from cli_helpers import run_cli
    spec = make_sweep(tmp_path, **changes)
    out = tmp_path / "o"
    code, stdout, err = run_cli(capsys, "sweep", spec, "--out", out, *args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err and stdout == ""
    for w in words:
        assert w in lines[0], (w, lines[0])
    if not args:
        assert str(spec) in lines[0]  # names the file
    assert not out.exists()  # nothing ran, nothing was written


def test_cli_prints_one_line_and_exits_2(tmp_path, capsys):
    from cli_helpers import run_cli
    code, out, err = run_cli(capsys, "sweep", make_sweep(tmp_path, parameters={"compute.rowz": [8]}),
                             "--out", tmp_path / "o")
    assert code == 2
    assert err.strip().count("\n") == 0 and "did you mean 'compute.rows'" in err
