"""The two A100-class models agree on large GEMMs: the gpu engine (whole chip, library kernels) and the
Ampere-like N:M tensor-core slice (4 of the A100's SMs) give the same dense time (the slice's scaled by
SMs / 4) and the same 2:4 speedup, each within 10% (docs/gpu.md, "The two A100-class models")."""

from pathlib import Path

import pytest

from simulator import load_arch
from simulator.engines import load_engine
from simulator.trace import Op

ARCH = Path(__file__).resolve().parents[1] / "arch_configs"
SLICE_SMS = 4          # ampere_like_2to4_tc.yaml models 4 SMs (its header)
FP16 = {"activations": 16, "weights": 16, "outputs": 16}
TWO_FOUR = {"weights": {"kind": "nm", "n": 2, "m": 4}}


def dense_s_and_speedup(arch_file: str, M: int, N: int, K: int) -> tuple[float, float]:
    arch = load_arch(ARCH / arch_file)
    estimate = load_engine(arch.compute.kind).estimate
    dims = {"M": M, "N": N, "K": K}
    dense = estimate(Op(name="d", kind="gemm", dims=dims, precision=FP16), arch)
    sparse = estimate(Op(name="s", kind="gemm", dims=dims, precision=FP16, sparsity=TWO_FOUR), arch)
    return dense.cycles / arch.clock_hz, dense.cycles / sparse.cycles


@pytest.mark.parametrize("M,N,K", [(4096, 4096, 4096), (8192, 8192, 8192), (2048, 11008, 4096)])
def test_gpu_engine_and_ampere_like_slice_agree_on_large_gemms(M, N, K):
    gpu = load_arch(ARCH / "gpu_a100_sxm4_80gb.yaml")
    gpu_s, gpu_speedup = dense_s_and_speedup("gpu_a100_sxm4_80gb.yaml", M, N, K)
    slice_s, slice_speedup = dense_s_and_speedup("ampere_like_2to4_tc.yaml", M, N, K)
    chip_s = slice_s * SLICE_SMS / gpu.compute.sm_count          # 27 slices share the GEMM
    assert chip_s == pytest.approx(gpu_s, rel=0.10)
    assert slice_speedup == pytest.approx(gpu_speedup, rel=0.10)
    # both are real gains below the tensor cores' 2x math ratio
    assert 1.1 < slice_speedup < 2.0 and 1.1 < gpu_speedup < 2.0
