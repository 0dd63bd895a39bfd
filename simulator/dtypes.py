"""Bits per value of each numeric dtype name: the one table the trace builders and engines share.

Two spellings exist in the wild and both are listed:
- PyTorch names (`torch.float16` prints as "torch.float16"; Hugging Face configs write
  `torch_dtype: "bfloat16"`; "float"/"half" are PyTorch aliases);
- the short names of GPU datasheets and kernels ("fp16", "bf16", "tf32", "fp8", ...).
TF32 is stored in 32-bit registers (19 significant bits), so it counts 32 here, as memory sees it.
"""

from __future__ import annotations

# PyTorch dtype names (without the "torch." prefix), as configs and `str(tensor.dtype)` spell them
TORCH_DTYPE_BITS: dict[str, int] = {"float32": 32, "float": 32, "float16": 16, "half": 16, "bfloat16": 16,
                                    "float64": 64, "int8": 8, "float8_e4m3fn": 8}
# short names used by GPU specs, kernels and measurement files
SHORT_DTYPE_BITS: dict[str, int] = {"fp16": 16, "bf16": 16, "tf32": 32, "fp32": 32, "int8": 8, "fp8": 8}


def torch_dtype_bits(dtype, default: int = 16) -> int:
    """Bits of a PyTorch dtype (a `torch.dtype` or its name, with or without "torch."); `default`
    for a name not in the table (e.g. complex or bool tensors, which carry no MACs)."""
    return TORCH_DTYPE_BITS.get(str(dtype).removeprefix("torch."), default)


__all__ = ["TORCH_DTYPE_BITS", "SHORT_DTYPE_BITS", "torch_dtype_bits"]
