"""`sparsim crosscheck`: measured kernels beside the GPU model, a MAPE line, a report and a scatter."""

from pathlib import Path

import pandas as pd
import pytest

from analysis.crosscheck import crosscheck, ops_for, predict_observed_s, predict_s
from analysis.importers import MeasuredKernel, load_measured
from cli_helpers import run_cli
from conftest import ARCH_DIR, ROOT
from simulator.errors import SparsimInputError
from simulator.spec import load_arch

A100 = ARCH_DIR / "gpu_a100_sxm4_80gb.yaml"
H100 = ARCH_DIR / "gpu_h100_sxm5_80gb.yaml"
MI210 = ARCH_DIR / "gpu_mi210.yaml"
DATA = Path(__file__).parent / "data" / "importers"
MI210_CSV = ROOT / "analysis" / "measured" / "mi210_llmcompass_fp16.csv"
needs_mi210 = pytest.mark.skipif(not MI210_CSV.exists(), reason="analysis/measured/mi210_llmcompass_fp16.csv absent")


@needs_mi210
def test_mi210_measured_gemms_are_predicted_within_10_percent_mape(capsys, tmp_path):
    report, plot = tmp_path / "report.csv", tmp_path / "scatter.png"
    code, out, _ = run_cli(capsys, "crosscheck", "--arch", MI210, "--measured", MI210_CSV,
                           "--out", report, "--plot", plot)
    assert code == 0
    last = out.strip().splitlines()[-1]
    assert last.startswith("MAPE: ") and last.endswith("% over 22 kernels")
    assert float(last.split()[1].rstrip("%")) <= 10.0
    df = pd.read_csv(report)
    assert len(df) == 22
    assert list(df.columns[:6]) == ["kernel", "dtype", "shape", "measured_ms", "predicted_ms", "error_pct"]
    recomputed = ((df["predicted_ms"] - df["measured_ms"]) / df["measured_ms"] * 100).abs().mean()
    assert f"{recomputed:.1f}%" in last
    assert plot.stat().st_size > 10_000 and plot.read_bytes()[:4] == b"\x89PNG"


@needs_mi210
def test_mi210_large_gemms_alone_are_within_5_percent():
    result = crosscheck(load_arch(MI210), load_measured(MI210_CSV))
    big = result.rows[result.rows["measured_ms"] > 1.0]
    assert len(big) >= 10
    assert big["error_pct"].abs().mean() < 5.0


def test_h100_spec_reproduces_the_published_8192_cubed_bf16_measurement(tmp_path):
    # Measured on an H100 80GB HBM3 (PyTorch, bf16): 8192^3 at ~770-800 TFLOP/s; take the middle.
    measured_ms = 2 * 8192 ** 3 / 785e12 * 1e3
    f = tmp_path / "h100.csv"
    f.write_text(f"M,N,K,dtype,latency_ms\n8192,8192,8192,bf16,{measured_ms:.6f}\n")
    result = crosscheck(load_arch(H100), load_measured(f))
    assert abs(result.rows["error_pct"].iloc[0]) < 3.0


def test_a_file_without_dtype_is_read_as_the_dtype_option(capsys, tmp_path):
    f = tmp_path / "plain.csv"
    f.write_text("M,N,K,latency_ms\n4096,4096,4096,0.6\n")
    code, out, _ = run_cli(capsys, "crosscheck", "--arch", A100, "--measured", f, "--dtype", "int8")
    assert code == 0 and " int8 " in out
    code, out, _ = run_cli(capsys, "crosscheck", "--arch", A100, "--measured", f)
    assert code == 0 and " fp16 " in out


def test_every_harness_kernel_kind_is_simulated(capsys):
    code, out, _ = run_cli(capsys, "crosscheck", "--arch", A100, "--measured", DATA / "synthetic_harness.csv")
    assert code == 0
    assert out.strip().splitlines()[-1].endswith("over 6 kernels")
    for kind in ("gemm_2to4", "gemv", "sdpa", "moe_gemm"):
        assert kind in out


def test_sdpa_is_one_fused_kernel_of_two_halves_and_int8_writes_int32():
    sdpa = MeasuredKernel(kernel="sdpa", dtype="fp16", latency_s=1e-3, batch=2, heads=8, q_len=128, kv_len=128,
                          head_dim=64)
    assert [op.kind for op in ops_for(sdpa)] == ["attention_qk", "attention_pv"]
    int8 = MeasuredKernel(kernel="gemm", dtype="int8", latency_s=1e-3, M=64, N=64, K=64)
    assert ops_for(int8)[0].precision.outputs == 32
    assert predict_s(int8, load_arch(A100)) > 0


def test_kernels_the_spec_cannot_run_are_warned_about_and_left_out(capsys):
    # fp8 is not in the MI210 spec: a per-row warning, the fp16 row still counts.
    code, out, _ = run_cli(capsys, "crosscheck", "--arch", MI210, "--measured", DATA / "bad_dtype_unsupported.csv")
    assert code == 0
    assert "warning" in out and "cannot run on gpu_mi210" in out and "no fp8 tensor rate" in out
    assert out.strip().splitlines()[-1].endswith("over 1 kernels")


def test_bad_times_are_reported_per_row_and_the_rest_is_checked(capsys):
    code, out, _ = run_cli(capsys, "crosscheck", "--arch", A100, "--measured", DATA / "bad_times.csv")
    assert code == 0
    assert out.count("not positive") == 2
    assert out.strip().splitlines()[-1].endswith("over 1 kernels")


def test_unknown_columns_exit_2_with_one_line(capsys):
    code, _, err = run_cli(capsys, "crosscheck", "--arch", A100, "--measured", DATA / "bad_unknown_columns.csv")
    assert code == 2
    assert err.startswith("error: ") and "gpu_temperature" in err and len(err.strip().splitlines()) == 1


def test_a_non_gpu_arch_is_refused(capsys):
    code, _, err = run_cli(capsys, "crosscheck", "--arch", ARCH_DIR / "edge_npu_32x32_os.yaml",
                           "--measured", DATA / "synthetic_minimal_locale.csv")
    assert code == 2 and "compute kind" in err


def test_set_overrides_change_the_prediction(capsys, tmp_path):
    f = tmp_path / "one.csv"
    f.write_text("M,N,K,latency_ms\n8192,8192,8192,4.0\n")
    report = tmp_path / "r.csv"
    run_cli(capsys, "crosscheck", "-a", A100, "--measured", f, "--out", report, "-q")
    base = pd.read_csv(report)["predicted_ms"].iloc[0]
    half = load_arch(A100).compute.efficiency.tensor / 2
    run_cli(capsys, "crosscheck", "-a", A100, "--measured", f, "--out", report, "-q",
            "--set", f"compute.efficiency.tensor={half}")
    assert pd.read_csv(report)["predicted_ms"].iloc[0] == pytest.approx(2 * base, rel=0.05)


def test_crosscheck_needs_at_least_one_simulable_kernel(tmp_path):
    f = tmp_path / "fp8.csv"
    f.write_text("M,N,K,dtype,latency_ms\n64,64,64,fp8,0.01\n")
    result = crosscheck(load_arch(MI210), load_measured(f))
    assert result.n == 0 and result.warnings
    with pytest.raises(SparsimInputError):
        from analysis.cli_gpu import crosscheck as cli_crosscheck
        cli_crosscheck(arch=MI210, measured=f, dtype="fp16", set_=[], out=None, plot=None, quiet=True)


def test_a_shape_larger_than_the_gpus_memory_is_a_per_row_warning(tmp_path):
    f = tmp_path / "huge.csv"
    f.write_text("M,N,K,latency_ms\n250000,250000,1024,100\n4096,4096,4096,0.6\n")
    result = crosscheck(load_arch(A100), load_measured(f))
    assert result.n == 1
    assert len(result.warnings) == 1 and "huge.csv:2" in result.warnings[0] and "GiB of HBM" in result.warnings[0]


# ----------------------------------------------------------------------------- MoE rows, validation sets

def test_a_measured_moe_row_is_modelled_as_the_per_expert_gemms_the_harness_times():
    k = MeasuredKernel(kernel="moe_gemm", dtype="fp16", latency_s=1e-3, N=14336, K=4096,
                       tokens_per_expert=(300, 0, 100, 12))
    ops = ops_for(k)
    assert [op.kind for op in ops] == ["gemm"] * 3
    assert [op.dims.M for op in ops] == [300, 100, 12]
    arch = load_arch(H100)
    assert predict_s(k, arch) == pytest.approx(sum(
        predict_s(MeasuredKernel(kernel="gemm", dtype="fp16", latency_s=1.0, M=t, N=14336, K=4096), arch)
        for t in (300, 100, 12)))


MANIFEST = ROOT / "analysis" / "measured" / "sets.yaml"


@pytest.mark.parametrize("name", ["published_a100_fp16", "published_h100_fp16"])
def test_published_a100_and_h100_timings_are_reproduced_within_10_percent(name):
    from analysis.crosscheck import load_sets
    vs = next(v for v in load_sets(MANIFEST) if v.name == name)
    assert vs.role == "calibration"          # the factors were set on these numbers: a fit, not a validation
    assert vs.timing is not None and vs.set_on   # how they were timed and what was set on them is stated
    result = crosscheck(load_arch(vs.arch), load_measured(vs.measured), vs.timing)
    assert result.n >= 10 and result.mape_pct <= 10.0
    assert result.log_correlation > 0.99


def test_validate_gpu_regenerates_tables_plots_and_the_docs_block(capsys, tmp_path):
    from analysis.crosscheck import VALIDATION_BEGIN, VALIDATION_END
    docs = tmp_path / "gpu.md"
    docs.write_text(f"# t\n\nbefore\n\n{VALIDATION_BEGIN}\nstale\n{VALIDATION_END}\n\nafter\n")
    out = tmp_path / "val"
    code, stdout, _ = run_cli(capsys, "validate-gpu", "--manifest", MANIFEST, "--out-dir", out, "--docs", docs)
    assert code == 0
    assert "published_a100_fp16 (calibration): MAPE: " in stdout
    text = docs.read_text()
    assert "stale" not in text and text.startswith("# t\n\nbefore") and text.endswith("after\n")
    assert text.count("MAPE: ") >= 2 and "| gemm | fp16 | 64x16384x16384 |" in text
    assert "Model outputs without a measurement" in text and "| 12288 |" in text
    for name in ("published_a100_fp16", "published_h100_fp16"):
        assert (out / f"{name}_scatter.png").read_bytes()[:4] == b"\x89PNG"
        assert len(pd.read_csv(out / f"{name}_report.csv")) >= 10
    assert (out / "validation.md").exists()


@needs_mi210
def test_committed_docs_validation_block_is_up_to_date(tmp_path):
    from analysis.crosscheck import VALIDATION_BEGIN, VALIDATION_END, regenerate_validation
    committed = (ROOT / "docs" / "gpu.md").read_text()
    copy = tmp_path / "docs" / "gpu.md"
    copy.parent.mkdir()
    copy.write_text(committed)
    # The links in the block are relative to docs/, so regenerate from an identical layout.
    regenerate_validation(MANIFEST, tmp_path / "val", copy)
    block = lambda t: t.split(VALIDATION_BEGIN)[1].split(VALIDATION_END)[0]  # noqa: E731
    strip_links = lambda t: "\n".join(ln for ln in t.splitlines()  # noqa: E731
                                      if not ln.startswith("![") and "Spec `" not in ln)
    assert strip_links(block(copy.read_text())) == strip_links(block(committed)), \
        "docs/gpu.md is stale: run `sparsim validate-gpu`"


def test_a_set_whose_file_is_absent_is_reported_as_skipped(capsys, tmp_path):
    manifest = tmp_path / "sets.yaml"
    manifest.write_text(f"sets:\n  - name: gone\n    arch: {ARCH_DIR / 'gpu_a100_sxm4_80gb.yaml'}\n"
                        f"    measured: {tmp_path / 'nope.csv'}\n    role: held_out\n")
    code, stdout, _ = run_cli(capsys, "validate-gpu", "--manifest", manifest, "--out-dir", tmp_path / "v", "--no-docs")
    assert code == 0 and "skipped gone" in stdout
    assert "not present in this checkout" in (tmp_path / "v" / "validation.md").read_text()


@pytest.mark.parametrize("body, message", [
    ("sets: []\n", "non-empty 'sets:'"),
    ("sets:\n  - name: x\n    arch: a.yaml\n    measured: m.csv\n    role: fitted\n", "unknown role 'fitted'"),
    ("sets:\n  - name: x\n    arch: a.yaml\n    measured: m.csv\n    colour: red\n", "unknown key"),
    ("sets:\n  - name: x\n    measured: m.csv\n", "missing arch"),
])
def test_a_bad_manifest_is_one_error_line(capsys, tmp_path, body, message):
    manifest = tmp_path / "sets.yaml"
    manifest.write_text(body)
    code, _, err = run_cli(capsys, "validate-gpu", "--manifest", manifest, "--out-dir", tmp_path / "v", "--no-docs")
    assert code == 2 and err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1


# ----------------------------------------------------------------------------- timing method as data (issue 13)

def _one_row(tmp_path, M, N, K, ms):
    f = tmp_path / "one.csv"
    f.write_text(f"M,N,K,latency_ms\n{M},{N},{K},{ms}\n")
    return load_measured(f)


def test_the_timing_method_adds_its_per_call_floor_not_the_gpu(tmp_path):
    from analysis.timing import TimingMethod
    arch = load_arch(A100)
    k = MeasuredKernel(kernel="gemm", dtype="fp16", latency_s=1.0, M=8192, N=64, K=64)
    model = predict_s(k, arch)
    no_launch = load_arch(A100, ["compute.launch_overhead_us=0"])
    data = _one_row(tmp_path, 8192, 64, 64, 0.03)
    rows = lambda t: crosscheck(arch, data, t).rows.iloc[0]  # noqa: E731
    assert rows(TimingMethod("kernel"))["predicted_ms"] == pytest.approx(predict_s(k, no_launch) * 1e3)
    assert rows(TimingMethod("events_sync", 25.0))["predicted_ms"] == pytest.approx(model * 1e3 + 0.025)
    assert rows(TimingMethod("events_queued", 25.0))["predicted_ms"] == pytest.approx(max(model * 1e3, 0.025))
    # A measured floor (a trivial call) minus the GPU's launch time is the host's per-call share.
    floor = TimingMethod("events_sync", floor_us=31.0)
    assert rows(floor)["predicted_ms"] == pytest.approx(model * 1e3 + (31.0 - 5.0) * 1e-3)
    # Large kernels barely notice the floor.
    big = MeasuredKernel(kernel="gemm", dtype="fp16", latency_s=1.0, M=8192, N=8192, K=8192)
    assert predict_observed_s(big, arch, TimingMethod("events_sync", 25.0)) / predict_s(big, arch) < 1.01


def test_a_harness_csv_states_its_timing_and_measured_floor(tmp_path):
    f = tmp_path / "h.csv"
    f.write_text("kernel,dtype,M,N,K,latency_ms,timing,floor_us\n"
                 "gemm,fp16,64,64,64,0.03,events_sync,28.5\ngemm,fp16,128,64,64,0.031,events_sync,28.5\n")
    data = load_measured(f)
    assert data.timing.method == "events_sync" and data.timing.floor_us == 28.5
    mixed = tmp_path / "m.csv"
    mixed.write_text("kernel,dtype,M,N,K,latency_ms,timing\ngemm,fp16,64,64,64,0.03,events_sync\n"
                     "gemm,fp16,64,64,64,0.03,kernel\n")
    with pytest.raises(SparsimInputError, match="timed in different ways"):
        load_measured(mixed)


def test_crosscheck_cli_takes_a_timing_method_and_refuses_an_unknown_one(capsys, tmp_path):
    f = tmp_path / "one.csv"
    f.write_text("M,N,K,latency_ms\n8192,64,64,0.03\n")
    code, out, _ = run_cli(capsys, "crosscheck", "--arch", A100, "--measured", f, "--timing", "kernel")
    assert code == 0 and "timing: kernel-only" in out
    code, out, err = run_cli(capsys, "crosscheck", "--arch", A100, "--measured", f, "--timing", "stopwatch")
    assert code == 2 and "unknown timing method 'stopwatch'" in out + err


def test_leave_one_set_out_refits_the_shared_factors_without_the_set():
    from analysis.loso import leave_one_set_out
    results = {r.set: r for r in leave_one_set_out(MANIFEST)}
    assert set(results) == {"published_a100_fp16", "published_h100_fp16"}
    for r in results.values():
        assert r.fit_mape_pct > 0 and r.loso_mape_pct > 0
        assert set(r.values) == {"compute.k_iteration_overhead_cycles", "compute.efficiency.sparse_tensor",
                                 "compute.memory_latency_ns"}
    # The H100 set has no 2:4 rows, so its fit cannot inform sparse_tensor; the A100 LOSO still runs.
    assert results["published_a100_fp16"].loso_mape_pct < 30.0
