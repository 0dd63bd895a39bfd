"""Memory model: traffic per level, reuse, double buffering and bandwidth stalls, checked by hand."""

import math

import pytest

from simulator import arch_from_dict, simulate
from simulator.trace import Op, Trace

R = C = 8


def arch(dataflow="os", dram_bpc=4.0, buffer_kib=64.0, double_buffered=True, shared=False):
    memory = ({"sram": {"capacity_kib": buffer_kib, "ideal": True}} if shared else {
        "ibuf": {"capacity_kib": buffer_kib, "ideal": True, "holds": ["activations"]},
        "wbuf": {"capacity_kib": buffer_kib, "ideal": True, "holds": ["weights"]},
        "obuf": {"capacity_kib": buffer_kib, "ideal": True, "holds": ["outputs"]}})
    memory["dram"] = {"kind": "dram", "bandwidth_bytes_per_cycle": dram_bpc, "double_buffered": double_buffered}
    return arch_from_dict({"clock_mhz": 1000, "memory": memory,
                           "compute": {"kind": "systolic", "rows": R, "cols": C, "dataflow": dataflow,
                                       "precision": {"activations": 8, "weights": 8, "outputs": 8}}})


def gemm(M, N, K):
    return Trace(ops=[Op(name="g", kind="gemm", dims={"M": M, "N": N, "K": K})])


def test_single_fold_is_fetch_then_compute_then_writeback():
    # One OS fold: fetch A (8x100) and B (100x8) = 1600 B, compute 8+8+100-2 cycles, write 64 B, at 4 B/cycle.
    row = simulate(gemm(8, 8, 100), arch()).rows[0]
    per_fold = R + C + 100 - 2
    assert row["compute_cycles"] == per_fold - 1
    assert row["stall_cycles"] == pytest.approx(1600 / 4 + 64 / 4)
    assert row["dram_read_bytes"] == 1600 and row["dram_write_bytes"] == 64


def test_double_buffering_hides_fetches_behind_compute():
    # 4 OS folds along N; B tiles (K x 8) stream every fold, A (8 x K) once. Compute-bound: K=400 -> 414-cycle
    # folds, fetching one B tile (3200 B) takes 800 cycles at 4 B/cycle, so folds 2..4 wait on DRAM.
    M, N, K = 8, 32, 400
    per_fold = R + C + K - 2
    db = simulate(gemm(M, N, K), arch()).rows[0]
    a, b, out = 8 * K, K * 8, 64
    expected = ((a + b) / 4                               # first fetch, nothing to hide it behind
                + max(per_fold, b / 4)                    # fold 0 while fold 1's B tile arrives
                + 2 * max(per_fold, b / 4 + out / 4)      # folds 1, 2: next fetch + previous write-back
                + max(per_fold, out / 4)                  # fold 3: only fold 2's write-back remains
                + out / 4)                                # last write-back
    assert db["cycles"] == pytest.approx(expected - 1)
    serial = simulate(gemm(M, N, K), arch(double_buffered=False)).rows[0]
    assert serial["cycles"] == pytest.approx((a + 4 * b + 4 * out) / 4 + 4 * per_fold - 1)
    assert serial["cycles"] > db["cycles"]


def test_ideal_dram_never_stalls():
    ideal = arch_from_dict({"clock_mhz": 500, "compute": {"kind": "systolic", "rows": 4, "cols": 4, "dataflow": "ws"},
                            "memory": {"dram": {"kind": "dram", "ideal": True}}})
    assert simulate(gemm(50, 60, 70), ideal).rows[0]["stall_cycles"] == 0


def test_weights_that_do_not_fit_are_refetched_per_row_fold():
    # OS: the loop over M-folds re-reads B unless all of B stays in its buffer.
    M, N, K = 64, 64, 256
    big = simulate(gemm(M, N, K), arch(buffer_kib=64)).rows[0]
    small = simulate(gemm(M, N, K), arch(buffer_kib=8)).rows[0]  # B = 16 KiB > 4 KiB usable (double-buffered)
    assert big["dram_read_bytes"] == M * K + K * N
    assert small["dram_read_bytes"] == M * K + math.ceil(M / R) * K * N
    assert small["stall_cycles"] > big["stall_cycles"]


def test_ws_partial_sums_spill_when_output_buffer_is_too_small():
    # WS accumulates an M x 8 output tile over K/8 folds in 32-bit partial sums: 4096 x 8 x 4 B = 128 KiB.
    M, N, K = 4096, 8, 32
    fits = simulate(gemm(M, N, K), arch("ws", buffer_kib=512)).rows[0]
    spills = simulate(gemm(M, N, K), arch("ws", buffer_kib=64)).rows[0]
    assert fits["dram_write_bytes"] == M * N
    k_folds = K // R
    assert spills["dram_write_bytes"] == (k_folds - 1) * M * N * 4 + M * N
    assert spills["dram_read_bytes"] - fits["dram_read_bytes"] == (k_folds - 1) * M * N * 4
    assert "spill" in spills["notes"]


def test_per_level_access_counts_follow_the_dataflow():
    # OS: the array reads A once per column fold and B once per row fold from the buffers.
    M, N, K = 32, 24, 40
    row = simulate(gemm(M, N, K), arch()).rows[0]
    assert row["ibuf_read_bytes"] == M * K * math.ceil(N / C)
    assert row["wbuf_read_bytes"] == K * N * math.ceil(M / R)
    assert row["ibuf_write_bytes"] == M * K and row["wbuf_write_bytes"] == K * N
    assert row["obuf_write_bytes"] == M * N


def test_slow_onchip_buffer_stalls_the_array():
    slow = arch_from_dict({"clock_mhz": 1000, "compute": {"kind": "systolic", "rows": 8, "cols": 8, "dataflow": "os"},
                           "memory": {"sram": {"capacity_kib": 256, "bandwidth_bytes_per_cycle": 1},
                                      "dram": {"kind": "dram", "ideal": True}}})
    row = simulate(gemm(64, 64, 64), slow).rows[0]
    assert row["stall_cycles"] > row["compute_cycles"]  # 1 B/cycle cannot feed 16 operands per cycle
