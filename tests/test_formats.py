"""Compressed formats: bits per element with metadata, and the floor of the value bytes."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.errors import SparsimInputError
from simulator.formats import FORMATS, RLE_RUN_BITS, bits_per_element
from simulator.trace import Sparsity


def test_2to4_fp16_footprint_is_half_the_values_plus_2_bit_index_per_kept_value():
    sp = Sparsity(kind="nm", n=2, m=4)
    elements = 4096 * 4096
    stored_bytes = bits_per_element(sp, "nm", 16) * elements / 8
    values_bytes = 0.5 * elements * 2           # half the fp16 values
    metadata_bytes = 0.5 * elements * 2 / 8     # 2 bits for each kept value
    assert stored_bytes == pytest.approx(values_bytes + metadata_bytes)
    assert stored_bytes / (elements * 2) == pytest.approx(9 / 16)


def test_nm_metadata_is_ceil_log2_m_bits_per_kept_value():
    for n, m, idx in [(1, 4, 2), (2, 8, 3), (4, 16, 4), (1, 2, 1)]:
        sp = Sparsity(kind="nm", n=n, m=m)
        assert bits_per_element(sp, "nm", 8) == pytest.approx(n / m * (8 + idx))


def test_bitmap_costs_one_presence_bit_per_element_plus_the_nonzero_values():
    sp = Sparsity(kind="unstructured", density=0.3)
    assert bits_per_element(sp, "bitmap", 8) == pytest.approx(0.3 * 8 + 1)


def test_csr_stores_a_column_index_per_nonzero_and_a_pointer_per_row():
    sp = Sparsity(kind="unstructured", density=0.25)
    row_len = 1024
    expected = 0.25 * (8 + math.ceil(math.log2(row_len))) + 32 / row_len
    assert bits_per_element(sp, "csr", 8, row_len=row_len) == pytest.approx(expected)


def test_coo_stores_both_coordinates_per_nonzero():
    sp = Sparsity(kind="unstructured", density=0.2)
    expected = 0.2 * (8 + math.ceil(math.log2(768)) + math.ceil(math.log2(3072)))
    assert bits_per_element(sp, "coo", 8, row_len=768, n_rows=3072) == pytest.approx(expected)


def _rle_encoded_bits(mask, value_bits, run_bits):
    """Encode a 0/1 sequence as (run, value) entries: each nonzero stores the zeros before it in
    a run_bits field; a longer run first emits padding entries (run 2^r - 1 + a stored zero)."""
    positions = np.flatnonzero(mask)
    runs = np.diff(np.concatenate([[-1], positions])) - 1     # zeros before each nonzero
    padding = runs // (2 ** run_bits)                        # each padding entry covers 2^r positions
    entries = len(positions) + int(padding.sum())
    return entries * (value_bits + run_bits) / len(mask)


@pytest.mark.parametrize("density", [0.02, 0.1, 0.3, 0.7])
def test_rle_size_matches_an_explicit_encoding_of_random_zeros(density):
    rng = np.random.default_rng(3)
    mask = rng.random(2_000_000) < density
    encoded = _rle_encoded_bits(mask, 8, RLE_RUN_BITS)
    model = bits_per_element(Sparsity(kind="unstructured", density=density), "rle", 8)
    assert model == pytest.approx(encoded, rel=0.01)


def test_rle_padding_never_exceeds_one_entry_per_run_field_span():
    # Even an almost empty tensor needs at most one padding entry per 2^r zeros.
    sp = Sparsity(kind="unstructured", density=1e-4)
    assert bits_per_element(sp, "rle", 8) <= (1e-4 + 1 / 2 ** RLE_RUN_BITS) * (8 + RLE_RUN_BITS)


def test_dense_format_stores_every_value():
    assert bits_per_element(Sparsity(kind="unstructured", density=0.1), "dense", 16) == 16


def test_nm_format_on_unstructured_data_is_a_clear_error():
    with pytest.raises(SparsimInputError, match="nm"):
        bits_per_element(Sparsity(kind="unstructured", density=0.5), "nm", 8)


@settings(max_examples=200, deadline=None)
@given(density=st.floats(min_value=0.001, max_value=1.0), bits=st.sampled_from([4, 8, 16, 32]),
       fmt=st.sampled_from([f for f in FORMATS if f != "nm"]), row_len=st.integers(1, 1 << 16))
def test_compressed_storage_is_never_below_the_value_bytes(density, bits, fmt, row_len):
    sp = Sparsity(kind="unstructured", density=density)
    assert bits_per_element(sp, fmt, bits, row_len=row_len) >= density * bits - 1e-12


@settings(max_examples=100, deadline=None)
@given(m_exp=st.integers(1, 5), bits=st.sampled_from([4, 8, 16]), data=st.data())
def test_nm_storage_is_never_below_the_kept_value_bytes(m_exp, bits, data):
    m = 2 ** m_exp
    n = data.draw(st.integers(1, m))
    sp = Sparsity(kind="nm", n=n, m=m)
    assert bits_per_element(sp, "nm", bits) >= n / m * bits
