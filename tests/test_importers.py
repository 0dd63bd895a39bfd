"""Measured-data importers: every supported format, units read from the file, locale-formatted
numbers, and one clear error or a per-row warning for every bad input."""

from pathlib import Path

import pytest

from analysis.importers import (detect_format, load_measured, parse_duration_s, parse_label, parse_number,
                                shape_label, unit_of_column)
from simulator.errors import SparsimInputError

DATA = Path(__file__).parent / "data" / "importers"


def by_shape(measured):
    return {(k.kernel, k.dtype, k.shape): k.latency_s for k in measured.kernels}


@pytest.mark.parametrize("text, value", [
    ("1,234.5", 1234.5), ("1.234,5", 1234.5), ("12,5", 12.5), ("0,25", 0.25), ("1,234", 1234.0),
    ("12,345,678", 12345678.0), ("1 234.5", 1234.5), ("1\u00a0234,5", 1234.5), ("-3.5", -3.5), ("42", 42.0),
])
def test_numbers_are_read_as_people_and_profilers_print_them(text, value):
    assert parse_number(text) == pytest.approx(value)


@pytest.mark.parametrize("text, unit, seconds", [
    ("12.3us", None, 12.3e-6), ("1.5ms", None, 1.5e-3), ("2s", None, 2.0), ("700ns", None, 7e-7),
    ("12.3 µs", None, 12.3e-6), ("4.01", "msecond", 4.01e-3), ("70,912", "nsecond", 70.912e-6),
])
def test_durations_carry_their_own_unit_or_take_the_header_unit(text, unit, seconds):
    assert parse_duration_s(text, unit) == pytest.approx(seconds)


def test_a_bare_number_without_any_unit_is_refused():
    with pytest.raises(ValueError, match="no time unit"):
        parse_duration_s("12.5")


@pytest.mark.parametrize("column, unit", [("latency_ms", "ms"), ("time_us", "us"), ("Med (ns)", "ns"),
                                          ("duration [s]", "s"), ("latency", None), ("tflops", None)])
def test_time_units_are_read_from_column_names(column, unit):
    assert unit_of_column(column) == unit


def test_shape_labels_round_trip():
    label = shape_label("gemm", "bf16", M=64, N=4096, K=128)
    assert parse_label(label) == {"kernel": "gemm", "M": 64, "N": 4096, "K": 128, "dtype": "bf16"}
    moe = parse_label(shape_label("moe_gemm", "fp16", N=8, K=16, tokens_per_expert=(3, 0, 5)))
    assert moe["tokens_per_expert"] == (3, 0, 5)
    assert parse_label("ampere_fp16_s16816gemm_fp16_128x128") is None


def test_harness_csv_reads_every_kernel_kind():
    m = load_measured(DATA / "synthetic_harness.csv")
    assert m.format == "harness" and not m.warnings
    kinds = {k.kernel for k in m.kernels}
    assert kinds == {"gemm", "gemm_2to4", "gemv", "sdpa", "moe_gemm"}
    moe = next(k for k in m.kernels if k.kernel == "moe_gemm")
    assert moe.tokens_per_expert == (114, 100, 86, 72, 56, 42, 28, 14)
    sdpa = next(k for k in m.kernels if k.kernel == "sdpa")
    assert (sdpa.batch, sdpa.heads, sdpa.q_len, sdpa.head_dim) == (8, 32, 2048, 128)
    assert sdpa.latency_s == pytest.approx(1.9e-3)


def test_minimal_csv_with_locale_numbers_and_a_microsecond_column():
    m = load_measured(DATA / "synthetic_minimal_locale.csv")
    assert m.format == "minimal"
    t = by_shape(m)
    assert t[("gemm", "fp16", "64x4096x4096")] == pytest.approx(1234.5e-6)
    assert t[("gemm", "bf16", "128x4096x4096")] == pytest.approx(1250.25e-6)
    assert t[("gemm", "fp16", "1024x1024x1024")] == pytest.approx(12.5e-6)


def test_minimal_csv_without_dtype_takes_the_default_dtype(tmp_path):
    f = tmp_path / "m.csv"
    f.write_text("M,N,K,latency_ms,tflops\n64,128,256,0.01,0.4\n")
    assert load_measured(f, default_dtype="bf16").kernels[0].dtype == "bf16"
    assert load_measured(f).kernels[0].dtype == "fp16"


def test_ncu_long_format_mixes_msecond_usecond_and_nsecond_with_thousands_commas():
    m = load_measured(DATA / "synthetic_ncu_long.csv")
    assert m.format == "ncu"
    t = by_shape(m)
    assert t[("gemm", "fp16", "8192x8192x8192")] == pytest.approx(4.01e-3)
    assert t[("gemm", "fp16", "1024x1024x1024")] == pytest.approx(12.35e-6)
    assert t[("gemm", "bf16", "2048x2048x2048")] == pytest.approx(70.912e-6)
    # The unlabelled elementwise kernel is reported, not silently dropped.
    assert len(m.warnings) == 1 and "vectorized_elementwise_kernel" in m.warnings[0]


def test_ncu_raw_page_takes_units_from_the_second_header_row_and_the_median_of_repeats():
    m = load_measured(DATA / "synthetic_ncu_raw.csv")
    assert m.format == "ncu_raw"
    t = by_shape(m)
    assert t[("gemm", "fp16", "4096x4096x4096")] == pytest.approx(1234.5e-6)   # median of 1229, 1234.5, 1240
    assert t[("gemv", "fp16", "1x4096x4096")] == pytest.approx(15.2e-6)


def test_nsys_kernel_summary_uses_the_median_column_and_its_unit():
    m = load_measured(DATA / "synthetic_nsys_kern_sum.csv")
    assert m.format == "nsys"
    t = by_shape(m)
    assert t[("gemm", "fp16", "4096x4096x4096")] == pytest.approx(501.5e-6)
    assert t[("gemm_2to4", "fp16", "4096x4096x4096")] == pytest.approx(246.0e-6)
    assert any("ampere_fp16_s16816gemm" in w for w in m.warnings)


def test_nsys_nvtx_kernel_summary_adds_the_kernels_of_one_range():
    m = load_measured(DATA / "synthetic_nsys_nvtx_kern_sum.csv")
    (k,) = m.kernels
    assert k.latency_s == pytest.approx(160e-6 + 5e-6)   # GEMM + split-K reduce


def test_torch_profiler_table_reads_each_cells_own_unit():
    m = load_measured(DATA / "synthetic_torch_profiler.txt")
    assert m.format == "torch_profiler"
    t = by_shape(m)
    assert t[("gemm", "bf16", "8192x8192x8192")] == pytest.approx(3.95e-3)
    assert t[("gemm", "fp16", "1024x1024x1024")] == pytest.approx(15e-6)
    assert any("aten::mm" in w for w in m.warnings)


def test_unknown_columns_are_one_clear_error():
    with pytest.raises(SparsimInputError, match="unknown column.*gpu_temperature") as err:
        load_measured(DATA / "bad_unknown_columns.csv")
    assert err.value.hint and "latency_ms" in err.value.hint


def test_zero_negative_and_unreadable_times_are_per_row_warnings():
    m = load_measured(DATA / "bad_times.csv")
    assert len(m.kernels) == 1
    assert len(m.warnings) == 3
    assert any(":3:" in w and "not positive" in w for w in m.warnings)
    assert any(":4:" in w and "not positive" in w for w in m.warnings)
    assert any(":5:" in w and "abc" in w for w in m.warnings)


def test_a_time_column_without_a_unit_is_refused():
    with pytest.raises(SparsimInputError, match="no time column with a unit"):
        load_measured(DATA / "bad_no_time_unit.csv")


def test_a_file_where_no_row_survives_is_an_error_listing_why(tmp_path):
    f = tmp_path / "all_bad.csv"
    f.write_text("M,N,K,latency_ms\n64,64,64,0\n")
    with pytest.raises(SparsimInputError, match="no usable kernels.*not positive"):
        load_measured(f)


def test_unrecognised_empty_and_missing_files_are_clear_errors(tmp_path):
    odd = tmp_path / "odd.csv"
    odd.write_text("a,b\n1,2\n")
    with pytest.raises(SparsimInputError, match="unrecognised measured-data format"):
        load_measured(odd)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(SparsimInputError, match="empty file"):
        load_measured(empty)
    with pytest.raises(SparsimInputError, match="not found"):
        load_measured(tmp_path / "nope.csv")


def test_format_detection():
    assert detect_format((DATA / "synthetic_harness.csv").read_text()) == "harness"
    assert detect_format((DATA / "synthetic_ncu_long.csv").read_text()) == "ncu"
    assert detect_format((DATA / "synthetic_ncu_raw.csv").read_text()) == "ncu_raw"
    assert detect_format((DATA / "synthetic_nsys_kern_sum.csv").read_text()) == "nsys"
    assert detect_format((DATA / "synthetic_torch_profiler.txt").read_text()) == "torch_profiler"


def test_dtype_names_as_torch_prints_them_are_accepted(tmp_path):
    f = tmp_path / "dtypes.csv"
    f.write_text("M,N,K,dtype,latency_ms\n64,64,64,torch.float16,0.01\n64,64,64,bfloat16,0.01\n64,64,64,half,0.01\n"
                 "64,64,64,fp64,0.01\n")
    m = load_measured(f)
    assert [k.dtype for k in m.kernels] == ["fp16", "bf16", "fp16"]
    assert len(m.warnings) == 1 and ":5:" in m.warnings[0] and "unknown dtype 'fp64'" in m.warnings[0]
    assert load_measured(f, default_dtype="float16").kernels[0].dtype == "fp16"
