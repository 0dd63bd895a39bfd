"""The one dtype -> bits table: PyTorch names with or without the "torch." prefix, short GPU names."""

import pytest

from simulator.dtypes import SHORT_DTYPE_BITS, TORCH_DTYPE_BITS, torch_dtype_bits


@pytest.mark.parametrize("name, bits", [("float32", 32), ("torch.float16", 16), ("bfloat16", 16), ("half", 16),
                                        ("torch.float64", 64), ("int8", 8), ("float8_e4m3fn", 8)])
def test_torch_names_with_and_without_prefix(name, bits):
    assert torch_dtype_bits(name) == bits


def test_unknown_names_take_the_default():
    assert torch_dtype_bits("complex64") == 16 and torch_dtype_bits("torch.bool", default=8) == 8


def test_short_names_agree_with_the_torch_names_they_abbreviate():
    pairs = {"fp16": "float16", "bf16": "bfloat16", "fp32": "float32", "int8": "int8", "fp8": "float8_e4m3fn"}
    assert all(SHORT_DTYPE_BITS[s] == TORCH_DTYPE_BITS[t] for s, t in pairs.items())


def test_real_torch_dtypes_resolve_when_torch_is_installed():
    torch = pytest.importorskip("torch")
    assert [torch_dtype_bits(d) for d in (torch.float32, torch.bfloat16, torch.int8)] == [32, 16, 8]
