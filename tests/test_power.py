"""Board power (simulator/power.py, GPU `compute.power`, FPGA static power): hand calculations, the TDP
check, and LLaMA-2-7B decode power inside the physical range of the boards."""

import pytest
from hypothesis import given, settings, strategies as st

from conftest import ARCH_DIR
from simulator import power
from simulator.engines import gpu
from workloads.llm import simulate_llm
from simulator.simulate import simulate
from simulator.spec import load_arch
from simulator.trace import Op, Trace

A100 = ARCH_DIR / "gpu_a100_sxm4_80gb.yaml"
H100 = ARCH_DIR / "gpu_h100_sxm5_80gb.yaml"
V100S = ARCH_DIR / "gpu_v100s.yaml"
VCU1525 = ARCH_DIR / "fpga_vcu1525_nm.yaml"
U280 = ARCH_DIR / "fpga_u280_llm_sparse.yaml"
P16 = {"activations": 16, "weights": 16, "outputs": 16}


def gemm(M, N, K, sparsity=None):
    return Op(name="g", kind="gemm", dims={"M": M, "N": N, "K": K}, precision=P16, sparsity=sparsity or {})


def run(op, arch):
    return simulate(Trace(name="t", ops=[op]), arch)


def test_idle_power_is_paid_for_the_whole_op_and_sm_power_only_on_occupied_sms():
    arch = load_arch(A100)
    p = arch.compute.power
    op = Op(name="add", kind="elementwise", dims={"elements": 2 ** 26, "inputs": 2}, precision=P16)
    cost = gpu.estimate(op, arch)
    seconds = cost.cycles / arch.clock_hz
    launch_s = arch.compute.launch_overhead_us * 1e-6
    assert cost.extra_energy_pj["board_idle"] == pytest.approx(p.idle_w * seconds * 1e12, rel=1e-9)
    # A streaming kernel occupies every SM for its time, not during the launch gap.
    assert cost.extra_energy_pj["sm_active"] == pytest.approx(
        p.sm_active_w * arch.compute.sm_count * (seconds - launch_s) * 1e12, rel=1e-9)
    # One 128x128 output tile occupies one SM.
    one = gpu.estimate(gemm(128, 128, 4096), load_arch(A100, ["compute.tile_shapes=[[128, 128]]",
                                                              "compute.split_k=false"]))
    kernel_s = one.cycles / arch.clock_hz - launch_s
    assert one.extra_energy_pj["sm_active"] == pytest.approx(p.sm_active_w * 1 * kernel_s * 1e12, rel=1e-9)


def test_a_spec_without_power_has_no_board_terms():
    cost = gpu.estimate(gemm(1024, 1024, 1024), load_arch(ARCH_DIR / "gpu_mi210.yaml"))
    assert "board_idle" not in cost.extra_energy_pj


def test_summary_gives_average_power_energy_per_token_and_flags_a_result_above_tdp():
    s = power.summary(300.0, 2.0, 400.0, tokens=60)
    assert s["average_power_w"] == 150.0 and s["energy_per_token_j"] == 5.0 and s["within_tdp"] is True
    over = power.summary(900.0, 2.0, 400.0)
    assert over["within_tdp"] is False and "would lower its clock" in over["power_note"]
    assert power.summary(1.0, 1.0, None)["within_tdp"] is None


def test_board_limits_come_from_the_gpu_spec_and_the_fpga_card_data_sheet():
    assert power.board_tdp_w(load_arch(A100)) == 400
    assert power.board_tdp_w(load_arch(H100)) == 700
    assert power.board_tdp_w(load_arch(V100S)) == 250
    assert power.board_tdp_w(load_arch(U280)) == 225
    assert power.board_tdp_w(load_arch(ARCH_DIR / "gpu_mi210.yaml")) is None


@pytest.mark.parametrize("path", [A100, H100, V100S])
def test_simulate_reports_average_power_and_the_board_limit(path):
    t = run(gemm(4096, 4096, 4096), load_arch(path)).totals
    assert t["board_tdp_w"] == power.board_tdp_w(load_arch(path)) and t["within_tdp"] is True
    assert t["power_w"] == pytest.approx(t["energy_pj"] * 1e-12 / t["latency_s"])


@settings(max_examples=25, deadline=None)
@given(path=st.sampled_from([A100, H100, V100S]), m=st.integers(0, 14), n=st.integers(6, 14),
       k=st.integers(6, 14), sparse=st.booleans())
def test_no_gemm_draws_more_than_the_board_limit(path, m, n, k, sparse):
    arch = load_arch(path)
    sp = {"weights": {"kind": "nm", "n": 2, "m": 4}} if sparse else None
    t = run(gemm(2 ** m, 2 ** n, 2 ** k, sp), arch).totals
    assert t["within_tdp"] is True
    assert t["power_w"] >= arch.compute.power.idle_w


@pytest.mark.parametrize("path, low, high", [(A100, 180, 330), (H100, 250, 550)])
def test_llama2_7b_batch1_decode_board_power_is_physically_plausible(path, low, high):
    # Batch-1 decode streams the weights from HBM: the board sits well above idle (all SMs busy,
    # HBM at ~1.6 / ~2.8 TB/s) but far from the TDP that compute-bound GEMMs reach.
    arch = load_arch(path)
    r = simulate_llm("llama2-7b", arch, prompt_len=128, output_len=32)
    assert low <= r.power["average_power_w"] <= high
    assert r.power["within_tdp"] is True and r.power["board_tdp_w"] == arch.compute.power.tdp_w
    d = r.to_dict()
    assert d["average_power_w"] == pytest.approx(d["energy_j"] / d["total_s"])


def test_vcu1525_compute_bound_2_8_gemm_gains_between_1_6_and_2x():
    # SAT (Fang et al.): 2:8 gives 1.75x on average end to end; the design's activation buffer reads
    # 32 dense values per PE row per cycle, so a compute-bound GEMM can gain at most 2x.
    arch = load_arch(VCU1525)
    from simulator.engines import load_engine
    est = load_engine(arch.compute.kind).estimate
    dense = est(gemm(4096, 4096, 4096), arch).cycles
    sparse = est(gemm(4096, 4096, 4096, {"weights": {"kind": "nm", "n": 2, "m": 8}}), arch).cycles
    assert 1.6 <= dense / sparse <= 2.0


def test_fpga_static_power_is_charged_for_the_whole_run():
    arch = load_arch(U280)
    t = run(gemm(1, 4096, 4096), arch).totals
    assert t["energy_device_static_pj"] == pytest.approx(arch.compute.static_power_w * t["latency_s"] * 1e12,
                                                         rel=1e-6)
    assert t["within_tdp"] is True


def test_simulate_reports_joules_per_token_for_an_llm_pass_only():
    from workloads.extract.hf_config import trace_from_hf_config
    arch = load_arch(A100)
    step = simulate(trace_from_hf_config("llama2-7b", batch=4, phase="decode", seq_len=128, kv_len=140), arch).totals
    assert step["energy_per_token_j"] == pytest.approx(step["energy_pj"] * 1e-12 / 4)
    assert "energy_per_token_j" not in run(gemm(512, 512, 512), arch).totals
