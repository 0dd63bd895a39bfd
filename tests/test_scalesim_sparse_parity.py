"""SCALE-Sim v3 parity for layer-wise N:M weight sparsity (2:4, 1:4, 1:8, 2:8) over OS/WS/IS.

Reference numbers come from the committed `tests/data/scalesim_reference.csv` (produced by
running the real scalesim==3.0.0 package); every row with an N:M entry is run through the
topology-CSV importer on `arch_configs/scalesim_32x32_os_sparse.yaml` with the row's array
size and dataflow, and must match SCALE-Sim's total cycles exactly.
"""

import csv

import pytest

from simulator.simulate import simulate
from simulator.spec import load_arch
from simulator.trace import load_trace

from conftest import ARCH_DIR, ROOT

REFERENCE = ROOT / "tests" / "data" / "scalesim_reference.csv"
SPARSE_ARCH = ARCH_DIR / "scalesim_32x32_os_sparse.yaml"


def _rows():
    if not REFERENCE.exists():
        return []
    with REFERENCE.open(newline="") as fh:
        return [r for r in csv.DictReader(fh) if (r.get("nm") or "").strip()]


ROWS = _rows()


def _topology(row, path):
    nm = row["nm"].strip()
    if row["layer_kind"] == "gemm":
        text = f"Layer, M, N, K, N:M,\nl, {row['M']}, {row['N']}, {row['K']}, {nm},\n"
    else:
        text = ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, "
                "Strides, N:M,\n"
                f"l, {row['ifmap_h']}, {row['ifmap_w']}, {row['filter_h']}, {row['filter_w']}, "
                f"{row['channels']}, {row['num_filters']}, {row['stride']}, {nm},\n")
    path.write_text(text)
    return path


@pytest.mark.skipif(not ROWS, reason="tests/data/scalesim_reference.csv has no N:M rows yet")
@pytest.mark.parametrize("row", ROWS, ids=[f"case{r['case']}-{r['layer_kind']}-{r['nm']}-{r['dataflow']}" for r in ROWS])
def test_layerwise_nm_cycles_equal_scalesim(row, tmp_path):
    arch = load_arch(SPARSE_ARCH, {"compute.rows": int(row["rows"]), "compute.cols": int(row["cols"]),
                                   "compute.dataflow": row["dataflow"]})
    result = simulate(load_trace(_topology(row, tmp_path / "topology.csv")), arch)
    assert result.totals["cycles"] == float(row["scalesim_total_cycles"])
    assert result.totals["stall_cycles"] == float(row["scalesim_stall_cycles"])


def test_the_reference_covers_every_pattern_and_dataflow():
    if not ROWS:
        pytest.skip("no reference rows yet")
    assert {r["nm"].strip() for r in ROWS} >= {"2:4", "1:4", "1:8", "2:8"}
    assert {r["dataflow"] for r in ROWS} == {"os", "ws", "is"}


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
def test_layerwise_k_follows_the_keep_first_n_of_every_m_rule(dataflow, tmp_path):
    # K = 67 with 2:8 keeps (67 // 8) * 2 + min(67 % 8, 2) = 18 rows; derive SCALE-Sim's count by hand.
    M, N, K, R, C = 50, 40, 67, 8, 16
    Kp = (K // 8) * 2 + min(K % 8, 2)
    assert Kp == 18
    folds, per_fold = {"os": (-(-M // R) * -(-N // C), R + C + Kp - 2),
                       "ws": (-(-Kp // R) * -(-N // C), 2 * R + C + M - 2),
                       "is": (-(-Kp // R) * -(-M // C), 2 * R + C + N - 2)}[dataflow]
    path = tmp_path / "t.csv"
    path.write_text(f"Layer, M, N, K, N:M,\nl, {M}, {N}, {K}, 2:8,\n")
    arch = load_arch(SPARSE_ARCH, {"compute.rows": R, "compute.cols": C, "compute.dataflow": dataflow})
    assert simulate(load_trace(path), arch).totals["cycles"] == folds * per_fold - 1


def test_dense_rows_run_the_exact_dense_count_on_the_sparse_spec(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("Layer, M, N, K,\nl, 50, 40, 67,\n")
    sparse = simulate(load_trace(path), load_arch(SPARSE_ARCH))
    dense = simulate(load_trace(path), load_arch(ARCH_DIR / "scalesim_32x32_os.yaml"))
    assert sparse.totals["cycles"] == dense.totals["cycles"] == 2 * 2 * (32 + 32 + 67 - 2) - 1


# Edge cases run through the real scalesim==3.0.0 (benchmarks/scalesim_runner.py, [sparsity]
# SparsitySupport = true, OptimizedMapping = false, CALC bandwidth) on an 8-row x 4-col array:
# M = 1, K shorter than one group, a single K element, n == m, and the odd ratios 3:4 and 1:2.
# Columns: M, N, K, N:M, then SCALE-Sim's "Total Cycles" for os, ws, is.
SCALESIM_EDGE_8x4 = [
    (1, 40, 67, "2:4", 439, 949, 289),
    (50, 40, 3, "2:4", 839, 679, 753),
    (50, 40, 1, "1:8", 769, 679, 753),
    (50, 40, 67, "4:4", 5389, 6119, 6785),
    (20, 9, 70, "3:4", 566, 797, 944),
    (1, 1, 5, "1:4", 11, 18, 18),
    (7, 33, 64, "1:2", 377, 899, 407),
    (7, 33, 64, "8:8", 665, 1799, 815),
]


def _cli_compute_cycles(capsys, tmp_path, topology_text, dataflow, rows, cols):
    """`sparsim simulate --arch scalesim_32x32_os_sparse.yaml --workload topo.csv --set ... --out x.csv`."""
    import pandas as pd
    from cli_helpers import run_cli
    topo = tmp_path / f"topo_{dataflow}.csv"
    topo.write_text(topology_text)
    out = tmp_path / f"x_{dataflow}.csv"
    code, _, err = run_cli(capsys, "simulate", "--arch", SPARSE_ARCH, "--workload", topo,
                           "--set", f"compute.dataflow={dataflow}", "--set", f"compute.rows={rows}",
                           "--set", f"compute.cols={cols}", "--out", out, "--quiet")
    assert code == 0, err
    return pd.read_csv(out)["compute_cycles"].tolist()


@pytest.mark.parametrize("column", [0, 1, 2], ids=["os", "ws", "is"])
def test_the_cli_path_matches_scalesim_on_gemm_csv_edge_cases_and_a_missing_column(column, capsys, tmp_path):
    dataflow = ("os", "ws", "is")[column]
    lines = ["Layer, M, N, K, N:M,"]
    lines += [f"g{i}, {M}, {N}, {K}, {nm}," for i, (M, N, K, nm, *_) in enumerate(SCALESIM_EDGE_8x4)]
    # No N:M column: SCALE-Sim's loader appends its default '1:1', i.e. the 4:4 row's count.
    lines.append("nocol, 50, 40, 67,")
    got = _cli_compute_cycles(capsys, tmp_path, "\n".join(lines) + "\n", dataflow, 8, 4)
    expected = [row[4 + column] for row in SCALESIM_EDGE_8x4] + [SCALESIM_EDGE_8x4[3][4 + column]]
    assert got == expected


@pytest.mark.skipif(not ROWS, reason="tests/data/scalesim_reference.csv has no N:M rows yet")
@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
def test_the_cli_path_matches_scalesim_on_a_conv_topology_csv(dataflow, capsys, tmp_path):
    row = next(r for r in ROWS if r["layer_kind"] == "conv" and r["dataflow"] == dataflow)
    text = _topology(row, tmp_path / "unused.csv").read_text()
    got = _cli_compute_cycles(capsys, tmp_path, text, dataflow, int(row["rows"]), int(row["cols"]))
    assert got == [float(row["scalesim_total_cycles"])]


def test_n_equal_m_entries_are_dense_with_no_index_metadata(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("Layer, M, N, K, N:M,\na, 50, 40, 67, 1:1,\nb, 50, 40, 67, 4:4,\nc, 50, 40, 67,\n")
    rows = simulate(load_trace(path), load_arch(SPARSE_ARCH)).rows
    assert len({r["compute_cycles"] for r in rows}) == 1
    assert len({r["filter_sram_read_bytes"] for r in rows}) == 1      # no index bits for n == m
    # K x N int8 weights, streamed into the array once per OS row fold (ceil(50 / 32) = 2 folds)
    assert rows[0]["filter_sram_read_bytes"] == 67 * 40 * 2


def test_layerwise_weights_are_stored_with_their_index_bits(tmp_path):
    # 2:4 int8, K = 64, N = 32, M = 32 (one OS row fold): 32 kept rows x 32 cols x (8 + 2) bits.
    path = tmp_path / "t.csv"
    path.write_text("Layer, M, N, K, N:M,\na, 32, 32, 64, 2:4,\n")
    row = simulate(load_trace(path), load_arch(SPARSE_ARCH)).rows[0]
    assert row["dram_read_bytes"] == pytest.approx(32 * 32 * 10 / 8 + 32 * 64)   # weights + all activations
    assert row["macs"] == 32 * 32 * 32
