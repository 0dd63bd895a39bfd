"""Storage cost of compressed tensor formats: bits per dense element, metadata included.

For a tensor of density d with b-bit values (Sparseloop's vocabulary: payload + metadata):
- dense:  b (zeros stored)
- bitmap: d*b + 1                      (one presence bit per element)
- csr/csc: d*(b + ceil(log2 L)) + P/L  (column index per nonzero, a P-bit pointer per row of L elements)
- coo:    d*(b + ceil(log2 L) + ceil(log2 R))  (both coordinates per nonzero; R rows)
- rle:    (d + p)*(b + r)              (an r-bit zero-run length per entry; a run longer than 2^r - 1
                                        zeros needs padding entries (run 2^r - 1, then a stored zero),
                                        each covering 2^r positions: p = d*q^(2^r)/(1 - q^(2^r)) per element,
                                        q = 1 - d, the expected padding for i.i.d. (geometric) zero runs)
- nm:     (n/m)*(b + ceil(log2 m))     (kept values + their position in the group; needs N:M data)
Every format stores at least d*b bits, so compressed storage never drops below the value bytes.
The format is chosen per operand and memory level (`memory.<level>.formats` in the spec);
traffic and capacity checks at that level use these sizes. Engines that iterate a shortened
reduction (N:M tensor cores, SCALE-Sim's layer-wise N:M mode) convert them to bits per array
element, with N:M slots including the padding of under-full groups
(`simulator.engines.systolic.compressed_k_bits`).
"""

from __future__ import annotations

import math

from simulator.errors import SparsimInputError
from simulator.trace import Sparsity

FORMATS = ("dense", "bitmap", "csr", "csc", "coo", "rle", "nm")
POINTER_BITS = 32
RLE_RUN_BITS = 4


def _log2_ceil(x: int) -> int:
    return max(1, math.ceil(math.log2(max(2, x))))


def rle_padding_per_element(density: float, run_bits: int = RLE_RUN_BITS) -> float:
    """Expected RLE padding entries per dense element for i.i.d. zeros at `density`.

    The zero run before a nonzero is geometric, P(run >= L) = q^L (q = 1 - d); a run of L zeros
    needs floor(L / 2^r) padding entries, so E = sum_k q^(k 2^r) = q^(2^r) / (1 - q^(2^r)) per
    nonzero, d times that per element (tends to 1/2^r as d -> 0: one entry per 2^r zeros).
    Runs at the end of a row without a closing nonzero are ignored.
    """
    q = 1.0 - density
    if q <= 0.0:
        return 0.0
    cover = q ** (2 ** run_bits)
    return density * cover / (1.0 - cover)


def bits_per_element(sparsity: Sparsity, fmt: str, value_bits: float, row_len: int = 1024,
                     n_rows: int = 1024) -> float:
    """Average stored bits per *dense* element of a tensor with `sparsity` in format `fmt`."""
    d = sparsity.effective_density
    if fmt == "dense":
        return float(value_bits)
    if fmt == "bitmap":
        return d * value_bits + 1.0
    if fmt in ("csr", "csc"):
        return d * (value_bits + _log2_ceil(row_len)) + POINTER_BITS / max(1, row_len)
    if fmt == "coo":
        return d * (value_bits + _log2_ceil(row_len) + _log2_ceil(n_rows))
    if fmt == "rle":
        return (d + rle_padding_per_element(d)) * (value_bits + RLE_RUN_BITS)
    if fmt == "nm":
        if sparsity.kind != "nm":
            raise SparsimInputError(f"format 'nm' needs N:M-sparse data, but the operand is {sparsity.label}",
                                    field="formats", hint="use bitmap/csr/rle for unstructured data, or dense")
        index = math.ceil(math.log2(sparsity.m)) if sparsity.m > 1 else 0
        return sparsity.n / sparsity.m * (value_bits + index)
    raise SparsimInputError(f"unknown format '{fmt}'", field="formats", hint="one of " + ", ".join(FORMATS))
