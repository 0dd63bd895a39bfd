"""Measurement harness: shape grids, CSV schema and labels are checked on CPU; without CUDA it says
so and `sparsim measure` exits 2; the real timing runs only where a CUDA GPU is present."""

import csv
import sys
import types

import pytest

from analysis.importers import load_measured, parse_label
from analysis.measure import harness
from analysis.measure.harness import CSV_COLUMNS, Case, Grid, Timing, build_cases, moe_token_split, row_for, write_csv
from cli_helpers import run_cli
from simulator.errors import SparsimInputError


def _cuda_available() -> bool:
    try:
        import torch
        return torch.cuda.is_available()
    except ImportError:
        return False


needs_cuda = pytest.mark.skipif(not _cuda_available(), reason="needs a CUDA GPU and PyTorch")


def test_full_grid_covers_every_suite_and_dtype():
    cases = build_cases(Grid())
    kinds = {(c.kernel, c.dtype) for c in cases}
    for dtype in ("fp16", "bf16"):
        for kernel in ("gemm", "gemm_2to4", "gemv", "sdpa", "moe_gemm"):
            assert (kernel, dtype) in kinds
    assert ("gemm", "int8") in kinds
    assert not any(c.dtype == "int8" and c.kernel != "gemm" for c in cases)   # 2:4, SDPA, MoE are float-only here
    assert len(cases) == len(set(cases))


def test_gemm_grid_spans_skinny_to_large_and_decode_gemv_spans_m_1_to_16():
    cases = build_cases(Grid(), ["gemm", "gemv"], ["fp16"])
    gemm_m = {c.M for c in cases if c.kernel == "gemm"}
    assert min(gemm_m) == 64 and max(gemm_m) >= 8192
    assert {c.M for c in cases if c.kernel == "gemv"} == {1, 2, 4, 8, 16}
    # Decode shapes are also measured 2:4-sparse, the case where no speedup is expected.
    assert any(c.kernel == "gemm_2to4" and c.M == 1 for c in cases)


def test_int8_cases_respect_the_int_mm_shape_rules():
    for c in build_cases(Grid(), ["gemm"], ["int8"]):
        assert c.M > 16 and c.K % 8 == 0 and c.N % 8 == 0


def test_semi_structured_cases_have_weight_dims_to_sparse_semi_structured_accepts():
    for c in build_cases(Grid(), ["gemm_2to4"], ["fp16"]):
        assert c.N % 64 == 0 and c.K % 128 == 0


def test_sdpa_cases_keep_the_token_count_while_sequence_length_grows():
    grid = Grid()
    cases = build_cases(grid, ["sdpa"], ["fp16"])
    assert [c.q_len for c in cases] == list(grid.sdpa_seq)
    assert all(c.batch * c.q_len == grid.sdpa_tokens for c in cases)


def test_moe_token_split_is_skewed_and_sums_to_the_total():
    split = moe_token_split(512, 8)
    assert sum(split) == 512 and len(split) == 8
    assert list(split) == sorted(split, reverse=True) and split[0] > split[-1]


def test_quick_grid_is_a_small_subset():
    assert 0 < len(build_cases(Grid.quick())) < len(build_cases(Grid())) / 3


def test_unknown_suite_or_dtype_is_a_clear_error():
    with pytest.raises(SparsimInputError, match="unknown suite 'conv'"):
        build_cases(Grid(), ["conv"])
    with pytest.raises(SparsimInputError, match="unknown dtype 'fp64'"):
        build_cases(Grid(), ["gemm"], ["fp64"])


def test_labels_carry_the_shape_so_profiler_exports_can_be_imported():
    for case in build_cases(Grid.quick()):
        fields = parse_label(case.label)
        assert fields["kernel"] == case.kernel and fields["dtype"] == case.dtype
        for dim in ("M", "N", "K", "heads", "q_len", "kv_len", "head_dim"):
            if getattr(case, dim):
                assert fields[dim] == getattr(case, dim)


def test_rows_follow_the_csv_schema_and_read_back_through_the_importer(tmp_path):
    env = {"device": "CPU-only test", "sm_count": 0, "torch": "n/a", "date_utc": "2026-01-01T00:00:00Z"}
    cases = build_cases(Grid.quick(), dtypes=["fp16"])
    rows = [row_for(c, Timing(median_ms=1.0 + i, min_ms=0.9 + i, max_ms=1.2 + i), env, 10, 50)
            for i, c in enumerate(cases)]
    path = write_csv(rows, tmp_path / "h.csv")
    with path.open() as fh:
        header = next(csv.reader(fh))
    assert tuple(header) == CSV_COLUMNS
    measured = load_measured(path)
    assert measured.format == "harness" and not measured.warnings
    assert len(measured.kernels) == len(cases)
    assert sorted(k.latency_s for k in measured.kernels) == pytest.approx([(1.0 + i) * 1e-3 for i in range(len(cases))])


def test_tflops_column_is_work_over_median_time():
    row = row_for(Case("gemm", "fp16", M=1024, N=1024, K=1024), Timing(2.0, 1.9, 2.1), {}, 1, 3)
    assert float(row["tflops"]) == pytest.approx(2 * 1024 ** 3 / 2e-3 / 1e12, rel=1e-5)


def test_without_torch_the_harness_says_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)           # import torch -> ImportError
    with pytest.raises(SparsimInputError, match="PyTorch is not installed"):
        harness.require_cuda()


def test_without_a_cuda_gpu_the_harness_says_so(monkeypatch):
    fake = types.SimpleNamespace(cuda=types.SimpleNamespace(is_available=lambda: False))
    monkeypatch.setitem(sys.modules, "torch", fake)
    with pytest.raises(SparsimInputError, match="no CUDA GPU"):
        harness.require_cuda()


@pytest.mark.skipif(_cuda_available(), reason="this machine has a CUDA GPU")
def test_sparsim_measure_exits_2_with_one_line_without_a_gpu(capsys, tmp_path):
    code, _, err = run_cli(capsys, "measure", "--out", tmp_path / "m.csv", "--quick")
    assert code == 2
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m.csv").exists()


def test_measure_dry_run_lists_cases_without_a_gpu(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "measure", "--out", tmp_path / "m.csv", "--quick", "--suite", "gemm",
                           "--dtype", "fp16", "--dry-run")
    assert code == 0
    assert "sparsim gemm M=64 N=4096 K=4096 dtype=fp16" in out
    assert out.strip().endswith(f"{len(build_cases(Grid.quick(), ['gemm'], ['fp16']))} cases")


def test_prune_2_4_keeps_two_of_every_four():
    torch = pytest.importorskip("torch")
    w = torch.randn(8, 16)
    pruned = harness.prune_2_4(torch, w)
    assert ((pruned.reshape(-1, 4) != 0).sum(dim=1) <= 2).all()


@needs_cuda
@pytest.mark.gpu
def test_quick_gemm_measurement_on_the_gpu_writes_a_readable_csv(tmp_path):
    out = tmp_path / "gpu.csv"
    grid = Grid(gemm_m=(256,), gemm_nk=((1024, 1024),), square=(), gemv_m=(1,), gemv_nk=((1024, 1024),))
    rows = harness.run(out, grid=grid, suites=["gemm", "gemv"], dtypes=["fp16"], warmup=2, repeats=5)
    assert rows and all(float(r["latency_ms"]) > 0 for r in rows)
    assert load_measured(out).kernels
