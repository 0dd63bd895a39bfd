"""`sparsim simulate`: output table and files, overrides, and one clear line for each bad input."""

import json

import pandas as pd
import pytest

from cli_helpers import run_cli
from conftest import ARCH_DIR, TRACE_DIR

EDGE = ARCH_DIR / "edge_npu_32x32_os.yaml"
RESNET18 = TRACE_DIR / "resnet18.yaml"
REQUIRED_COLUMNS = ["op", "engine", "cycles", "compute_cycles", "stall_cycles", "macs", "dense_macs",
                    "utilization", "energy_pj", "latency_s"]


def test_simulate_prints_table_and_totals(capsys):
    code, out, _ = run_cli(capsys, "simulate", "--arch", EDGE, "--workload", RESNET18)
    assert code == 0
    assert "layer1.0.conv1" in out and "total" in out


@pytest.mark.parametrize("suffix", [".csv", ".json", ".parquet"])
def test_out_writes_one_row_per_op_with_required_columns(capsys, tmp_path, suffix):
    out_file = tmp_path / f"r{suffix}"
    code, _, _ = run_cli(capsys, "simulate", "-a", EDGE, "-w", RESNET18, "--out", out_file, "--quiet")
    assert code == 0
    if suffix == ".csv":
        df = pd.read_csv(out_file)
    elif suffix == ".parquet":
        df = pd.read_parquet(out_file)
    else:
        df = pd.DataFrame(json.loads(out_file.read_text())["ops"])
    assert len(df) == 29
    assert set(REQUIRED_COLUMNS) <= set(df.columns)
    assert (df["dense_macs"] >= df["macs"]).all()


def test_set_overrides_are_typed_and_change_the_result(capsys):
    _, base, _ = run_cli(capsys, "simulate", "-a", EDGE, "-w", RESNET18, "--json")
    _, big, _ = run_cli(capsys, "simulate", "-a", EDGE, "-w", RESNET18, "--json", "--set", "compute.rows=64",
                        "--set", "compute.cols=64", "--set", "memory.lpddr4.bandwidth_bytes_per_cycle=64")
    assert json.loads(big)["compute_cycles"] < json.loads(base)["compute_cycles"]


def test_python_api_overrides_match_cli():
    from simulator import load_arch, load_trace, simulate
    arch = load_arch(EDGE, {"compute.dataflow": "ws"})
    assert arch.compute.dataflow == "ws"
    assert simulate(load_trace(RESNET18), arch).totals["cycles"] > 0


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


BAD_INPUTS = {
    "malformed_yaml": ("arch", "name: x\ncompute: {kind: systolic, rows: 4\n", "malformed YAML"),
    "unknown_key": ("arch", EDGE.read_text().replace("dataflow: os", "dataflow: os\n  colums: 3"), "unknown key 'colums'"),
    "bad_dataflow": ("arch", EDGE.read_text().replace("dataflow: os", "dataflow: xs"), "compute.dataflow"),
    "zero_rows": ("arch", EDGE.read_text().replace("rows: 32", "rows: 0"), "compute.rows"),
    "negative_capacity": ("arch", EDGE.read_text().replace("capacity_kib: 512", "capacity_kib: -1"), "capacity_kib"),
    "unknown_kind": ("arch", EDGE.read_text().replace("kind: systolic", "kind: systolik"), "did you mean 'systolic'"),
    "short_topology_row": ("workload", "Layer, IFMAP H, IFMAP W, Filter H, Filter W, Channels, Num Filter, Strides,\n"
                                       "conv1, 224, 224, 7, 7, 3,\n", "line 2"),
    "bad_trace_op": ("workload", "schema_version: 1\nops:\n- {name: a, kind: gemm, dims: {M: 4, N: 4}}\n", "ops[a].dims.K"),
    "nm_n_above_m": ("workload", "schema_version: 1\nops:\n- {name: a, kind: gemm, dims: {M: 4, N: 4, K: 4},"
                                 " sparsity: {weights: {kind: nm, n: 5, m: 4}}}\n", "n <= m"),
    "future_schema": ("workload", "schema_version: 99\nops:\n- {name: a, kind: gemm, dims: {M: 4, N: 4, K: 4}}\n",
                      "schema_version"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_gives_one_clear_line_and_exit_code_2(capsys, tmp_path, case):
    which, text, expected = BAD_INPUTS[case]
    suffix = ".csv" if case == "short_topology_row" else ".yaml"
    bad = write(tmp_path, f"bad{suffix}", text)
    arch, workload = (bad, RESNET18) if which == "arch" else (EDGE, bad)
    code, out, err = run_cli(capsys, "simulate", "--arch", arch, "--workload", workload)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(bad) in lines[0], err
    assert expected in lines[0]
    assert "Traceback" not in err + out


def test_missing_workload_file_is_one_line(capsys, tmp_path):
    code, _, err = run_cli(capsys, "simulate", "-a", EDGE, "-w", tmp_path / "nope.yaml")
    assert code == 2 and "workload file not found" in err and len(err.strip().splitlines()) == 1


def test_override_of_a_missing_path_suggests_the_nearest(capsys):
    code, _, err = run_cli(capsys, "simulate", "-a", EDGE, "-w", RESNET18, "--set", "memory.sram.capasity_kib=3")
    assert code == 2 and "did you mean 'capacity_kib'" in err


def test_fpga_result_reports_resources_and_the_memory_bound_limit(capsys, tmp_path):
    """An FPGA design's result carries its resource budget, and a decode step's throughput is
    printed beside weight bytes / peak HBM bandwidth, which it can never beat."""
    u280 = ARCH_DIR / "fpga_u280_llm_sparse.yaml"
    decode = TRACE_DIR / "llama2_7b_decode_kv2048.yaml"
    out_file = tmp_path / "r.json"
    code, out, _ = run_cli(capsys, "simulate", "-a", u280, "-w", decode, "--out", out_file)
    assert code == 0
    assert "resources (xcu280): DSP" in out and "memory-bound limit" in out
    saved = json.loads(out_file.read_text())
    dsp = saved["resources"]["dsp"]
    assert 0 < dsp["used"] <= dsp["available"] == 9024
    bound = saved["memory_bound"]
    assert bound["bound_s"] == pytest.approx(bound["weight_bytes"] / bound["peak_bytes_per_s"])
    assert saved["totals"]["latency_s"] >= bound["bound_s"]
    assert saved["totals"]["tokens_per_s"] <= saved["totals"]["memory_bound_tokens_per_s"]


def test_array_results_have_no_fpga_sections(capsys, tmp_path):
    out_file = tmp_path / "r.json"
    run_cli(capsys, "simulate", "-a", EDGE, "-w", RESNET18, "--out", out_file, "--quiet")
    saved = json.loads(out_file.read_text())
    assert saved["resources"] == {} and saved["memory_bound"] == {}
