"""N:M sparse tensor core: what sparsity buys on fixed and flexible N:M hardware.

Expected cycle counts are derived here from the array's stall-free count (OS: folds x
(R + C + K' - 2) - 1 with K' the kept slots along the reduction) and the distributions
written out by hand, never read back from the engine.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.engines.nm_tensor_core import estimate
from simulator.errors import SparsimInputError
from simulator.simulate import simulate
from simulator.spec import arch_from_dict, load_arch
from simulator.trace import Op, Trace

from conftest import ARCH_DIR

IDEAL = {"buf": {"kind": "sram", "capacity_kib": 4096, "ideal": True}, "dram": {"kind": "dram", "ideal": True}}
R = C = 16


def nm_arch(patterns=("2:4",), overflow="op_dense", dual=False, memory=None, bits=8, **compute):
    return arch_from_dict({
        "name": "test_nm", "clock_mhz": 1000, "memory": memory or IDEAL,
        "compute": {"kind": "nm_tensor_core", "rows": R, "cols": C, "dataflow": "os",
                    "precision": {"activations": bits, "weights": bits, "outputs": bits},
                    "patterns": list(patterns), "overflow": overflow, "dual_sided": dual, **compute}})


def gemm(M, N, K, weights=None, activations=None, bits=8, name="g"):
    sparsity = {}
    if weights:
        sparsity["weights"] = weights
    if activations:
        sparsity["activations"] = activations
    return Op.model_validate({"name": name, "kind": "gemm", "dims": {"M": M, "N": N, "K": K},
                              "precision": {"activations": bits, "weights": bits, "outputs": bits},
                              "sparsity": sparsity})


def os_cycles(M, N, k_iter):
    return math.ceil(M / R) * math.ceil(N / C) * (R + C + k_iter - 2) - 1


NM = lambda n, m: {"kind": "nm", "n": n, "m": m}  # noqa: E731


# ----------------------------------------------------------------------------- K shrinks only when supported

def test_supported_2to4_halves_the_reduction_the_array_iterates():
    cost = estimate(gemm(64, 64, 256, NM(2, 4)), nm_arch())
    assert cost.compute_cycles == os_cycles(64, 64, 128)
    assert cost.macs == 64 * 64 * 128


def test_dense_weights_run_at_the_dense_rate():
    cost = estimate(gemm(64, 64, 256), nm_arch())
    assert cost.compute_cycles == os_cycles(64, 64, 256)
    assert cost.index_selects == 0


def test_1to4_on_2to4_only_hardware_runs_at_the_2to4_rate():
    arch = nm_arch(("2:4",))
    c14 = estimate(gemm(64, 64, 256, NM(1, 4)), arch)
    c24 = estimate(gemm(64, 64, 256, NM(2, 4)), arch)
    assert c14.compute_cycles == c24.compute_cycles == os_cycles(64, 64, 128)
    assert "2:4 rate" in c14.note_text


def test_2to8_data_is_2to4_compliant_and_uses_the_2to4_mode():
    # any 4 consecutive values of a 2:8 group hold at most 2 nonzeros
    cost = estimate(gemm(64, 64, 256, NM(2, 8)), nm_arch(("2:4",)))
    assert cost.compute_cycles == os_cycles(64, 64, 128)


def test_a_pattern_the_hardware_cannot_use_runs_dense_and_says_so():
    # 4:8 data: a 4-group may hold 3 or 4 nonzeros, which fixed 2:4 hardware cannot take
    cost = estimate(gemm(64, 64, 256, NM(4, 8)), nm_arch(("2:4",), overflow="op_dense"))
    assert cost.compute_cycles == os_cycles(64, 64, 256)
    assert "runs dense" in cost.note_text
    unstructured = estimate(gemm(64, 64, 256, {"kind": "unstructured", "density": 0.3}), nm_arch())
    assert unstructured.compute_cycles == os_cycles(64, 64, 256)
    assert "runs dense" in unstructured.note_text


def test_flexible_hardware_gains_per_mode():
    arch = nm_arch(("1:4", "2:4", "4:4"))
    assert estimate(gemm(64, 64, 256, NM(1, 4)), arch).compute_cycles == os_cycles(64, 64, 64)
    assert estimate(gemm(64, 64, 256, NM(2, 4)), arch).compute_cycles == os_cycles(64, 64, 128)
    assert estimate(gemm(64, 64, 256, NM(4, 4)), arch).compute_cycles == os_cycles(64, 64, 256)


# ----------------------------------------------------------------------------- unstructured on N:M hardware

HIST4 = [10, 40, 30, 15, 5]  # groups of 4 holding 0..4 nonzeros; density = 165 / 400
MEASURED = {"kind": "unstructured", "density": 0.4125,
            "measured": {"density": 0.4125, "group_histograms": {4: HIST4}}}
P4 = [c / sum(HIST4) for c in HIST4]


def split_slots(j, n):
    return n * max(1, math.ceil(j / n))        # ceil(j/n) passes of n slots, at least one pass


def busiest_column_slots(group_pmf, groups, t=C):
    """E[max over t i.i.d. columns] of a column's slots, each column the sum of `groups` groups."""
    base = np.zeros(max(group_pmf) + 1)
    for slots, p in group_pmf.items():
        base[slots] += p
    column = np.array([1.0])
    for _ in range(groups):
        column = np.convolve(column, base)
    cdf = np.cumsum(column)
    before = np.concatenate([[0.0], cdf[:-1]])
    return float(np.arange(len(column)) @ (cdf ** t - before ** t))


def os_cycles_imbalanced(M, N, K, group_pmf, m=4):
    return math.ceil(M / R) * math.ceil(N / C) * (R + C - 2 + busiest_column_slots(group_pmf, K // m)) - 1


def pmf_of(probs, slots_of):
    out = {}
    for j, p in enumerate(probs):
        out[slots_of(j)] = out.get(slots_of(j), 0.0) + p
    return out


def test_split_policy_counts_extra_passes_from_the_measured_histogram():
    pmf = pmf_of(P4, lambda j: split_slots(j, 2))
    mean_slots = sum(s * p for s, p in pmf.items())                     # 2.4 per group
    cost = estimate(gemm(64, 64, 256, MEASURED), nm_arch(("2:4",), overflow="split"))
    assert cost.macs == 64 * 64 * math.ceil(256 / 4 * mean_slots)       # work: the mean slots
    # time: each fold waits for its busiest PE column
    assert cost.compute_cycles == pytest.approx(os_cycles_imbalanced(64, 64, 256, pmf), rel=1e-9)
    assert "measured M=4 histogram" in cost.model


def test_extra_pass_imbalance_costs_more_than_the_mean_but_never_more_than_dense():
    cost = estimate(gemm(64, 64, 256, MEASURED), nm_arch(("2:4",), overflow="split"))
    mean_slots = sum(split_slots(j, 2) * p for j, p in enumerate(P4))
    assert os_cycles(64, 64, math.ceil(64 * mean_slots)) < cost.compute_cycles <= os_cycles(64, 64, 256)


def test_flexible_split_picks_the_mode_with_fewest_expected_slots():
    slots_14 = sum(p * split_slots(j, 1) for j, p in enumerate(P4))   # 1.75
    slots_24 = sum(p * split_slots(j, 2) for j, p in enumerate(P4))   # 2.4
    assert slots_14 < slots_24
    cost = estimate(gemm(64, 64, 256, MEASURED), nm_arch(("1:4", "2:4"), overflow="split"))
    assert cost.macs == 64 * 64 * math.ceil(64 * slots_14)
    pmf = pmf_of(P4, lambda j: split_slots(j, 1))
    assert cost.compute_cycles == pytest.approx(os_cycles_imbalanced(64, 64, 256, pmf), rel=1e-9)


def test_group_dense_policy_runs_overflowing_groups_at_the_dense_rate():
    pmf = pmf_of(P4, lambda j: 1 if j <= 1 else 4)
    assert pmf == pytest.approx({1: 0.5, 4: 0.5})
    cost = estimate(gemm(64, 64, 256, MEASURED), nm_arch(("1:4",), overflow="group_dense"))
    assert cost.macs == 64 * 64 * math.ceil(64 * 2.5)
    assert cost.compute_cycles == pytest.approx(os_cycles_imbalanced(64, 64, 256, pmf), rel=1e-9)


def test_without_a_histogram_the_binomial_model_is_used_and_named():
    d = 0.3
    p = [math.comb(4, j) * d ** j * (1 - d) ** (4 - j) for j in range(5)]
    pmf = pmf_of(p, lambda j: split_slots(j, 2))
    cost = estimate(gemm(64, 64, 256, {"kind": "unstructured", "density": d}), nm_arch(overflow="split"))
    assert cost.compute_cycles == pytest.approx(os_cycles_imbalanced(64, 64, 256, pmf), rel=1e-9)
    assert "binomial" in cost.model


def test_dual_sided_shrinks_k_by_both_operands():
    arch = nm_arch(dual=True)
    cost = estimate(gemm(64, 64, 256, NM(2, 4), NM(2, 4)), arch)
    assert cost.compute_cycles == os_cycles(64, 64, 64)
    one_sided = estimate(gemm(64, 64, 256, NM(2, 4), NM(2, 4)), nm_arch(dual=False))
    assert one_sided.compute_cycles == os_cycles(64, 64, 128)
    assert "not exploited" in one_sided.note_text


# ----------------------------------------------------------------------------- metadata and bandwidth

def test_metadata_is_counted_in_storage_traffic_at_every_level():
    # One outer OS step (M = R): each operand is fetched once.
    M, N, K = 16, 64, 256
    cost = estimate(gemm(M, N, K, NM(2, 4)), nm_arch())
    weights_bytes = K * N * (2 / 4) * (8 + 2) / 8      # kept int8 values + 2-bit index each
    activation_bytes = M * K * 8 / 8                    # all K activations still delivered
    assert cost.reads_bytes["dram"] == pytest.approx(weights_bytes + activation_bytes)
    assert cost.writes_bytes["buf"] >= weights_bytes + activation_bytes


def test_2to4_fp16_weights_cost_half_the_values_plus_2_bit_indices_at_every_level_of_the_ampere_spec():
    arch = load_arch(ARCH_DIR / "ampere_like_2to4_tc.yaml", {"compute.sparse_offchip_efficiency": 1.0})
    M, N, K = 64, 1024, 1024                      # one 64-row OS step: each operand leaves HBM once
    cost = estimate(gemm(M, N, K, NM(2, 4), bits=16), arch)
    dense_weight_bytes = K * N * 2
    weight_bytes = 0.5 * dense_weight_bytes + 0.5 * K * N * 2 / 8     # kept fp16 values + 2-bit index each
    assert weight_bytes == pytest.approx(0.5625 * dense_weight_bytes)
    activation_bytes = M * K * 2                                      # all K activations still delivered
    assert cost.reads_bytes["hbm"] == pytest.approx(weight_bytes + activation_bytes)
    assert cost.writes_bytes["l2"] == pytest.approx(weight_bytes + activation_bytes)
    output_bytes = M * N * 2                                          # the array writes its fp16 outputs to smem
    assert cost.writes_bytes["smem"] == pytest.approx(weight_bytes + activation_bytes + output_bytes)


def test_a_bandwidth_limited_activation_buffer_loses_the_speedup_and_reports_it():
    narrow = {"act": {"kind": "sram", "capacity_kib": 1024, "bandwidth_bytes_per_cycle": 20, "holds": ["activations"]},
              "wbuf": {"kind": "sram", "capacity_kib": 1024, "ideal": True, "holds": ["weights", "outputs"]},
              "dram": {"kind": "dram", "ideal": True}}
    M, N, K = 64, 64, 256
    dense = estimate(gemm(M, N, K), nm_arch(memory=narrow))
    sparse = estimate(gemm(M, N, K, NM(2, 4)), nm_arch(memory=narrow))
    assert dense.stall_cycles == 0
    compute_speedup = dense.compute_cycles / sparse.compute_cycles
    assert compute_speedup == pytest.approx(os_cycles(M, N, K) / os_cycles(M, N, K // 2))
    assert sparse.stall_cycles > 0
    assert dense.cycles / sparse.cycles < 0.9 * compute_speedup
    assert "bandwidth-bound" in sparse.note_text
    ideal = estimate(gemm(M, N, K, NM(2, 4)), nm_arch())
    assert ideal.stall_cycles == 0


def test_index_selects_one_per_issued_slot_and_priced_in_energy():
    arch = nm_arch()
    cost = estimate(gemm(64, 64, 256, NM(2, 4)), arch)
    assert cost.index_selects == cost.macs == 64 * 64 * 128
    result = simulate(Trace(ops=[gemm(64, 64, 256, NM(2, 4))]), arch)
    assert result.rows[0]["energy_index_select_pj"] > 0


# ----------------------------------------------------------------------------- trends on the shipped specs

def speedup(arch, op_sparse):
    dense_op = op_sparse.model_copy(update={"sparsity": type(op_sparse.sparsity)()})
    d, s = estimate(dense_op, arch), estimate(op_sparse, arch)
    return d.cycles / s.cycles, d


def test_flexible_core_orders_1to4_over_2to4_over_4to4_on_a_compute_bound_layer():
    arch = load_arch(ARCH_DIR / "vegeta_like_flexible_nm.yaml")
    s14, dense = speedup(arch, gemm(512, 512, 512, NM(1, 4), bits=16))
    s24, _ = speedup(arch, gemm(512, 512, 512, NM(2, 4), bits=16))
    s44, _ = speedup(arch, gemm(512, 512, 512, NM(4, 4), bits=16))
    assert dense.stall_cycles < 0.1 * dense.compute_cycles      # compute-bound
    assert s14 > s24 > s44
    assert s44 == pytest.approx(1.0, abs=0.02)
    # stall-free OS: each fold costs R + C - 2 + K' with K' = K n/m, so the fill caps the gain
    fill = arch.compute.rows + arch.compute.cols - 2
    assert s24 == pytest.approx((fill + 512) / (fill + 256), rel=0.1)
    assert s14 == pytest.approx((fill + 512) / (fill + 128), rel=0.1)


def test_fixed_2to4_hardware_gains_no_more_from_1to4_than_from_2to4():
    arch = load_arch(ARCH_DIR / "ampere_like_2to4_tc.yaml")
    s14, _ = speedup(arch, gemm(512, 1024, 1024, NM(1, 4), bits=16))
    s24, _ = speedup(arch, gemm(512, 1024, 1024, NM(2, 4), bits=16))
    assert s14 == pytest.approx(s24)
    # The sparse GEMM moves its compulsory bytes (1 MiB A + compressed B + 1 MiB C) at the spec's derated
    # 0.56 x 40.8 B/cycle: bandwidth-bound at ~143k cycles against ~154k dense, so a small gain is all
    # there is (the fold-order memory model used to report > 1.1x here).
    assert s24 > 1.0


def test_decode_gemv_gains_nothing_from_2to4_when_weights_arrive_uncompressed():
    arch = load_arch(ARCH_DIR / "ampere_like_2to4_tc.yaml", {"memory.hbm.formats": {"weights": "dense"},
                                                             "compute.sparse_offchip_efficiency": 1.0})
    s, dense = speedup(arch, gemm(1, 4096, 4096, NM(2, 4), bits=16))
    assert dense.stall_cycles > dense.compute_cycles            # bandwidth-bound
    assert s == pytest.approx(1.0, abs=0.05)


def test_decode_gemv_gains_at_most_the_compressed_byte_ratio_not_the_math_rate():
    # With compressed weights in HBM streamed at full bandwidth (an ideal design), a bandwidth-bound
    # GEMV is limited by bytes: fp16 2:4 moves 0.5 x (16 + 2) = 9 of 16 bits per weight, so at most
    # 16/9 = 1.78x, never the 2x math rate.
    arch = load_arch(ARCH_DIR / "ampere_like_2to4_tc.yaml", {"compute.sparse_offchip_efficiency": 1.0})
    s, dense = speedup(arch, gemm(1, 4096, 4096, NM(2, 4), bits=16))
    assert dense.stall_cycles > dense.compute_cycles
    assert s <= 16 / 9 * 1.01
    assert s > 1.5


def test_ampere_like_decode_gemv_gains_about_nothing_as_measured_on_a100():
    # The shipped Ampere-like spec streams the sparse path at 0.56 of HBM bandwidth (measured cuSPARSELt
    # behaviour): 16/9 x 0.56 = 1.0x on a bandwidth-bound GEMV, while a compute-bound GEMM keeps most of
    # its 2x math gain.
    # 16/9 x 0.56 = 0.996 < 1, so the engine keeps the dense kernel and says why.
    arch = load_arch(ARCH_DIR / "ampere_like_2to4_tc.yaml")
    assert arch.compute.sparse_offchip_efficiency == pytest.approx(0.56)
    for m in (1, 16):
        s, dense = speedup(arch, gemm(m, 4096, 4096, NM(2, 4), bits=16))
        assert dense.stall_cycles > dense.compute_cycles
        assert s == pytest.approx(1.0, abs=0.01)
        assert "the 2:4 mode would take" in estimate(gemm(m, 4096, 4096, NM(2, 4), bits=16), arch).note_text
    # Large GEMMs keep a real but measured-size gain (the spec's operand feed matches the library kernels;
    # tests/test_a100_models_agree.py holds it to the GPU engine's 2:4 speedup within 10%).
    big, _ = speedup(arch, gemm(4096, 4096, 4096, NM(2, 4), bits=16))
    assert 1.2 < big < 2.0
    assert "sparse_offchip_efficiency" in estimate(gemm(4096, 4096, 4096, NM(2, 4), bits=16), arch).note_text


# ----------------------------------------------------------------------------- properties

@settings(max_examples=40, deadline=None)
@given(density=st.floats(0.01, 1.0), n_exp=st.integers(0, 2), K=st.integers(1, 300),
       policy=st.sampled_from(["split", "group_dense", "op_dense"]))
def test_sparsity_never_increases_macs(density, n_exp, K, policy):
    arch = nm_arch(("1:4", "2:4", "2:8"), overflow=policy)
    for w in ({"kind": "unstructured", "density": density}, NM(2 ** n_exp, 4)):
        cost = estimate(gemm(20, 24, K, w), arch)
        assert cost.macs <= cost.dense_macs


@settings(max_examples=40, deadline=None)
@given(d1=st.floats(0.01, 1.0), d2=st.floats(0.01, 1.0), policy=st.sampled_from(["split", "group_dense"]))
def test_higher_density_never_decreases_cycles_on_flexible_hardware(d1, d2, policy):
    lo, hi = sorted((d1, d2))
    arch = nm_arch(("1:4", "2:4", "4:4"), overflow=policy)
    c_lo = estimate(gemm(32, 32, 512, {"kind": "unstructured", "density": lo}), arch)
    c_hi = estimate(gemm(32, 32, 512, {"kind": "unstructured", "density": hi}), arch)
    assert c_hi.cycles >= c_lo.cycles - 1e-9


# ----------------------------------------------------------------------------- bad input

def test_a_group_size_that_is_not_a_power_of_two_is_rejected_where_the_hardware_needs_it():
    with pytest.raises(SparsimInputError) as exc:
        estimate(gemm(16, 16, 48, NM(3, 6)), nm_arch())
    assert exc.value.field == "sparsity.weights.m"
    assert "power of two" in exc.value.message
    relaxed = nm_arch(("2:4",), power_of_two_m=False)
    assert estimate(gemm(16, 16, 48, NM(3, 6)), relaxed).cycles > 0


def test_bad_patterns_in_the_spec_name_the_field():
    with pytest.raises(SparsimInputError) as exc:
        nm_arch(("6:4",))
    assert exc.value.field == "compute.patterns" and "n <= m" in exc.value.message
    with pytest.raises(SparsimInputError) as exc:
        nm_arch(("3:6",))
    assert "power of two" in exc.value.message
    with pytest.raises(SparsimInputError) as exc:
        nm_arch((124,))      # what YAML makes of an unquoted 2:4
    assert "quote" in exc.value.message
