"""GPU engine: specs reproduce datasheet peaks, the tile-wave GEMM model behaves like a GPU library,
2:4 sparsity gains what measured practice shows, and inputs a GPU cannot run fail clearly."""

import math

import pytest

from conftest import ARCH_DIR
from simulator.engines import gpu
from simulator.errors import SparsimInputError
from simulator.simulate import simulate
from simulator.spec import load_arch, read_yaml, arch_from_dict
from simulator.trace import Op, Trace

A100 = ARCH_DIR / "gpu_a100_sxm4_80gb.yaml"
H100 = ARCH_DIR / "gpu_h100_sxm5_80gb.yaml"
MI210 = ARCH_DIR / "gpu_mi210.yaml"
SPARSE_24 = {"weights": {"kind": "nm", "n": 2, "m": 4}}


def gemm(M, N, K, bits=16, sparsity=None, batch=1):
    out = 32 if bits == 8 else bits
    return Op(name="g", kind="gemm", dims={"M": M, "N": N, "K": K, "batch": batch},
              precision={"activations": bits, "weights": bits, "outputs": out}, sparsity=sparsity or {})


def seconds(op, arch):
    return gpu.estimate(op, arch).cycles / arch.clock_hz


def speedup_2_4(arch, M, N, K):
    return seconds(gemm(M, N, K), arch) / seconds(gemm(M, N, K, sparsity=SPARSE_24), arch)


# ----------------------------------------------------------------------------- specs vs datasheets

@pytest.mark.parametrize("path, dtype, dense_tflops, sparse_tflops", [
    (A100, "fp16", 312, 624), (A100, "bf16", 312, 624), (A100, "int8", 624, 1248),
    (H100, "fp16", 989, 1979), (H100, "int8", 1979, 3958),
    (MI210, "fp16", 181, None),
])
def test_per_sm_rates_times_sms_and_clock_give_the_datasheet_peaks(path, dtype, dense_tflops, sparse_tflops):
    arch = load_arch(path)
    rate = arch.compute.tensor_math[dtype]
    peak = rate.dense_flops_per_cycle_per_sm * arch.compute.sm_count * arch.clock_hz / 1e12
    assert peak == pytest.approx(dense_tflops, rel=0.01)
    if sparse_tflops is None:
        assert rate.sparse_2_4_flops_per_cycle_per_sm is None
    else:
        sparse = rate.sparse_2_4_flops_per_cycle_per_sm * arch.compute.sm_count * arch.clock_hz / 1e12
        assert sparse == pytest.approx(sparse_tflops, rel=0.01)


@pytest.mark.parametrize("path, hbm_gb_s, l2_mib", [(A100, 2039, 40), (H100, 3350, 50), (MI210, 1638.4, 8)])
def test_memory_levels_hold_the_datasheet_bandwidth_and_l2_size(path, hbm_gb_s, l2_mib):
    arch = load_arch(path)
    assert arch.memory["hbm"].bandwidth_bytes_per_cycle * arch.clock_hz / 1e9 == pytest.approx(hbm_gb_s, rel=0.01)
    assert arch.memory["l2"].capacity_kib == l2_mib * 1024


def test_every_spec_states_where_its_efficiency_factors_come_from():
    for path in (A100, H100, MI210):
        eff = load_arch(path).compute.efficiency
        assert len(eff.calibration) > 40
    assert "mi210_llmcompass_fp16.csv" in load_arch(MI210).compute.efficiency.calibration


# ----------------------------------------------------------------------------- published measurements

def test_h100_8192_cubed_bf16_gemm_matches_the_measured_770_to_800_tflops():
    arch = load_arch(H100)
    tflops = 2 * 8192 ** 3 / seconds(gemm(8192, 8192, 8192), arch) / 1e12
    assert 770 * 0.97 <= tflops <= 800 * 1.03


@pytest.mark.parametrize("path, peak, low, high", [(A100, 312, 0.79, 0.94), (H100, 989, 0.75, 0.82)])
@pytest.mark.parametrize("shape", [(8192, 8192, 8192), (4096, 4096, 4096), (8192, 12288, 12288)])
def test_large_fp16_gemms_reach_the_published_fraction_of_peak(path, peak, low, high, shape):
    # Bands from the measurements the specs cite (changed with issue 13): A100 fp16 79-94% of peak
    # (square-size maxima 247.6-258.7 TFLOP/s, best-shape MAMF 271, PyTorch large shapes up to ~293);
    # H100 75-82% (fp16 maxima 758-762, bf16 8192^3 770-800 TFLOP/s).
    M, N, K = shape
    tflops = 2 * M * N * K / seconds(gemm(M, N, K), load_arch(path)) / 1e12
    assert low * peak <= tflops <= high * peak


@pytest.mark.parametrize("path", [A100, H100])
@pytest.mark.parametrize("NK", [4096, 8192, 12288])
def test_m64_gemms_are_bound_by_streaming_the_weights_from_hbm(path, NK):
    arch = load_arch(path)
    spec = arch.compute
    weights = NK * NK * 2
    stream = weights / (arch.memory["hbm"].bandwidth_bytes_per_cycle * arch.clock_hz * spec.efficiency.hbm_gemm)
    t = seconds(gemm(64, NK, NK), arch)
    assert stream <= t <= 1.15 * stream + spec.launch_overhead_us * 1e-6


def test_gemm_streaming_efficiencies_default_to_the_copy_efficiency():
    eff = load_arch(MI210).compute.efficiency
    assert eff.hbm_gemm is None and eff.sparse_hbm is None
    assert gpu._hbm_efficiency(eff, "gemm") == gpu._hbm_efficiency(eff, "sparse") == eff.hbm
    a100 = load_arch(A100).compute.efficiency
    assert gpu._hbm_efficiency(a100, "stream") == a100.hbm and gpu._hbm_efficiency(a100, "gemm") == a100.hbm_gemm


def test_int8_large_gemm_is_about_twice_as_fast_as_fp16_on_a100():
    arch = load_arch(A100)
    ratio = seconds(gemm(8192, 8192, 8192), arch) / seconds(gemm(8192, 8192, 8192, bits=8), arch)
    assert 1.6 < ratio <= 2.0


# ----------------------------------------------------------------------------- 2:4 sparsity

@pytest.mark.parametrize("path", [A100, H100])
@pytest.mark.parametrize("M", [1, 4, 16])
@pytest.mark.parametrize("N, K", [(4096, 4096), (14336, 4096), (4096, 14336), (11008, 4096), (8192, 8192),
                                  (12288, 12288)])
def test_2_4_gives_about_no_speedup_on_decode_gemvs(path, M, N, K):
    # Measured: 1x4096x4096 no gain (pytorch issue 111339), decode ~12% slower (CUDALibrarySamples issue 276).
    assert 0.8 <= speedup_2_4(load_arch(path), M, N, K) <= 1.1


@pytest.mark.parametrize("path", [A100, H100])
@pytest.mark.parametrize("shape", [(4096, 4096, 4096), (8192, 8192, 8192), (16384, 16384, 16384),
                                   (8192, 12288, 12288)])
def test_2_4_speedup_on_large_compute_bound_gemms_is_between_1_1_and_1_7(path, shape):
    assert 1.1 <= speedup_2_4(load_arch(path), *shape) <= 1.7


@pytest.mark.parametrize("shape", [(4096, 4096, 4096), (8192, 8192, 8192), (8192, 12288, 12288)])
def test_a100_large_gemm_2_4_speedup_is_in_the_measured_1_2_to_1_4_band(shape):
    assert 1.2 <= speedup_2_4(load_arch(A100), *shape) <= 1.45


def test_a_kernel_that_would_pass_the_tdp_is_slowed_to_draw_exactly_the_tdp():
    # At the full boost-clock tensor rate, with free memory, the MAC energy alone would pass 400 W.
    free = ["memory.hbm.bandwidth_bytes_per_cycle=1e7", "memory.l2.bandwidth_bytes_per_cycle=1e7",
            "compute.efficiency.tensor=1.0", "compute.k_iteration_overhead_cycles=0"]
    capped, uncapped = load_arch(A100, free), load_arch(A100, free + ["compute.power=null"])
    op = gemm(8192, 8192, 8192)
    slow, fast = gpu.estimate(op, capped), gpu.estimate(op, uncapped)
    assert slow.cycles > fast.cycles and "power-limited at the 400 W TDP" in slow.note_text
    p = capped.compute.power
    kernel_s = slow.cycles / capped.clock_hz - capped.compute.launch_overhead_us * 1e-6
    from simulator.energy import level_energy_pj_per_bit, mac_energy_pj
    pj = slow.macs * mac_energy_pj(capped, 16)
    for name, level in capped.memory.items():
        read, write = level_energy_pj_per_bit(capped, level)
        pj += 8 * (slow.reads_bytes[name] * read + slow.writes_bytes[name] * write)
    watts = p.idle_w + p.sm_active_w * capped.compute.sm_count + pj * 1e-12 / kernel_s
    assert watts == pytest.approx(p.tdp_w, rel=1e-6)


@pytest.mark.parametrize("path", [A100, H100])
def test_2_4_speedup_grows_with_problem_size_as_the_per_iteration_overhead_amortises(path):
    arch = load_arch(path)
    speedups = [speedup_2_4(arch, n, n, n) for n in (1024, 2048, 4096, 8192)]
    assert all(b >= a - 0.01 for a, b in zip(speedups, speedups[1:]))
    assert speedups[-1] - speedups[0] > 0.3


def test_small_tiles_lose_more_to_the_k_iteration_overhead_than_large_ones():
    free = ["memory.hbm.bandwidth_bytes_per_cycle=1e7", "memory.l2.bandwidth_bytes_per_cycle=1e7",
            "compute.split_k=false", "compute.max_ctas_per_sm=1", "compute.power=null"]
    def tile_time(tile, overhead):
        arch = load_arch(A100, free + [f"compute.tile_shapes=[[{tile}, {tile}]]",
                                       f"compute.k_iteration_overhead_cycles={overhead}"])
        return seconds(gemm(8192, 8192, 8192), arch)
    # By hand: a tile's K-loop iteration does 2 t t k_tile / rate cycles of math plus the overhead.
    for tile in (64, 128):
        arch = load_arch(A100)
        k_tile = arch.compute.k_tile_bytes / 2
        math_per_iter = 2 * tile * tile * k_tile / (2048 * arch.compute.efficiency.tensor)
        assert tile_time(tile, 48) / tile_time(tile, 0) == pytest.approx(1 + 48 / math_per_iter, rel=0.02)


@pytest.mark.parametrize("path", [A100, H100])
def test_2_4_speedup_never_exceeds_the_2x_math_ratio(path):
    arch = load_arch(path)
    for M in (1, 8, 16, 64, 256, 1024, 4096, 16384):
        for N, K in ((4096, 4096), (14336, 4096), (12288, 12288), (1024, 8192)):
            assert speedup_2_4(arch, M, N, K) < 2.0


def test_1_4_runs_as_2_4_and_unstructured_runs_dense_with_a_note():
    arch = load_arch(A100)
    two_four = seconds(gemm(4096, 4096, 4096, sparsity=SPARSE_24), arch)
    one_four = seconds(gemm(4096, 4096, 4096, sparsity={"weights": {"kind": "nm", "n": 1, "m": 4}}), arch)
    assert one_four == pytest.approx(two_four)
    cost = gpu.estimate(gemm(4096, 4096, 4096, sparsity={"weights": {"kind": "unstructured", "density": 0.3}}), arch)
    assert cost.cycles == pytest.approx(gpu.estimate(gemm(4096, 4096, 4096), arch).cycles)
    assert "not exploited" in cost.note_text


def test_a_gpu_without_sparse_tensor_cores_runs_2_4_dense_and_says_so():
    arch = load_arch(MI210)
    cost = gpu.estimate(gemm(4096, 4096, 4096, sparsity=SPARSE_24), arch)
    assert cost.cycles == pytest.approx(gpu.estimate(gemm(4096, 4096, 4096), arch).cycles)
    assert "no sparse tensor cores" in cost.note_text


# ----------------------------------------------------------------------------- model structure

def test_decode_gemv_is_hbm_bytes_over_achievable_gemm_bandwidth_plus_one_launch():
    arch = load_arch(A100)
    spec = arch.compute
    M, N, K = 1, 4096, 4096
    bytes_moved = (M * K + K * N + M * N) * 2
    expected = bytes_moved / (arch.memory["hbm"].bandwidth_bytes_per_cycle * arch.clock_hz * spec.efficiency.hbm_gemm)
    expected += spec.launch_overhead_us * 1e-6
    assert seconds(gemm(M, N, K), arch) == pytest.approx(expected, rel=1e-6)


def test_one_tile_more_than_a_wave_costs_a_whole_extra_wave():
    # Memory made effectively free (and no power limit) so that only the tile math and its waves remain.
    arch = load_arch(A100, ["compute.tile_shapes=[[128, 128]]", "compute.max_ctas_per_sm=1", "compute.power=null",
                            "compute.split_k=false", "memory.hbm.bandwidth_bytes_per_cycle=1e7",
                            "memory.l2.bandwidth_bytes_per_cycle=1e7"])
    sms = arch.compute.sm_count
    full = seconds(gemm(128 * sms, 128, 8192), arch)
    one_more = seconds(gemm(128 * (sms + 1), 128, 8192), arch)
    assert one_more / full > 1.8


def test_skinny_long_k_gemm_uses_split_k_and_gains_from_it():
    arch = load_arch(A100)
    no_split = load_arch(A100, ["compute.split_k=false"])
    op = gemm(64, 256, 65536)
    cost = gpu.estimate(op, arch)
    assert "split-K" in cost.model and "split-K 1," not in cost.model
    assert seconds(op, arch) < 0.7 * seconds(op, no_split)


def test_tiny_kernels_cost_at_least_the_launch_overhead():
    arch = load_arch(H100)
    assert seconds(gemm(64, 64, 64), arch) >= arch.compute.launch_overhead_us * 1e-6


def test_32_bit_operands_use_the_tf32_rate_and_4_bit_operands_are_refused():
    arch = load_arch(A100)
    assert seconds(gemm(8192, 8192, 8192, bits=32), arch) > 1.8 * seconds(gemm(8192, 8192, 8192), arch)
    with pytest.raises(SparsimInputError, match="no tensor rate for 4-bit"):
        gpu.estimate(gemm(64, 64, 64, bits=4), arch)


def test_an_op_larger_than_hbm_is_refused_with_a_hint():
    arch = load_arch(A100)
    with pytest.raises(SparsimInputError, match="GiB of HBM"):
        gpu.estimate(gemm(250_000, 250_000, 1024), arch)  # C alone: 125 GB


def test_fused_attention_reads_q_k_v_once_and_writes_o_once():
    arch = load_arch(H100)
    dims = {"batch": 2, "heads": 32, "kv_heads": 8, "q_len": 4096, "kv_len": 4096, "head_dim": 128}
    qk = gpu.estimate(Op(name="qk", kind="attention_qk", dims=dims, precision={"activations": 16, "weights": 16,
                                                                                "outputs": 16}), arch)
    pv = gpu.estimate(Op(name="pv", kind="attention_pv", dims=dims, precision={"activations": 16, "weights": 16,
                                                                                "outputs": 16}), arch)
    q = 2 * 32 * 4096 * 128 * 2
    kv = 2 * 8 * 4096 * 128 * 2
    assert qk.reads_bytes["hbm"] + pv.reads_bytes["hbm"] == q + 2 * kv
    assert qk.writes_bytes["hbm"] + pv.writes_bytes["hbm"] == q          # O has Q's shape; no S/P in HBM
    flops = 4 * 2 * 32 * 4096 * 4096 * 128
    tflops = flops / ((qk.cycles + pv.cycles) / arch.clock_hz) / 1e12
    assert 300 < tflops < 989 * arch.compute.efficiency.attention * 1.001


def test_decode_attention_is_bound_by_reading_the_kv_cache():
    arch = load_arch(A100)
    dims = {"batch": 8, "heads": 32, "kv_heads": 8, "q_len": 1, "kv_len": 8192, "head_dim": 128}
    p = {"activations": 16, "weights": 16, "outputs": 16}
    total = sum(gpu.estimate(Op(name=k, kind=k, dims=dims, precision=p), arch).cycles
                for k in ("attention_qk", "attention_pv")) / arch.clock_hz
    kv_bytes = 2 * 8 * 8 * 8192 * 128 * 2
    bw = arch.memory["hbm"].bandwidth_bytes_per_cycle * arch.clock_hz * arch.compute.efficiency.hbm
    assert total == pytest.approx(kv_bytes / bw + arch.compute.launch_overhead_us * 1e-6, rel=0.05)


def test_moe_grouped_gemm_is_one_launch_and_beats_per_expert_kernels():
    arch = load_arch(H100)
    tokens = [114, 100, 86, 72, 56, 42, 28, 14]
    p = {"activations": 16, "weights": 16, "outputs": 16}
    grouped = gpu.estimate(Op(name="moe", kind="moe_gemm", dims={"tokens_per_expert": tokens, "N": 14336, "K": 4096},
                              precision=p), arch).cycles
    separate = sum(gpu.estimate(gemm(t, 14336, 4096), arch).cycles for t in tokens)
    assert grouped < separate
    weights = 8 * 14336 * 4096 * 2
    assert grouped / arch.clock_hz >= weights / (arch.memory["hbm"].bandwidth_bytes_per_cycle * arch.clock_hz)


def test_vector_ops_are_bytes_over_bandwidth():
    arch = load_arch(A100)
    op = Op(name="add", kind="elementwise", dims={"elements": 2 ** 26, "inputs": 2},
            precision={"activations": 16, "weights": 16, "outputs": 16})
    expected = (2 ** 26 * 3 * 2) / (arch.memory["hbm"].bandwidth_bytes_per_cycle * arch.clock_hz
                                    * arch.compute.efficiency.hbm) + arch.compute.launch_overhead_us * 1e-6
    assert seconds(op, arch) == pytest.approx(expected, rel=1e-6)


def test_simulate_runs_a_trace_on_a_gpu_and_reports_latency_at_the_spec_clock():
    arch = load_arch(H100)
    p = {"activations": 16, "weights": 16, "outputs": 16}
    trace = Trace(name="t", ops=[
        Op(name="proj", kind="gemm", dims={"M": 4096, "N": 4096, "K": 4096}, precision=p, repeat=2),
        Op(name="act", kind="elementwise", dims={"elements": 4096 * 4096}, precision=p)])
    result = simulate(trace, arch)
    row = result.rows[0]
    assert row["latency_s"] == pytest.approx(2 * seconds(gemm(4096, 4096, 4096), arch))
    assert math.isfinite(result.totals["energy_pj"]) and result.totals["energy_pj"] > 0
    assert result.totals["area_mm2"] == pytest.approx(814, rel=0.01)


# ----------------------------------------------------------------------------- spec validation

def test_spec_rejects_a_sparse_peak_above_twice_dense():
    data = read_yaml(A100)
    data["compute"]["tensor_math"]["fp16"]["sparse_2_4_flops_per_cycle_per_sm"] = 5000
    with pytest.raises(SparsimInputError, match="cannot exceed twice"):
        arch_from_dict(data, path=A100)


def test_spec_needs_an_l2_level_and_a_calibration_note():
    data = read_yaml(A100)
    del data["memory"]["l2"]
    with pytest.raises(SparsimInputError, match="L2"):
        arch_from_dict(data, path=A100)
    data = read_yaml(A100)
    del data["compute"]["efficiency"]["calibration"]
    with pytest.raises(SparsimInputError, match="calibration"):
        arch_from_dict(data, path=A100)


def test_skinny_m_is_padded_to_the_mma_tile_once_math_is_comparable_to_streaming():
    # Fast memory and no power limit: the padded tensor-core math decides the skinny kernels' time.
    arch = load_arch(A100, ["memory.hbm.bandwidth_bytes_per_cycle=1e6", "compute.power=null"])
    spec = arch.compute
    t = {m: seconds(gemm(m, 8192, 8192), arch) - spec.launch_overhead_us * 1e-6 for m in (1, 2, 9, 16)}
    assert t[2] == pytest.approx(t[9]) == pytest.approx(t[16])      # M = 2..16 all pad to 16 rows
    k_tile = spec.k_tile_bytes / 2
    per_sm = 2048 * spec.efficiency.tensor
    iteration = 2 * 16 * 128 * k_tile / per_sm
    eff = iteration / (iteration + spec.k_iteration_overhead_cycles)
    assert t[16] == pytest.approx(2 * 16 * 8192 * 8192 / (per_sm * eff * spec.sm_count) / arch.clock_hz, rel=1e-6)
    # M = 1 is a CUDA-core GEMV at the fp32 rate (128 FLOP/cycle/SM).
    assert t[1] == pytest.approx(2 * 8192 * 8192 / (128 * spec.sm_count) / arch.clock_hz, rel=1e-6)
    # With the real HBM, streaming the weights dominates and M barely matters (measured: cuBLAS 1 vs 16 rows
    # of 4096x4096 at 22.8 vs 24.1 us, ml-explore/mlx PRs 3180, 3255).
    real = load_arch(A100)
    assert seconds(gemm(16, 4096, 4096), real) / seconds(gemm(1, 4096, 4096), real) < 1.05
