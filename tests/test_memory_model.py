"""The fixed fold-order memory model (`mapping: {mode: fixed}`, `simulator.memory`): traffic per level,
reuse, double buffering and bandwidth stalls, checked by hand. The searched mapping (the default) is
tested in tests/test_mapping*.py."""

import math

import numpy as np
import pytest

from simulator import arch_from_dict, simulate
from simulator.trace import Op, Trace

R = C = 8
FIXED = {"mode": "fixed"}


def arch(dataflow="os", dram_bpc=4.0, buffer_kib=64.0, double_buffered=True, shared=False, kib=None):
    kib = {"ibuf": buffer_kib, "wbuf": buffer_kib, "obuf": buffer_kib} | (kib or {})
    memory = ({"sram": {"capacity_kib": buffer_kib, "ideal": True}} if shared else {
        "ibuf": {"capacity_kib": kib["ibuf"], "ideal": True, "holds": ["activations"]},
        "wbuf": {"capacity_kib": kib["wbuf"], "ideal": True, "holds": ["weights"]},
        "obuf": {"capacity_kib": kib["obuf"], "ideal": True, "holds": ["outputs"]}})
    memory["dram"] = {"kind": "dram", "bandwidth_bytes_per_cycle": dram_bpc, "double_buffered": double_buffered}
    return arch_from_dict({"clock_mhz": 1000, "memory": memory,
                           "compute": {"kind": "systolic", "rows": R, "cols": C, "dataflow": dataflow,
                                       "precision": {"activations": 8, "weights": 8, "outputs": 8},
                                       "mapping": FIXED}})


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
    ideal = arch_from_dict({"clock_mhz": 500, "compute": {"kind": "systolic", "rows": 4, "cols": 4, "dataflow": "ws", "mapping": FIXED},
                            "memory": {"dram": {"kind": "dram", "ideal": True}}})
    assert simulate(gemm(50, 60, 70), ideal).rows[0]["stall_cycles"] == 0


def test_weights_that_do_not_fit_are_refetched_per_row_fold():
    # OS: the loop over M-folds re-reads B unless all of B stays in its buffer or several row tiles of A do.
    M, N, K = 64, 64, 256
    big = simulate(gemm(M, N, K), arch(buffer_kib=64)).rows[0]
    # 6 KiB buffers: 3 KiB usable (double-buffered) holds one 8 x 256 B row tile of A, not two, and not
    # B (16 KiB), so each row fold streams all of B again.
    small = simulate(gemm(M, N, K), arch(buffer_kib=6)).rows[0]
    assert big["dram_read_bytes"] == M * K + K * N
    assert small["dram_read_bytes"] == M * K + math.ceil(M / R) * K * N
    assert small["stall_cycles"] > big["stall_cycles"]


@pytest.mark.parametrize("ibuf_kib, rows_held", [(6, 1), (8, 2), (12, 3), (16, 4), (24, 6), (32, 8)])
def test_os_blocking_streams_weights_once_per_block_of_row_tiles(ibuf_kib, rows_held):
    # OS, M = K = N = 256 on 8 x 8: 32 row tiles of A (8 x 256 = 2 KiB each), B = 64 KiB never fits the
    # 8 KiB weight buffer (4 KiB usable), but one 256 x 8 weight tile (2 KiB) does. The activation buffer
    # holds b = floor(usable / 2 KiB) row tiles, so B is streamed once per block: ceil(32 / b) times.
    M = N = K = 256
    usable = ibuf_kib * 1024 / 2
    assert math.floor(usable / (R * K)) == rows_held
    row = simulate(gemm(M, N, K), arch(dram_bpc=256, kib={"ibuf": ibuf_kib, "wbuf": 8})).rows[0]
    n_out = M // R
    assert row["dram_read_bytes"] == M * K + math.ceil(n_out / rows_held) * K * N
    assert row["wbuf_write_bytes"] == math.ceil(n_out / rows_held) * K * N
    assert row["ibuf_write_bytes"] == M * K                         # activations fetched once
    assert row["dram_write_bytes"] == M * N
    # Compute-bound at 256 B/cycle (a 2 KiB tile takes 8 cycles, a fold 8 + 8 + 256 - 2): only the first
    # fetch (one A and one B tile) and the last write-back (8 x 8 B) are not hidden.
    folds, per_fold = (M // R) * (N // C), R + C + K - 2
    assert row["compute_cycles"] == folds * per_fold - 1
    assert row["stall_cycles"] == pytest.approx((R * K + K * C) / 256 + R * C / 256)


def test_a_block_of_all_row_tiles_matches_resident_weights():
    # b = n_out: all of A (64 x 256 = 16 KiB) stays on chip while B (16 KiB) streams once, in 8 KiB
    # weight buffer halves: the same bytes at every level, and (compute-bound) the same cycles, as B resident.
    M, N, K = 64, 64, 256
    blocked = simulate(gemm(M, N, K), arch(dram_bpc=256, kib={"ibuf": 64, "wbuf": 8})).rows[0]
    resident = simulate(gemm(M, N, K), arch(dram_bpc=256, kib={"ibuf": 64, "wbuf": 64})).rows[0]
    assert blocked["dram_read_bytes"] == resident["dram_read_bytes"] == M * K + K * N
    for key in ("cycles", "stall_cycles", "ibuf_read_bytes", "wbuf_read_bytes", "wbuf_write_bytes", "obuf_write_bytes"):
        assert blocked[key] == resident[key], key


@pytest.mark.parametrize("dataflow", ["ws", "is"])
@pytest.mark.parametrize("obuf_kib, tiles_held", [(2, 0), (4, 1), (8, 2), (16, 4), (32, 8)])
def test_ws_is_blocking_keeps_partial_sums_of_several_output_tiles(dataflow, obuf_kib, tiles_held):
    # M = N = K = 64 on 8 x 8. WS streams A (4 KiB) in 64 x 8 slices per K fold and accumulates 64 x 8
    # output tiles in 32-bit partial sums (2 KiB each); IS is the mirror image with B and 8 x 64 tiles.
    # The streamed operand does not fit its 4 KiB buffer (2 KiB usable) but a slice (512 B) does. With
    # b output tiles of partial sums in the output buffer (half usable), each slice serves b folds.
    M = N = K = 64
    streamed_buf = "ibuf" if dataflow == "ws" else "wbuf"
    row = simulate(gemm(M, N, K), arch(dataflow, dram_bpc=256, kib={streamed_buf: 4, "obuf": obuf_kib})).rows[0]
    assert math.floor(obuf_kib * 1024 / 2 / (64 * 8 * 4)) == tiles_held
    n_out, k_folds = 8, 8
    if tiles_held == 0:                       # not even one tile of partial sums: they spill (as before)
        assert "spill" in row["notes"]
        assert row["dram_write_bytes"] == (k_folds - 1) * M * N * 4 + M * N
        # the stationary operand once, the streamed one on every outer step, partial sums read back
        assert row["dram_read_bytes"] == 64 * 64 + n_out * 64 * 64 + (k_folds - 1) * M * N * 4
        return
    assert row["notes"] == ""
    assert row["dram_write_bytes"] == M * N
    # the stationary operand once, the streamed one once per block of output tiles
    assert row["dram_read_bytes"] == 64 * 64 + math.ceil(n_out / tiles_held) * 64 * 64


def test_blocked_order_permutes_per_fold_compute_cycles():
    # OS 16 x 16 x 8 on 8 x 8: folds (outer M tile p, inner N tile q), 64 B tiles of A, B and outputs.
    # A buffer of 128 B (not double-buffered) holds both A row tiles; the 64 B weight buffer holds one B
    # tile but not B. One block of both row tiles runs (0,0) (1,0) (0,1) (1,1): fetches A0+B0 (128 B),
    # A1, B1, nothing. At 1 B/cycle, double-buffered, fold k's fetch overlaps fold k-1 together with
    # the write-back of fold k-2: stall = 128 + max(0, 64 - c(0,0)) + max(0, 64 + 64 - c(1,0))
    # + max(0, 0 + 64 - c(0,1)) + max(0, 64 - c(1,1)) + 64 (last write-back).
    from simulator.memory import array_memory_cost

    a = arch_from_dict({"clock_mhz": 1000, "compute": {"kind": "systolic", "rows": 8, "cols": 8, "dataflow": "os",
                                                                     "mapping": FIXED},
                        "memory": {"ibuf": {"capacity_kib": 128 / 1024, "ideal": True, "holds": ["activations"],
                                            "double_buffered": False},
                                   "wbuf": {"capacity_kib": 64 / 1024, "ideal": True, "holds": ["weights"],
                                            "double_buffered": False},
                                   "obuf": {"capacity_kib": 1, "ideal": True, "holds": ["outputs"]},
                                   "dram": {"kind": "dram", "bandwidth_bytes_per_cycle": 1}}})
    bits = {"activations": {"ibuf": 8, "dram": 8}, "weights": {"wbuf": 8, "dram": 8},
            "outputs": {"obuf": 8, "dram": 8}}
    c = {(0, 0): 100, (0, 1): 10, (1, 0): 200, (1, 1): 100}           # given in grid order (p, q)
    grid_order = np.array([c[(0, 0)], c[(0, 1)], c[(1, 0)], c[(1, 1)]], dtype=float)
    mem = array_memory_cost(a, 16, 16, 8, "os", 8, 8, grid_order, bits, 32)
    blocked = 128 + max(0, 64 - c[(0, 0)]) + max(0, 128 - c[(1, 0)]) + max(0, 64 - c[(0, 1)]) \
        + max(0, 64 - c[(1, 1)]) + 64
    # Outer-major would refetch B per row tile: (0,0) (0,1) (1,0) (1,1) fetch A0+B0, B1, A1+B0, B1.
    outer_major = 128 + max(0, 64 - c[(0, 0)]) + max(0, 128 + 64 - c[(0, 1)]) + max(0, 64 + 64 - c[(1, 0)]) \
        + max(0, 64 - c[(1, 1)]) + 64
    assert blocked == 246 < outer_major
    assert mem.dram_stall_cycles == blocked
    assert mem.reads_bytes["dram"] == 16 * 8 + 8 * 16                  # A once, B once
    assert mem.writes_bytes["dram"] == 16 * 16


def test_blocked_schedule_kernel_equals_the_fold_schedule_of_the_reordered_folds():
    from simulator.kernels.schedule import blocked_fold_schedule, fold_schedule

    rng = np.random.default_rng(1)
    n_out, n_in = 5, 3
    compute = rng.integers(1, 60, n_out * n_in).astype(float)
    base, store = rng.integers(0, 40, n_out * n_in).astype(float), rng.integers(0, 40, n_out * n_in).astype(float)
    held, streamed = rng.integers(0, 90, n_out).astype(float), rng.integers(0, 90, n_in).astype(float)
    cases = [(1, False, True), (2, False, True), (5, False, True), (3, True, True), (2, False, False)]
    for block, resident, db in cases:
        order = [(p, q, s) for s in range(0, n_out, block) for q in range(n_in)
                 for p in range(s, min(s + block, n_out))]
        f = [p * n_in + q for p, q, _ in order]
        load = [base[p * n_in + q] + (held[p] if q == 0 else 0) + (streamed[q] if p == (0 if resident else s) else 0)
                for p, q, s in order]
        expected = fold_schedule(compute[f], np.array(load), store[f], 0.5, db)
        assert blocked_fold_schedule(compute, base, held, streamed, store, n_in, block, resident, 0.5, db) \
            == pytest.approx(expected, rel=1e-12)


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
    slow = arch_from_dict({"clock_mhz": 1000, "compute": {"kind": "systolic", "rows": 8, "cols": 8, "dataflow": "os",
                                                                     "mapping": FIXED},
                           "memory": {"sram": {"capacity_kib": 256, "bandwidth_bytes_per_cycle": 1},
                                      "dram": {"kind": "dram", "ideal": True}}})
    row = simulate(gemm(64, 64, 64), slow).rows[0]
    assert row["stall_cycles"] > row["compute_cycles"]  # 1 B/cycle cannot feed 16 operands per cycle
