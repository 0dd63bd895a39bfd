"""Sparse PE arrays (zero-gating, zero-skipping, block skipping), distribution models,
`sparsim compare`, and one clear error per bad sparsity input.

Expected cycles are derived here from the array's fold structure: OS folds cost
R + C - 2 + (the fold's busiest unit's nonzeros); WS/IS column/row tiles need
ceil(busiest / R) K-folds of 2R + C + (M or N) - 2 cycles; totals subtract SCALE-Sim's 1.
"""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import hypergeom
from typer.testing import CliRunner

from simulator.engines.systolic import estimate
from simulator.errors import SparsimInputError
from simulator.simulate import simulate
from simulator.sparsity import group_distribution
from simulator.spec import arch_from_dict, load_arch
from simulator.trace import Op, Sparsity, Trace, load_trace, trace_from_dict

from conftest import ARCH_DIR, ROOT, TRACE_DIR

R = C = 16
IDEAL = {"buf": {"kind": "sram", "capacity_kib": 4096, "ideal": True}, "dram": {"kind": "dram", "ideal": True}}


def systolic(dataflow="os", weights="none", activations="none", sparsity=True):
    compute = {"kind": "systolic", "rows": R, "cols": C, "dataflow": dataflow}
    if sparsity:
        compute["sparsity"] = {"weights": weights, "activations": activations}
    return arch_from_dict({"name": "t", "clock_mhz": 1000, "compute": compute, "memory": IDEAL})


def gemm(M, N, K, weights=None, activations=None):
    sparsity = {k: v for k, v in (("weights", weights), ("activations", activations)) if v}
    return Op.model_validate({"name": "g", "kind": "gemm", "dims": {"M": M, "N": N, "K": K}, "sparsity": sparsity})


def measured(counts, K):
    return {"kind": "unstructured", "density": sum(counts) / (len(counts) * K),
            "measured": {"density": sum(counts) / (len(counts) * K), "row_nnz": counts}}


UN = lambda d: {"kind": "unstructured", "density": d}  # noqa: E731


# ----------------------------------------------------------------------------- gating

def test_zero_gating_keeps_cycles_and_moves_zero_macs_to_gated():
    op = gemm(64, 64, 128, UN(0.3), UN(0.5))
    dense = estimate(op, systolic(sparsity=False))
    gated = estimate(op, systolic(weights="gate", activations="gate"))
    total = 64 * 64 * 128
    assert gated.cycles == dense.cycles
    assert gated.macs == pytest.approx(total * 0.3 * 0.5)
    assert gated.gated_macs == pytest.approx(total * (1 - 0.3 * 0.5))
    arch = systolic(weights="gate", activations="gate")
    e_gated = simulate(Trace(ops=[op]), arch).rows[0]
    e_dense = simulate(Trace(ops=[op]), systolic(sparsity=False)).rows[0]
    assert e_gated["energy_mac_pj"] < e_dense["energy_mac_pj"]
    assert e_gated["energy_gated_mac_pj"] > 0
    assert e_gated["energy_pj"] < e_dense["energy_pj"]


def test_an_array_without_a_sparsity_block_runs_dense_and_says_so():
    cost = estimate(gemm(64, 64, 128, UN(0.3)), systolic(sparsity=False))
    assert cost.compute_cycles == 4 * 4 * (R + C + 128 - 2) - 1
    assert "not exploited" in cost.note_text and cost.gated_macs == 0


# ----------------------------------------------------------------------------- skipping

def test_os_skipping_waits_for_the_busiest_column_of_each_fold():
    K = 100
    counts = [10, 20, 30, 40] * 4 + [5] * 15 + [90]   # N = 32: tile maxima 40 and 90
    op = gemm(32, 32, K, measured(counts, K))
    cost = estimate(op, systolic("os", weights="skip"))
    per_outer = (R + C - 2 + 40) + (R + C - 2 + 90)
    assert cost.compute_cycles == 2 * per_outer - 1
    assert cost.macs == pytest.approx(32 * 32 * K * np.mean(counts) / K)
    assert "measured per-row counts" in cost.model


def test_ws_skipping_compacts_each_column_tile_to_its_busiest_column():
    K, M = 128, 40
    counts = [33] * 16 + [64] + [1] * 15              # tile maxima 33 and 64 -> 3 and 4 K-folds of 16
    cost = estimate(gemm(M, 32, K, measured(counts, K)), systolic("ws", weights="skip"))
    per_fold = 2 * R + C + M - 2
    assert cost.compute_cycles == (math.ceil(33 / R) + math.ceil(64 / R)) * per_fold - 1


def test_is_skipping_compacts_activation_rows():
    K, N = 64, 24
    counts = [16] * 16 + [17] * 16                   # row tiles of C = 16: 1 and 2 K-folds
    cost = estimate(gemm(32, N, K, activations=measured(counts, K)), systolic("is", activations="skip"))
    assert cost.compute_cycles == (1 + 2) * (2 * R + C + N - 2) - 1


def test_a_streamed_operand_cannot_be_skipped_and_is_gated_instead():
    cost = estimate(gemm(64, 64, 128, activations=UN(0.5)), systolic("ws", activations="skip"))
    dense = estimate(gemm(64, 64, 128), systolic("ws", sparsity=False))
    assert cost.cycles == dense.cycles
    assert cost.gated_macs == pytest.approx(64 * 64 * 128 * 0.5)
    assert "gated, not skipped" in cost.note_text


def test_binomial_imbalance_bounds_the_skipping_gain():
    d, K, M, N = 0.3, 512, 64, 64
    cost = estimate(gemm(M, N, K, UN(d)), systolic("os", weights="skip"))
    folds = (M // R) * (N // C)
    perfect = folds * (R + C - 2 + d * K) - 1     # if every column held exactly the mean
    dense = folds * (R + C - 2 + K) - 1
    assert perfect < cost.compute_cycles < dense
    assert "binomial" in cost.model


def test_block_sparsity_skips_whole_tiles():
    # Blocks span all of K and one column tile: a fold's weights are all zero (skipped) or all kept.
    d, K, M, N = 0.25, 64, 32, 64
    op = gemm(M, N, K, {"kind": "block", "block": [K, C], "density": d})
    cost = estimate(op, systolic("os", weights="skip"))
    folds = (M // R) * (N // C)
    assert cost.compute_cycles == pytest.approx(folds * (R + C - 2 + d * K) - 1)
    assert "block" in cost.model


@settings(max_examples=30, deadline=None)
@given(d1=st.floats(0.01, 1.0), d2=st.floats(0.01, 1.0), dataflow=st.sampled_from(["os", "ws", "is"]),
       kind=st.sampled_from(["unstructured", "block"]))
def test_higher_density_never_decreases_cycles_on_a_skipping_engine(d1, d2, dataflow, kind):
    lo, hi = sorted((d1, d2))
    arch = systolic(dataflow, weights="skip", activations="skip")

    def sp(d):
        return {"kind": "block", "block": [8, 8], "density": d} if kind == "block" else UN(d)

    c_lo = estimate(gemm(40, 40, 200, sp(lo), sp(lo)), arch)
    c_hi = estimate(gemm(40, 40, 200, sp(hi), sp(hi)), arch)
    assert c_hi.cycles >= c_lo.cycles - 1e-9


@settings(max_examples=30, deadline=None)
@given(dw=st.floats(0.01, 1.0), da=st.floats(0.01, 1.0), dataflow=st.sampled_from(["os", "ws", "is"]),
       mode_w=st.sampled_from(["gate", "skip"]), mode_a=st.sampled_from(["gate", "skip", "none"]))
def test_sparsity_never_increases_macs_or_cycles_on_a_systolic_array(dw, da, dataflow, mode_w, mode_a):
    op = gemm(30, 20, 70, UN(dw), UN(da))
    cost = estimate(op, systolic(dataflow, weights=mode_w, activations=mode_a))
    dense = estimate(op, systolic(dataflow, sparsity=False))
    assert cost.macs <= cost.dense_macs
    assert cost.macs + cost.gated_macs <= cost.dense_macs * (1 + 1e-12)
    assert cost.compute_cycles <= dense.compute_cycles


# ----------------------------------------------------------------------------- distribution models

def test_nm_data_in_whole_multiples_of_its_group_is_exact():
    dist = group_distribution(Sparsity(kind="nm", n=2, m=4), 8)
    assert dist.probs[4] == 1.0 and "exact" in dist.model


def test_nm_data_in_smaller_groups_is_hypergeometric():
    dist = group_distribution(Sparsity(kind="nm", n=2, m=8), 4)
    for j in range(3):
        assert dist.probs[j] == pytest.approx(math.comb(4, j) * math.comb(4, 2 - j) / math.comb(8, 2))
    assert "hypergeometric" in dist.model


def test_unstructured_without_measurements_is_binomial():
    dist = group_distribution(Sparsity(kind="unstructured", density=0.2), 4)
    assert dist.probs[1] == pytest.approx(4 * 0.2 * 0.8 ** 3)
    assert "binomial" in dist.model


def test_measured_histograms_are_used_split_or_combined_for_other_group_sizes():
    hist8 = [1, 2, 3, 2, 1, 1, 0, 0, 0]      # density (2+6+6+4+5) / (8*10) = 23/80
    sp = Sparsity(kind="unstructured", density=23 / 80,
                  measured={"density": 23 / 80, "group_histograms": {8: hist8}})
    assert group_distribution(sp, 8).model.startswith("measured M=8")
    split = group_distribution(sp, 4)
    p8 = np.array(hist8) / 10
    expected1 = sum(p8[j] * hypergeom.pmf(1, 8, j, 4) for j in range(9))
    assert split.probs[1] == pytest.approx(expected1)
    assert "split" in split.model
    hist2 = [5, 3, 2]                        # density 7/20
    sp2 = Sparsity(kind="unstructured", density=0.35, measured={"density": 0.35, "group_histograms": {2: hist2}})
    combined = group_distribution(sp2, 4)
    assert combined.probs[0] == pytest.approx(0.5 * 0.5) and "combined" in combined.model


# ----------------------------------------------------------------------------- compare

def test_compare_reports_speedup_and_energy_ratio_per_op_and_total(tmp_path):
    from simulator.cli import _register_commands, app
    _register_commands()
    out = tmp_path / "cmp.csv"
    result = CliRunner().invoke(app, ["compare", "--arch", str(ARCH_DIR / "sparse_systolic_skip_bitmap.yaml"),
                                      "--workload", str(TRACE_DIR / "sparse_layers_70pct_unstructured.yaml"),
                                      "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    totals = json.loads(result.output)
    assert totals["speedup"] == pytest.approx(totals["dense_cycles"] / totals["sparse_cycles"])
    assert totals["speedup"] > 1.5 and totals["energy_ratio"] < 1.0
    import pandas as pd
    rows = pd.read_csv(out)
    assert len(rows) == len(load_trace(TRACE_DIR / "sparse_layers_70pct_unstructured.yaml").ops)
    assert (rows["speedup"] == rows["dense_cycles"] / rows["sparse_cycles"]).all()


def test_compare_dense_side_equals_a_plain_dense_run():
    from simulator.cli_sparse import compare_runs, strip_sparsity
    trace = load_trace(TRACE_DIR / "sparse_layers_70pct_unstructured.yaml")
    arch = load_arch(ARCH_DIR / "vegeta_like_flexible_nm.yaml")
    df, totals = compare_runs(trace, arch)
    assert all(op.sparsity.weights.kind == "dense" for op in strip_sparsity(trace).ops)
    assert totals["dense_cycles"] == simulate(strip_sparsity(trace), arch).totals["cycles"]
    assert (df["speedup"] > 1.0).all()


# ----------------------------------------------------------------------------- bad input

def _trace_with(weights):
    return {"schema_version": 1, "ops": [{"name": "fc", "kind": "gemm", "dims": {"M": 4, "N": 4, "K": 8},
                                          "sparsity": {"weights": weights}}]}


@pytest.mark.parametrize("weights, needle", [
    ({"kind": "nm", "n": 4, "m": 2}, "n <= m"),
    ({"kind": "unstructured", "density": 0.0}, "greater than 0"),
    ({"kind": "unstructured", "density": 1.5}, "less than or equal to 1"),
    ({"kind": "unstructured", "density": 0.5,
      "measured": {"density": 0.5, "group_histograms": {4: [10, 0, 0, 0, 0]}}}, "does not sum"),
    ({"kind": "unstructured", "density": 0.5,
      "measured": {"density": 0.5, "group_histograms": {4: [1, 2, 3]}}}, "needs 5 bins"),
    ({"kind": "unstructured", "density": 0.5,
      "measured": {"density": 0.5, "group_histograms": {4: [0.1, 0.2, 0.3, 0.2, 0.1]}}}, "does not sum"),
    ({"kind": "unstructured", "density": 0.3, "measured": {"density": 0.6}}, "disagrees with measured.density"),
    ({"kind": "nm", "n": 2, "m": 4,
      "measured": {"density": 0.5, "group_histograms": {4: [0, 10, 80, 10, 0]}}}, "2:4 forbids"),
    ({"kind": "block", "block": [4, 4], "density": 0.5,
      "measured": {"density": 0.5, "block_density": {"4x4": 1.5}}}, "must be in (0, 1]"),
    ({"kind": "block", "block": [4, 4], "density": 0.5,
      "measured": {"density": 0.5, "block_density": {"four": 0.5}}}, "not a block shape"),
    ({"kind": "block", "block": [4, 4], "density": 0.0}, "greater than 0"),
])
def test_each_bad_sparsity_input_is_one_clear_error_naming_the_field(weights, needle):
    with pytest.raises(SparsimInputError) as exc:
        trace_from_dict(_trace_with(weights))
    assert needle in exc.value.message
    assert exc.value.field.startswith("ops[fc].sparsity.weights")


def test_a_histogram_given_as_fractions_summing_to_one_is_accepted_and_used():
    probs = [0.1, 0.4, 0.3, 0.15, 0.05]                  # density (0.4 + 0.6 + 0.45 + 0.2) / 4 = 0.4125
    sp = Sparsity(kind="unstructured", density=0.4125,
                  measured={"density": 0.4125, "group_histograms": {4: probs}})
    dist = group_distribution(sp, 4)
    assert dist.probs == pytest.approx(probs) and "measured" in dist.model


def test_measured_row_counts_longer_than_k_name_the_operand_field():
    counts = [1, 2, 30, 4] * 4                              # 30 > K: not counts along this K
    op = gemm(16, 4, 8, activations={"kind": "unstructured", "density": 0.5,
                                      "measured": {"density": 0.5, "row_nnz": counts}})
    with pytest.raises(SparsimInputError) as exc:
        estimate(op, systolic("os", activations="skip"))
    assert exc.value.field == "sparsity.activations.measured.row_nnz"
    assert "K=8" in exc.value.message


def test_the_cli_exits_2_with_the_field_on_bad_sparsity(tmp_path):
    import yaml
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(_trace_with({"kind": "unstructured", "density": 1.5})))
    proc = subprocess.run([sys.executable, "-c", "from simulator.cli import main; main()", "compare", "--arch",
                           str(ARCH_DIR / "sparse_systolic_skip_bitmap.yaml"), "--workload", str(bad)],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2
    assert "ops[fc].sparsity.weights.density" in proc.stderr
