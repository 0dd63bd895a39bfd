"""Big GEMMs on the shipped edge NPU: the searched mapping against an independent K-tiled reference.

The reference (closed form, written here, not taken from the model): an output tile tm x tn keeps its
partial sums on chip at accumulator width while K streams through in one-column slices of A and
one-row slices of B; the best tile that fits the usable buffer (half of it, double-buffered) moves
A once per column tile, B once per row tile and the outputs once. DRAM bytes must be within 1.5x of
it, and cycles within 1.3x of max(compute, reference bytes / DRAM bandwidth), for OS, WS and IS.

The accumulator-level tests run on a spec built here with a separate `acc` level holding outputs
(conftest.edge_npu_with_accumulator), the layout a spec may declare instead of one shared SRAM.
"""

import math

import pytest

from simulator import arch_from_dict, load_arch, simulate
from simulator.trace import Op, Trace

from conftest import ARCH_DIR, edge_npu_with_accumulator

EDGE = ARCH_DIR / "edge_npu_32x32_os.yaml"
CASES = [(4096, 4096, 4096, 512), (2048, 11008, 4096, 512), (8192, 8192, 16384, 512), (1024, 1024, 1024, 64)]


def k_tiled_reference_bytes(M, N, K, usable, rows=32, cols=32, acc=4):
    """Fewest DRAM bytes (int8 operands) of an output-tile-stationary, K-streamed schedule."""
    best = math.inf
    for tm in list(range(rows, M, rows)) + [M]:
        for tn in list(range(cols, N, cols)) + [N]:
            if tm * tn * acc + tm + tn > usable:
                break
            best = min(best, M * K * math.ceil(N / tn) + K * N * math.ceil(M / tm) + M * N)
    return best


def gemm(M, N, K):
    return Trace(ops=[Op(name="g", kind="gemm", dims={"M": M, "N": N, "K": K})])


def run(M, N, K, kib, dataflow, *extra):
    arch = load_arch(EDGE, [f"compute.dataflow={dataflow}", f"memory.sram.capacity_kib={kib}", *extra])
    return arch, simulate(gemm(M, N, K), arch).rows[0]


def with_accumulator(dataflow="os", tiles=None):
    spec = edge_npu_with_accumulator()
    spec["compute"]["dataflow"] = dataflow
    if tiles:
        spec["compute"]["mapping"]["tiles"] = tiles
    return arch_from_dict(spec)


def test_reference_by_hand():
    # 64 x 64 x 100 in 16 KiB: a 32 x 64 or 64 x 32 tile fits (8192 + 96 B), 64 x 64 (16384 + 128 B) does not;
    # either reads one operand once and the other twice.
    assert k_tiled_reference_bytes(64, 64, 100, 16 * 1024) == 64 * 100 * 1 + 100 * 64 * 2 + 64 * 64


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
@pytest.mark.parametrize("M, N, K, kib", CASES, ids=lambda v: str(v))
def test_dram_bytes_and_cycles_near_the_k_tiled_bound(M, N, K, kib, dataflow):
    arch, row = run(M, N, K, kib, dataflow)
    ref = k_tiled_reference_bytes(M, N, K, kib * 1024 / 2)
    dram = row["lpddr4_read_bytes"] + row["lpddr4_write_bytes"]
    assert M * K + K * N + M * N <= dram <= 1.5 * ref
    bw = arch.memory["lpddr4"].bandwidth_bytes_per_cycle
    assert row["cycles"] <= 1.3 * max(row["compute_cycles"], ref / bw)


@pytest.mark.parametrize("dataflow", ["ws", "is"])
def test_partial_sums_need_the_accumulator_ports(dataflow):
    # A WS/IS fold reads and writes 32 partial sums of 4 B per cycle: 256 B/cycle on top of the operands'.
    # The shipped SRAM has them (384 B/cycle): compute-bound. With only 128 B/cycle of operand ports it is
    # SRAM-bound; a separate accumulator level with its own 256 B/cycle takes the partial sums instead.
    _, shipped = run(4096, 4096, 4096, 512, dataflow)
    assert shipped["cycles"] <= 1.01 * shipped["compute_cycles"]
    _, narrow = run(4096, 4096, 4096, 512, dataflow, "memory.sram.bandwidth_bytes_per_cycle=128")
    assert narrow["cycles"] > 2 * narrow["compute_cycles"]
    split = simulate(gemm(4096, 4096, 4096), with_accumulator(dataflow)).rows[0]
    assert split["acc_read_bytes"] + split["acc_write_bytes"] <= 256 * split["cycles"] * (1 + 1e-9)
    assert split["cycles"] <= 1.01 * split["compute_cycles"]


def test_a_spilling_mapping_moves_what_its_loop_nest_says_by_hand():
    # WS 4096^3 with an accumulator level and tiles N128 K1376 M14 (GEMM letters), loops N > K > M: the
    # A tile (M x K) changes every step and is re-read for each of the 32 N tiles; the B tile (K x N) stays
    # while M streams (read once); the output tile (M x N) leaves the accumulator before its 3 K segments
    # end, so its partial sums spill: written 3 times (twice at 4 B, finally at 1 B), read back twice at 4 B.
    arch = with_accumulator("ws", tiles={"K": 128, "C": 1376, "P": 14})
    row = simulate(gemm(4096, 4096, 4096), arch).rows[0]
    assert row["mapping"].startswith("N128 K1376 M14 | N>K>M | pinned")
    n = 4096 * 4096
    assert row["lpddr4_read_bytes"] == n * 32 + n + n * 2 * 4
    assert row["lpddr4_write_bytes"] == n * (2 * 4 + 1)
    assert "partial sums spill to DRAM" in row["notes"]


def test_an_output_stationary_array_parks_its_partial_sums_in_the_accumulator_between_k_tiles():
    # OS 64 x 64 x 256 with K (C) pinned to 64: 4 K tiles, so the PEs' 32-bit partial sums go to the
    # accumulator and back 3 times; the final 8-bit outputs are written once and read once to DRAM.
    trace = gemm(64, 64, 256)
    row = simulate(trace, with_accumulator(tiles={"C": 64})).rows[0]
    outs = 64 * 64
    assert row["acc_write_bytes"] == row["acc_read_bytes"] == outs * 3 * 4 + outs
    assert simulate(trace, with_accumulator()).rows[0]["acc_write_bytes"] == outs          # K whole: outputs only


def test_sram_area_and_access_energy_follow_capacity_not_ports():
    from simulator.area import area_breakdown_mm2, sram_area_mm2
    from simulator.energy import level_energy_pj_per_bit
    shipped = load_arch(EDGE)
    narrow = load_arch(EDGE, ["memory.sram.bandwidth_bytes_per_cycle=128"])
    assert area_breakdown_mm2(shipped)["sram"] == area_breakdown_mm2(narrow)["sram"] == sram_area_mm2(shipped, 512)
    assert level_energy_pj_per_bit(shipped, shipped.memory["sram"]) == level_energy_pj_per_bit(narrow, narrow.memory["sram"])
    split = with_accumulator("ws")                          # the same 512 KiB, re-partitioned: same SRAM area
    parts = area_breakdown_mm2(split)
    assert parts["acc"] == pytest.approx(sram_area_mm2(split, 64))
    assert parts["acc"] + parts["sram"] == pytest.approx(sram_area_mm2(split, 512))
    row = simulate(gemm(256, 256, 1024), split).rows[0]
    assert row["energy_acc_read_pj"] > 0 and row["energy_acc_write_pj"] > 0
