"""DSP-chain engine: cycles from first principles, sparse chains, the U280 example, errors, speed."""

import math
import sys
import time
from pathlib import Path

import pytest
import yaml

from simulator import fpga, load_arch, simulate
from simulator.engines.dsp_chain import estimate, memory_bound
from simulator.engines.dsp_ktiling import Buffers, tilings
from simulator.errors import SparsimInputError
from simulator.spec import arch_from_dict
from simulator.trace import Op, Trace, load_trace

sys.path.insert(0, str(Path(__file__).parent))
from cli_helpers import run_cli  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
U280 = ROOT / "arch_configs" / "fpga_u280_llm_sparse.yaml"
HBM_BYTES_PER_S = 460e9          # 32 pseudo-channels x 14.375 GB/s (UG1393)

# LLaMA-2-7B built in-test: hidden 4096, 32 heads, FFN 11008, 32 layers, vocab 32000.
HIDDEN, HEADS, HEAD_DIM, FFN, LAYERS, VOCAB = 4096, 32, 128, 11008, 32, 32000


def _w(sparsity):
    return {"weights": sparsity} if sparsity else {}


def llama2_7b(tokens: int, kv_len: int, phase: str, weights_sparsity: dict | None = None) -> Trace:
    """One forward pass over `tokens` new tokens (1 = a decode step) with `kv_len` context."""
    sp = _w(weights_sparsity)
    L = LAYERS
    ops = [
        Op(name="attn_norm", kind="norm", dims={"elements": tokens * HIDDEN}, repeat=L, phase=phase),
        Op(name="qkv_proj", kind="gemm", dims={"M": tokens, "N": 3 * HIDDEN, "K": HIDDEN}, repeat=L, phase=phase,
           sparsity=sp),
        Op(name="attn_qk", kind="attention_qk", dims={"heads": HEADS, "q_len": tokens, "kv_len": kv_len,
                                                       "head_dim": HEAD_DIM}, repeat=L, phase=phase),
        Op(name="softmax", kind="softmax", dims={"elements": HEADS * tokens * kv_len}, repeat=L, phase=phase),
        Op(name="attn_pv", kind="attention_pv", dims={"heads": HEADS, "q_len": tokens, "kv_len": kv_len,
                                                       "head_dim": HEAD_DIM}, repeat=L, phase=phase),
        Op(name="o_proj", kind="gemm", dims={"M": tokens, "N": HIDDEN, "K": HIDDEN}, repeat=L, phase=phase,
           sparsity=sp),
        Op(name="ffn_norm", kind="norm", dims={"elements": tokens * HIDDEN}, repeat=L, phase=phase),
        Op(name="gate_up", kind="gemm", dims={"M": tokens, "N": 2 * FFN, "K": HIDDEN}, repeat=L, phase=phase,
           sparsity=sp),
        Op(name="silu_mul", kind="elementwise", dims={"elements": tokens * FFN, "inputs": 2}, repeat=L, phase=phase),
        Op(name="down_proj", kind="gemm", dims={"M": tokens, "N": HIDDEN, "K": FFN}, repeat=L, phase=phase,
           sparsity=sp),
        Op(name="lm_head", kind="gemm", dims={"M": 1 if phase == "decode" else tokens, "N": VOCAB, "K": HIDDEN},
           phase=phase),
    ]
    return Trace(name=f"llama2_7b_{phase}{tokens}_kv{kv_len}", ops=ops)


def weight_bytes(trace: Trace, bits_per_dense_weight: float) -> float:
    """Bytes of the GEMM weights (not the KV cache) read once per pass."""
    total = 0.0
    for op in trace.ops:
        if op.kind == "gemm":
            total += op.dims.K * op.dims.N * op.repeat * bits_per_dense_weight / 8.0
    return total


def small_arch(*, memory=None, **compute):
    """One or a few chains on a U280 budget, ideal memories unless given."""
    spec = {"kind": "dsp_chain", "family": "dsp48e2", "chain_length": 8, "chains": 1, "pipeline_stages": 4,
            "device": {"part": "xcu280"}}
    spec.update(compute)
    mem = memory or {"bram": {"kind": "bram", "capacity_kib": 1024, "ideal": True},
                     "hbm": {"kind": "hbm", "ideal": True}}
    return arch_from_dict({"name": "t", "clock_mhz": 300, "compute": spec, "memory": mem})


def gemm(M, N, K, weights=None, name="g"):
    sp = {"weights": weights} if weights else {}
    return Op(name=name, kind="gemm", dims={"M": M, "N": N, "K": K}, sparsity=sp)


# ----------------------------------------------------------------------------- dense chains

def test_chain_of_L_slices_on_a_K_long_dot_product():
    # One chain of L=8 reduces 8 products per cycle: K=64 takes 64/8 = 8 issues; the first result
    # leaves after fill = L + pipeline stages = 12 cycles, the last one 12 - 1 cycles after its issue.
    cost = estimate(gemm(1, 1, 64), small_arch())
    assert cost.compute_cycles == 8 + (8 + 4) - 1
    assert cost.stall_cycles == 0
    assert cost.macs == 64 and cost.peak_macs_per_cycle == 8
    # 3 x 5 outputs, K=100: 3*5 dot products of ceil(100/8)=13 issues each, back to back.
    cost = estimate(gemm(3, 5, 100), small_arch())
    assert cost.compute_cycles == 3 * 5 * 13 + 12 - 1


def test_int8_packing_two_macs_per_slice_sharing_the_activation():
    # L=7 (the packing limit, one segment): the two packed weights of each slice belong to two
    # output columns, so N=2 costs one pass of ceil(70/7)=10 issues instead of two.
    packed = estimate(gemm(1, 2, 70), small_arch(chain_length=7, int8_packing=True))
    plain = estimate(gemm(1, 2, 70), small_arch(chain_length=7))
    assert packed.compute_cycles == 10 + (7 + 4) - 1
    assert plain.compute_cycles == 2 * 10 + (7 + 4) - 1
    assert packed.peak_macs_per_cycle == 2 * plain.peak_macs_per_cycle == 14


def test_packing_accumulator_limit_cuts_long_chains():
    # Low product field: 18 bits signed. An INT8 x INT8 product is at most 2^14 in magnitude, so
    # n products fit while n * 2^14 <= 2^17 - 1: n = 7. W4A8: n * 2^10 <= 2^17 - 1: n = 127.
    fam = fpga.FAMILIES["dsp48e2"]
    assert fpga.packed_chain_limit(fam, 8, 8) == (2 ** 17 - 1) // 2 ** 14 == 7
    assert fpga.packed_chain_limit(fam, 8, 4) == 127
    arch = small_arch(chain_length=14, int8_packing=True)
    assert arch.compute.segments == 2
    # The two 7-slice segments cascade side by side and a fabric adder (ceil(log2 2) = 1 level) sums
    # them: the fill is 7 + 4 stages + 1, not 14 + 4. K=14 on 2 packed columns is one issue.
    cost = estimate(gemm(1, 2, 14), arch)
    assert cost.compute_cycles == 1 + (7 + 4 + 1) - 1
    # L=20: three segments of ceil(20/3) = 7, two adder levels; K=200 -> ceil(200/20) = 10 issues
    arch20 = small_arch(chain_length=20, int8_packing=True)
    assert arch20.compute.segments == 3
    assert estimate(gemm(1, 2, 200), arch20).compute_cycles == 10 + (7 + 4 + 2) - 1
    # unpacked, the same 14-slice chain is one cascade: fill 14 + 4
    assert estimate(gemm(1, 1, 14), small_arch(chain_length=14)).compute_cycles == 1 + (14 + 4) - 1
    w4 = small_arch(chain_length=14, int8_packing=True, precision={"weights": 4})
    assert w4.compute.segments == 1


def test_dsp58_int8_dot_product_mode():
    # DSP58 INT8 mode: a 3-element dot product per slice, so a 4-slice chain reduces 12 per cycle.
    arch = small_arch(family="dsp58", chain_length=4, int8_packing=True)
    cost = estimate(gemm(1, 1, 120), arch)
    assert cost.compute_cycles == 120 / 12 + (4 + 4) - 1
    assert arch.compute.peak_macs_per_cycle == 12


def test_fill_latency_dominates_a_tiny_op():
    # K=3 on a 16-long chain: one issue, but the result needs the whole fill of 16 + 4 cycles.
    cost = estimate(gemm(1, 1, 3), small_arch(chain_length=16))
    assert cost.compute_cycles == 1 + (16 + 4) - 1
    assert cost.cycles > 10 * 1
    assert cost.utilization == pytest.approx(3 / (20 * 16))


def test_design_limited_by_bram_ports():
    # One 8-slice chain reads 8 activation and 8 weight bytes per issue from one BRAM level that
    # delivers only 4 bytes per cycle: each 8-issue fold (one output column, K=64) needs
    # (8*8 + 8*8) / 4 = 32 cycles. 4 columns -> 4 folds -> 128 cycles, plus the fill (12 - 1).
    mem = {"bram": {"kind": "bram", "capacity_kib": 64, "bandwidth_bytes_per_cycle": 4,
                    "holds": ["activations", "weights"]},
           "hbm": {"kind": "hbm", "ideal": True}}
    cost = estimate(gemm(1, 4, 64), small_arch(memory=mem))
    assert cost.cycles == 4 * 32 + 11
    assert cost.compute_cycles == 4 * 8 + 11
    assert cost.stall_cycles == 4 * (32 - 8)
    assert "read ports" in cost.note_text
    # twice the port width halves the stall
    mem["bram"]["bandwidth_bytes_per_cycle"] = 8
    assert estimate(gemm(1, 4, 64), small_arch(memory=mem)).cycles == 4 * 16 + 11


def test_bram_port_width_follows_from_the_block_count():
    # Weights in two BRAM36 blocks in 512x72 simple-dual-port mode: 2 x 72 bits = 18 bytes per cycle
    # (and 2 x 36 Kib = 9 KiB). Two 16-slice chains read 2 x 16 weight bytes per issue; K=256 is 16
    # issues per fold, so the fold needs 16 * 32 / 18 = 28.44 cycles instead of 16.
    mem = {"wbram": {"kind": "bram", "capacity_kib": 9, "bandwidth_bytes_per_cycle": 18, "holds": ["weights"]},
           "abram": {"kind": "bram", "capacity_kib": 64, "ideal": True, "holds": ["activations", "outputs"]},
           "hbm": {"kind": "hbm", "ideal": True}}
    arch = small_arch(memory=mem, chains=2, chain_length=16, mapping="n")
    assert fpga.level_blocks(arch.memory["wbram"]) == {"bram36": 2}
    cost = estimate(gemm(1, 2, 256), arch)
    assert cost.compute_cycles == 16 + (16 + 4) - 1
    assert cost.stall_cycles == pytest.approx(16 * 32 / 18 - 16)


def test_wide_operands_take_several_slices_per_mac():
    # 32x32-bit MACs on DSP48E2 (27x18): ceil(32/27) * ceil(32/18) = 4 slices per MAC. A chain of
    # L = 8 MAC positions then uses 32 slices and still reduces 8 products per cycle.
    arch = small_arch(precision={"activations": 32, "weights": 32, "outputs": 32})
    assert arch.compute.slices_per_mac == 4
    assert fpga.resources_report(arch)["dsp"]["used"] == 8 * 4
    cost = estimate(gemm(1, 1, 64), arch)
    assert cost.compute_cycles == 8 + 11 and cost.peak_macs_per_cycle == 8
    assert cost.utilization == pytest.approx(64 / (19 * 8)) and cost.utilization <= 1.0
    budget = small_arch(chains=None, dsp_budget=100, precision={"activations": 32, "weights": 32})
    assert budget.compute.n_chains == 100 // (8 * 4)


def test_finn_style_matrix_vector_unit():
    # FINN MVU: PE = chains (output rows in parallel), SIMD = chain length (inputs per cycle).
    MW, MH, PE, SIMD, vectors = 64, 32, 4, 8, 10
    arch = small_arch(chain_length=SIMD, chains=PE, mapping="n")
    cost = estimate(gemm(vectors, MH, MW), arch)
    finn = (MH // PE) * (MW // SIMD) * vectors
    assert finn == fpga.finn_mvu(MW, MH, PE, SIMD, 8, vectors)["cycles"] == 640
    # per-GEMM fill (the default): steady state is exactly FINN's count plus the one-off fill
    assert cost.compute_cycles - (SIMD + 4 - 1) == finn
    # streaming dataflow (fill overlapped with the previous layer, as FINN counts it): exactly FINN
    streaming = small_arch(chain_length=SIMD, chains=PE, chains_per_pe=PE, mapping="n", pipeline_fill="overlapped")
    assert estimate(gemm(vectors, MH, MW), streaming).cycles == finn


def test_shipped_finn_mvu_spec_matches_finn_cycles_and_memory():
    # arch_configs/fpga_finn_mvu_zcu104.yaml: PE=16, SIMD=32, 8-bit, one 3x3x64 -> 64 conv layer on a
    # 9x9 input (7x7 = 49 output pixels = vectors). FINN: (MH/PE)*(MW/SIMD)*vectors = 4*18*49 = 3528.
    arch = load_arch(ROOT / "arch_configs" / "fpga_finn_mvu_zcu104.yaml")
    MW, MH, PE, SIMD = 3 * 3 * 64, 64, 16, 32
    conv = Op(name="c", kind="conv2d", dims={"C": 64, "H": 9, "W": 9, "K": 64, "R": 3, "S": 3})
    cost = estimate(conv, arch)
    assert cost.cycles == (MH // PE) * (MW // SIMD) * 49 == 3528
    assert cost.reads_bytes["ddr4"] == 0          # weights and activations stay on chip, FINN-style
    # the weight memory is FINN's: SIMD*W*PE = 4096 bits wide, MW*MH/(SIMD*PE) = 72 deep
    finn = fpga.finn_mvu(MW, MH, PE, SIMD, 8)
    level = arch.memory["weight_bram"]
    assert level.bandwidth_bytes_per_cycle * 8 == finn["mem_width_bits"] == 4096
    assert level.capacity_kib * 1024 * 8 / 4096 == finn["mem_depth"] == 72
    assert fpga.level_blocks(level)["bram36"] == finn["bram36"] == 57   # 114 BRAM18 (512x36) = 57 BRAM36


def test_dram_bound_gemv_is_weight_bytes_over_bandwidth():
    # 4 chains of 8 on a 4096 x 4096 GEMV, weights streamed from an 8-byte/cycle DDR: the weight
    # bytes alone take 16 Mi / 8 cycles, which no amount of compute overlap can hide.
    mem = {"bram": {"kind": "bram", "capacity_kib": 64, "ideal": True, "holds": ["activations", "outputs"]},
           "ddr": {"kind": "ddr", "bandwidth_bytes_per_cycle": 8}}
    cost = estimate(gemm(1, 4096, 4096), small_arch(memory=mem, chains=4))
    assert cost.cycles >= 4096 * 4096 / 8
    assert cost.cycles < 1.01 * (4096 * 4096 + 4096 + 4096) / 8 + 200



def test_k_tiling_keeps_utilisation_flat_past_the_buffers():
    # One PE of 4 chains x L=8 (p_n = 4 columns, one row per issue), 8-bit, 32-bit accumulator.
    # Usable halves of the double-buffered levels: 128 KiB activations+outputs, 8 KiB weights.
    # Compute: 64 rows x 16 column tiles x K/8 issues + fill (8 + 4 - 1). The compulsory DRAM bytes,
    # 64K weights + 64K activations in and 64 x 64 outputs out, take 8K cycles at 16 B/cycle: hidden.
    # K = 1024 fits untiled (4 KiB weight tile, 64 KiB of activation rows). From K = 4096 the full-K
    # weight tile (4K bytes) outgrows 8 KiB, so untiled weights would be re-fetched for every row
    # (64 x 64K bytes, 4x the compute time at K = 8192). K-tiled with the K loop outside the N loop, the
    # chunk of all 64 rows keeps its 64 x 64 partial sums (16 KiB) and a K slice of activations on chip,
    # so DRAM moves exactly the compulsory bytes again and the utilisation does not move.
    mem = {"abram": {"kind": "bram", "capacity_kib": 256, "ideal": True, "holds": ["activations", "outputs"]},
           "wuram": {"kind": "uram", "capacity_kib": 16, "ideal": True, "holds": ["weights"]},
           "ddr": {"kind": "ddr", "bandwidth_bytes_per_cycle": 16}}
    arch = small_arch(memory=mem, chains=4, chains_per_pe=4, mapping="n")
    util = {}
    for K in (1024, 8192, 32768):
        cost = estimate(gemm(64, 64, K), arch)
        assert cost.compute_cycles == 64 * 16 * K // 8 + 11
        assert cost.reads_bytes["ddr"] == 64 * K + 64 * K
        assert cost.writes_bytes["ddr"] == 64 * 64
        util[K] = cost.utilization
        if K == 1024:
            # untiled, fold by fold: the first fetch (4 KiB weights + one 1 KiB row = 320 cycles); each
            # of the 15 further 4 KiB weight tiles loads, with the previous fold's 4 output bytes, during
            # one 128-issue fold; the last fold's 4 output bytes are written after it
            assert cost.stall_cycles == 320 + 15 * ((4096 + 4) / 16 - 128) + 4 / 16
    assert min(util.values()) > 0.98 and max(util.values()) - min(util.values()) < 0.02, util
    bufs = Buffers(M=64, p_m_hw=1, p_n=4, row_bytes=8192, w_tile=8192 * 4, out_tile=4, psum_row=16,
                   psum_row_all=256, ws_rows=1, a_lvl="abram", w_lvl="wuram", o_lvl="abram",
                   usable={"abram": 131072, "wuram": 8192, "ddr": math.inf})
    untiled = tilings(bufs, 1024, False)[0]
    # untiled at K = 8192: the 32 KiB weight tile misses the 8 KiB half -- the cliff the K tiling removes
    assert not untiled.w_fits and untiled.label == "full K"


def test_shipped_vcu1525_dense_utilisation_flat_in_k():
    # 2048 x 4096 x K dense on the VCU1525 N:M design: the 400-column weight tile at 16 bits outgrows
    # half of the 18 MiB URAM at K = 16384 (13.1 MB); utilisation used to fall from 99% to 19% there.
    arch = load_arch(ROOT / "arch_configs" / "fpga_vcu1525_nm.yaml")
    util = {K: estimate(gemm(2048, 4096, K), arch).utilization for K in (4096, 16384, 32768)}
    assert min(util.values()) > 0.98 and max(util.values()) - min(util.values()) < 0.01, util


# ----------------------------------------------------------------------------- sparse chains

SPARSE = {"nm_patterns": ["2:4"], "act_read_width": 64}


def test_nm_chain_covers_m_over_n_dense_positions_per_issue():
    # 2:4: each issue takes 8 kept weights covering 16 dense positions; K=64 -> 4 issues (dense: 8).
    arch = small_arch(sparse=SPARSE)
    sparse = estimate(gemm(1, 1, 64, {"kind": "nm", "n": 2, "m": 4}), arch)
    assert sparse.compute_cycles == 4 + 11
    assert sparse.macs == 32 and sparse.index_selects == 32
    assert "2:4" in sparse.note_text


def test_nm_speedup_bounded_by_activation_read_width():
    # read width 12 activations per cycle: an issue covers min(16, 12) positions -> ceil(64/12) = 6.
    arch = small_arch(sparse={"nm_patterns": ["2:4"], "act_read_width": 12})
    assert estimate(gemm(1, 1, 64, {"kind": "nm", "n": 2, "m": 4}), arch).compute_cycles == 6 + 11
    # read width = chain length: no gain at all, the op stays dense
    arch = small_arch(sparse={"nm_patterns": ["2:4"], "act_read_width": 8})
    cost = estimate(gemm(1, 1, 64, {"kind": "nm", "n": 2, "m": 4}), arch)
    assert cost.compute_cycles == 8 + 11 and "runs dense" in cost.note_text


def test_reconfiguration_cycles_paid_once_per_sparse_gemm():
    arch = small_arch(sparse={**SPARSE, "reconfig_cycles": 50})
    nm = {"kind": "nm", "n": 2, "m": 4}
    # K=6400: 400 sparse issues + fill + 50 beats 800 dense issues + fill
    assert estimate(gemm(1, 1, 6400, nm), arch).compute_cycles == 400 + 11 + 50
    # K=64: 4 + 11 + 50 = 65 would lose to dense 8 + 11 = 19, so the op stays dense
    assert estimate(gemm(1, 1, 64, nm), arch).compute_cycles == 8 + 11


def test_unstructured_weights_use_the_group_histogram():
    # Measured: every 4-group holds exactly 2 nonzeros -> fits 2:4 exactly, same as 2:4 data.
    measured = {"kind": "unstructured", "density": 0.5,
                "measured": {"density": 0.5, "group_histograms": {4: [0, 0, 100, 0, 0]}}}
    arch = small_arch(sparse=SPARSE)
    assert estimate(gemm(1, 1, 64, measured), arch).compute_cycles == 4 + 11
    # Binomial at d=0.5: P(j) = C(4,j)/16; slots = 2*max(1, ceil(j/2)) -> (2+8+12+16+8)/16 = 2.625
    # per group of 4 -> an issue covers 8 / (2.625/4) = 12.19 positions -> ceil(64/12.19) = 6.
    cost = estimate(gemm(1, 1, 64, {"kind": "unstructured", "density": 0.5}), arch)
    assert cost.compute_cycles == math.ceil(64 / (8 / (2.625 / 4))) + 11
    assert cost.macs == pytest.approx(64 * 2.625 / 4)


def test_unsupported_pattern_falls_back_to_dense():
    # 3:4 weights on 2:4 chains: every group overflows and splits into 2 passes of 2 = 4 slots per
    # 4 values, no better than dense, so the op runs dense: 8 issues + 11.
    arch = small_arch(sparse=SPARSE)
    cost = estimate(gemm(1, 1, 64, {"kind": "nm", "n": 3, "m": 4}), arch)
    assert cost.compute_cycles == 8 + 11 and "runs dense" in cost.note_text
    # with the op_dense policy, any expected overflow (binomial d=0.5 over 16 groups) means dense
    strict = small_arch(sparse={**SPARSE, "overflow": "op_dense"})
    cost = estimate(gemm(1, 1, 64, {"kind": "unstructured", "density": 0.5}), strict)
    assert cost.compute_cycles == 8 + 11 and "runs dense" in cost.note_text
    no_sparse = estimate(gemm(1, 1, 64, {"kind": "nm", "n": 2, "m": 4}), small_arch())
    assert "no sparse chain configured" in no_sparse.note_text and no_sparse.compute_cycles == 8 + 11


def test_block_sparse_weights_on_nm_only_chains_use_the_block_group_statistics():
    # 8x8 blocks (8 along K) at density 0.25 on 2:4-only chains (no block mode): a 4-group lies inside
    # one block, so it is all zero (p = 0.75, one pass of 2 slots) or all nonzero (p = 0.25, two passes,
    # 4 slots): 0.625 slots per dense value; an issue of 8 slots covers 8 / 0.625 = 12.8 positions
    # -> ceil(64 / 12.8) = 5 issues.
    arch = small_arch(sparse=SPARSE)
    cost = estimate(gemm(1, 1, 64, {"kind": "block", "block": [8, 8], "density": 0.25}), arch)
    assert cost.compute_cycles == 5 + 11
    assert "2:4" in cost.note_text and "block" in cost.note_text


def test_block_sparse_chain_skips_zero_blocks():
    # 4 chains in one PE share an activation stream; 8 x 4 blocks (4 columns wide) at density 0.25:
    # the PE's 4 columns are one block column, so 25% of the K blocks are kept: ceil(64*0.25/8) = 2.
    arch = small_arch(chains=4, chains_per_pe=4, sparse={"block": True})
    cost = estimate(gemm(1, 4, 64, {"kind": "block", "block": [8, 4], "density": 0.25}), arch)
    assert cost.compute_cycles == 2 + 11
    # with 1-column blocks a K block is skipped only if zero in all 4 columns: kept 1 - 0.75^4
    cost = estimate(gemm(1, 4, 64, {"kind": "block", "block": [8, 1], "density": 0.25}), arch)
    assert cost.compute_cycles == math.ceil(64 * (1 - 0.75 ** 4) / 8) + 11


def test_nm_weights_cannot_use_shared_activation_packing():
    # Two columns of N:M weights have different masks, so they cannot share one activation; with
    # packing the chain packs two tokens (shared weight) instead. M=1: half the packed lanes idle.
    arch = small_arch(chain_length=7, int8_packing=True, sparse={"nm_patterns": ["2:4"], "act_read_width": 14})
    dense = estimate(gemm(1, 2, 56), arch)
    sparse_decode = estimate(gemm(1, 2, 56, {"kind": "nm", "n": 2, "m": 4}), arch)
    assert dense.compute_cycles == 8 + 10              # one pass over both columns
    assert sparse_decode.compute_cycles == 2 * 4 + 10   # two columns one after the other, 4 issues each
    sparse_prefill = estimate(gemm(2, 2, 56, {"kind": "nm", "n": 2, "m": 4}), arch)
    assert sparse_prefill.compute_cycles == 2 * 4 + 10  # two tokens share each packed weight


# ----------------------------------------------------------------------------- memory

def _mem(act_kib=64, w_kib=64, off="hbm", off_bpc=None):
    off_level = {"kind": off, "ideal": True} if off_bpc is None else {"kind": off, "bandwidth_bytes_per_cycle": off_bpc}
    return {"abram": {"kind": "bram", "capacity_kib": act_kib, "ideal": True, "holds": ["activations", "outputs"]},
            "wuram": {"kind": "uram", "capacity_kib": w_kib, "ideal": True, "holds": ["weights"]},
            off: off_level}


def test_gqa_attention_streams_each_kv_head_once():
    # Decode attention, 32 query heads over 8 KV heads, kv_len 1024, head_dim 128, INT8: the K cache is
    # 8 x 1024 x 128 bytes = 1 MiB and crosses HBM once (the 4 query heads of a group share it).
    arch = small_arch(memory=_mem(off_bpc=64.0), chains=16, onchip_resident=["activations", "outputs"])
    qk = Op(name="qk", kind="attention_qk", dims={"heads": 32, "kv_heads": 8, "q_len": 1, "kv_len": 1024,
                                                  "head_dim": 128})
    cost = estimate(qk, arch)
    assert cost.reads_bytes["hbm"] == 8 * 1024 * 128
    assert cost.macs == 32 * 1024 * 128
    mha = Op(name="qk", kind="attention_qk", dims={"heads": 32, "q_len": 1, "kv_len": 1024, "head_dim": 128})
    assert estimate(mha, arch).reads_bytes["hbm"] == 32 * 1024 * 128


def test_onchip_residency_of_activations_weights_and_kv():
    g = Op(name="g", kind="gemm", dims={"M": 4, "N": 64, "K": 64}, repeat=2)
    plain = estimate(g, small_arch(memory=_mem(off_bpc=64.0)))
    # streamed: 64 x 64 weight bytes + 4 x 64 activation bytes in, 4 x 64 output bytes out
    assert plain.reads_bytes["hbm"] == 64 * 64 + 4 * 64 and plain.writes_bytes["hbm"] == 4 * 64
    res = estimate(g, small_arch(memory=_mem(off_bpc=64.0), onchip_resident=["activations", "weights", "outputs"]))
    assert res.reads_bytes["hbm"] == 0 and res.writes_bytes["hbm"] == 0
    # resident weights must fit with every repeat: 8 KiB of URAM holds 2 x 4 KiB but not 3 x 4 KiB
    fits = estimate(g, small_arch(memory=_mem(w_kib=8, off_bpc=64.0), onchip_resident=["weights"]))
    assert fits.reads_bytes["hbm"] == 4 * 64
    g3 = g.model_copy(update={"repeat": 3})
    spills = estimate(g3, small_arch(memory=_mem(w_kib=8, off_bpc=64.0), onchip_resident=["weights"]))
    assert spills.reads_bytes["hbm"] == 64 * 64 + 4 * 64
    # 'kv' keeps the K/V operand of attention on chip, not GEMM weights
    qk = Op(name="qk", kind="attention_qk", dims={"heads": 2, "q_len": 1, "kv_len": 64, "head_dim": 32})
    kv = small_arch(memory=_mem(off_bpc=64.0), onchip_resident=["kv", "activations", "outputs"])
    assert estimate(qk, kv).reads_bytes["hbm"] == 0
    assert estimate(g, kv).reads_bytes["hbm"] == 64 * 64


def test_vector_ops_use_the_derated_offchip_bandwidth_or_stay_on_chip():
    # A 2^16-element norm, INT8: 64 KiB in + 64 KiB out over 64 B/cycle x 0.5 efficiency = 4096
    # cycles; 256 lanes compute it in 2^16 / 256 = 256 cycles -> 4096 - 256 stall cycles.
    norm = Op(name="n", kind="norm", dims={"elements": 2 ** 16})
    arch = small_arch(memory=_mem(act_kib=256, off_bpc=64.0), vector_lanes=256, offchip_efficiency=0.5)
    cost = estimate(norm, arch)
    assert cost.compute_cycles == 256 and cost.cycles == 2 * 2 ** 16 / 32
    # resident activations that fit (128 KiB <= 256 KiB) never leave the chip
    res = estimate(norm, small_arch(memory=_mem(act_kib=256, off_bpc=64.0), vector_lanes=256,
                                    onchip_resident=["activations"]))
    assert res.reads_bytes["hbm"] == 0 and res.reads_bytes["abram"] == 2 ** 16 and res.cycles == 256


def test_offchip_channels_must_match_the_level_bandwidth():
    # 32 HBM2 pseudo-channels x 14.375 GB/s at 225 MHz = 2044.4 bytes/cycle (UG1393).
    data = yaml.safe_load(U280.read_text())
    assert (data["compute"]["offchip_channels"], data["compute"]["offchip_gb_per_s_per_channel"]) == (32, 14.375)
    arch = arch_from_dict(data)
    assert fpga.resources_report(arch)["offchip"]["peak_gb_per_s"] == pytest.approx(460.0, rel=1e-4)
    data["clock_mhz"] = 300     # the fabric clock changed but bytes/cycle did not
    with pytest.raises(SparsimInputError, match="1533.3") as info:
        arch_from_dict(data)
    assert info.value.field == "memory.hbm.bandwidth_bytes_per_cycle"


# ----------------------------------------------------------------------------- the U280 example

def test_u280_decode_never_beats_the_hbm_bound():
    arch = load_arch(U280)
    for sp, bits in ((None, 8.0), ({"kind": "nm", "n": 2, "m": 4}, 0.5 * (8 + 2)),
                     ({"kind": "block", "block": [16, 16], "density": 0.5}, 0.5 * 8)):
        trace = llama2_7b(1, 2048, "decode", sp)
        result = simulate(trace, arch)
        bound_s = weight_bytes(trace, bits) / HBM_BYTES_PER_S
        assert result.totals["latency_s"] >= bound_s
        assert result.totals["latency_s"] < 2.0 * bound_s   # decode is memory-bound, not far above it
        for row in result.rows:
            assert 0.0 <= row["utilization"] <= 1.0 + 1e-9
    for name in ("llama2_7b_decode_kv2048.yaml", "llama2_7b_decode_kv2048_2to4.yaml"):
        trace = load_trace(ROOT / "workloads" / "traces" / name)
        result = simulate(trace, arch)
        bits = 5.0 if "2to4" in name else 8.0      # lm_head stays dense in the 2:4 trace: a lower bound
        assert result.totals["latency_s"] >= weight_bytes(trace, bits) / HBM_BYTES_PER_S
        assert result.totals["latency_s"] >= memory_bound(trace, arch)["bound_s"]
        assert all(r["utilization"] <= 1.0 + 1e-9 for r in result.rows)


def test_memory_bound_counts_the_stored_weight_bytes():
    # LLaMA-2-7B GEMM weights: 32 x (4 x 4096^2 + 3 x 4096 x 11008) + 4096 x 32000 = 6,607,077,376
    # INT8 bytes; 2:4 on every projection: 10 bits per 2 of 4 values = 0.625 B per dense weight.
    arch = load_arch(U280)
    dense = memory_bound(llama2_7b(1, 2048, "decode"), arch)
    assert dense["weight_bytes"] == 32 * (4 * 4096 ** 2 + 3 * 4096 * 11008) + 4096 * 32000 == 6_607_077_376
    assert dense["kv_bytes"] == 2 * 32 * 32 * 2048 * 128
    assert dense["bound_s"] == pytest.approx(6_607_077_376 / HBM_BYTES_PER_S, rel=1e-4)
    assert dense["tokens"] == 1
    sparse = memory_bound(llama2_7b(1, 2048, "decode", {"kind": "nm", "n": 2, "m": 4}), arch)
    layers = 32 * (4 * 4096 ** 2 + 3 * 4096 * 11008)
    assert sparse["weight_bytes"] == pytest.approx(layers * 0.625 + 4096 * 32000)
    assert memory_bound(llama2_7b(2048, 2048, "prefill"), arch)["tokens"] == 2048


def test_u280_prefill_2to4_between_1x_and_2x_of_dense_same_dsps():
    arch = load_arch(U280)
    dense = simulate(llama2_7b(2048, 2048, "prefill"), arch)
    sparse = simulate(llama2_7b(2048, 2048, "prefill", {"kind": "nm", "n": 2, "m": 4}), arch)
    for d, s in zip(dense.rows, sparse.rows):
        if d["kind"] == "gemm" and d["op"] != "lm_head":
            assert d["stall_cycles"] < 0.01 * d["cycles"]         # compute-bound
            speedup = d["cycles"] / s["cycles"]
            assert 1.0 < speedup <= 2.0, (d["op"], speedup)
        assert d["utilization"] <= 1.0 + 1e-9 and s["utilization"] <= 1.0 + 1e-9
    total = dense.totals["latency_s"] / sparse.totals["latency_s"]
    assert 1.0 < total <= 2.0
    shipped = [ROOT / "workloads" / "traces" / f"llama2_7b_prefill2048{s}.yaml" for s in ("", "_2to4")]
    d, s = (simulate(load_trace(p), arch).totals for p in shipped)
    assert 1.0 < d["latency_s"] / s["latency_s"] <= 2.0
    assert d["utilization"] <= 1.0 and s["utilization"] <= 1.0


def test_u280_resources_within_device():
    report = fpga.resources_report(load_arch(U280))
    assert report["feasible"]
    for key in ("dsp", "bram36", "uram", "lut", "ff"):
        assert report[key]["used"] <= report[key]["available"]
    assert report["dsp"]["available"] == 9024
    assert report["dsp"]["used"] == 640 * 14 + 7


def test_energy_components_use_cited_fpga_defaults():
    arch = load_arch(U280)
    result = simulate(llama2_7b(1, 2048, "decode"), arch)
    t = result.totals
    assert t["energy_device_static_pj"] == pytest.approx(arch.compute.static_power_w * t["latency_s"] * 1e12, rel=1e-6)
    hbm_bytes = sum(r["hbm_read_bytes"] for r in result.rows)
    assert t["energy_hbm_read_pj"] == pytest.approx(hbm_bytes * 8 * 3.9, rel=1e-9)
    assert t["energy_mac_pj"] == pytest.approx(t["macs"] * 0.5, rel=1e-9)


@pytest.mark.parametrize("name, bits, macs_per_slice_op", [
    ("fpga_u280_llm_sparse", 8, 2),        # packed INT8 pair per DSP48E2 op
    ("fpga_vcu1525_nm", 16, 1),            # one 16-bit MAC per DSP48E2 op
    ("fpga_versal_dsp58", 8, 3),           # DSP58 INT8 dot-3
    ("fpga_finn_mvu_zcu104", 8, 1),        # unpacked INT8
])
def test_shipped_mac_energy_is_the_cited_dsp_slice_energy(name, bits, macs_per_slice_op):
    arch = load_arch(ROOT / "arch_configs" / f"{name}.yaml")
    per_op = fpga.FAMILIES[arch.compute.family].dsp_op_pj
    assert arch.energy.mac_pj[bits] == pytest.approx(per_op / macs_per_slice_op, rel=0.01)


def test_decode_trace_simulates_fast():
    arch = load_arch(U280)
    trace = load_trace(ROOT / "workloads" / "traces" / "llama2_7b_decode_kv2048.yaml")
    simulate(trace, arch)  # warm-up (numba compile / cache load)
    start = time.perf_counter()
    for _ in range(5):
        simulate(trace, arch)
    per_run = (time.perf_counter() - start) / 5
    assert per_run < 0.25, per_run


def test_other_fpga_configs_load_and_run():
    for name in ("fpga_vcu1525_nm.yaml", "fpga_versal_dsp58.yaml", "fpga_finn_mvu_zcu104.yaml"):
        arch = load_arch(ROOT / "arch_configs" / name)
        assert fpga.resources_report(arch)["feasible"]
        trace = Trace(name="t", ops=[gemm(64, 256, 512, {"kind": "nm", "n": 2, "m": 8}, name="a"),
                                     Op(name="n", kind="norm", dims={"elements": 4096})])
        result = simulate(trace, arch)
        assert result.totals["cycles"] > 0
        assert all(r["utilization"] <= 1.0 + 1e-9 for r in result.rows)


# ----------------------------------------------------------------------------- bad input

def _write_bad(tmp_path, **changes):
    data = yaml.safe_load(U280.read_text())
    for key, value in changes.items():
        node = data
        *parents, last = key.split(".")
        for part in parents:
            node = node[part]
        node[last] = value
    arch = tmp_path / "bad.yaml"
    arch.write_text(yaml.safe_dump(data, sort_keys=False))
    trace = tmp_path / "t.yaml"
    trace.write_text(yaml.safe_dump({"schema_version": 1, "ops": [
        {"name": "g", "kind": "gemm", "dims": {"M": 1, "N": 64, "K": 64}}]}))
    return arch, trace


@pytest.mark.parametrize("changes, words", [
    # the four of the issue
    ({"compute.chain_length": 0}, ["compute.chain_length", "got 0", "at least one DSP slice"]),
    ({"compute.family": "dsp99e"}, ["compute.family", "does not exist", "did you mean 'dsp48e2'"]),
    ({"compute.chains": 704}, ["compute.chains", "9,863 DSP slices", "704 chains x 14 slices", "9,024",
                               "use at most 644 chains"]),
    ({"compute.family": "dsp48e1"}, ["compute.int8_packing", "dsp48e1 cannot pack", "int8_packing: false"]),
    # and their neighbours
    ({"compute.chain_length": -2}, ["compute.chain_length", "got -2"]),
    ({"compute.chains": 0}, ["compute.chains", "got 0"]),
    ({"compute.precision.weights": 16}, ["compute.int8_packing", "16", "at most 8 bits"]),
    ({"compute.chains_per_pe": 7}, ["compute.chains_per_pe", "does not divide the 640 chains", "use one of"]),
    ({"compute.dsp_budget": 9000}, ["compute.chains", "exactly one of chains or dsp_budget"]),
    ({"compute.sparse.nm_patterns": [124]}, ["compute.sparse.nm_patterns", "quote it", "'2:4'"]),
    ({"compute.sparse.nm_patterns": ["5:4"]}, ["compute.sparse.nm_patterns", "'5:4'", "n <= m"]),
    ({"compute.device.part": "xcu250"}, ["compute.device.part", "unknown FPGA part", "xcu280"]),
    ({"compute.onchip_resident": ["kv_cache"]}, ["compute.onchip_resident", "kv_cache", "'kv'"]),
    ({"memory.act_bram.capacity_kib": 20000}, ["memory.act_bram", "BRAM36 blocks", "2,016", "capacity_kib"]),
    ({"memory.weight_uram.bandwidth_bytes_per_cycle": 13824}, ["memory.weight_uram", "URAM blocks", "960"]),
    ({"compute.offchip_gb_per_s_per_channel": None}, ["compute.offchip_channels", "offchip_gb_per_s_per_channel"]),
    ({"compute.offchip_channels": 16}, ["memory.hbm.bandwidth_bytes_per_cycle", "16 channels", "1022.2"]),
])
def test_bad_input_one_clear_error_exit_2(tmp_path, capsys, changes, words):
    arch, trace = _write_bad(tmp_path, **changes)
    code, out, err = run_cli(capsys, "simulate", "--arch", arch, "--workload", trace)
    assert code == 2
    lines = [ln for ln in err.strip().splitlines() if ln]
    assert len(lines) == 1 and lines[0].startswith(f"error: {arch}: "), lines
    assert "Traceback" not in err
    for w in words:
        assert w in lines[0], (w, lines[0])


def test_over_budget_rejected_in_python_too():
    with pytest.raises(SparsimInputError, match="DSP slices"):
        small_arch(chain_length=16, chains=600)
    with pytest.raises(SparsimInputError, match="exactly one of chains or dsp_budget"):
        small_arch(chains=None)
    with pytest.raises(SparsimInputError, match="cannot hold one chain") as info:
        small_arch(chains=None, dsp_budget=7)
    assert info.value.field == "compute.dsp_budget"
    arch = small_arch(chains=None, dsp_budget=9000, chain_length=16)
    assert arch.compute.n_chains == 9000 // 16
