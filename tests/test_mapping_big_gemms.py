"""Big GEMMs on the shipped edge NPU: the searched mapping against independent K-tiled references.

The references (closed forms, written here, not taken from the model), each the best tile that fits,
checked per on-chip level as the spec lays them out (usable half of a double-buffered level):
- output-tile stationary: an output tile tm x tn keeps its partial sums on chip at accumulator width
  (on the shipped NPU in the accumulator buffer `acc`) while K streams through in one-column slices
  of A and one-row slices of B (in the operand SRAM): A moves once per column tile, B once per row
  tile, the outputs once;
- operand-tile stationary with spilled partial sums: a tk x tn tile of B (or tm x tk of A) stays in
  the operand SRAM while the other operand streams past it a row at a time; every output is written
  once per K segment (at accumulator width, the last at output width) and read back between them.
DRAM bytes must be within 1.5x of the better of the two, and cycles within 1.3x of max(compute, those
bytes / DRAM bandwidth), for OS, WS and IS alike: partial sums have the accumulator's own ports, so no
SRAM bound is needed.
"""

import math

import pytest

from simulator import load_arch, simulate
from simulator.trace import Op, Trace

from conftest import ARCH_DIR

EDGE = ARCH_DIR / "edge_npu_32x32_os.yaml"
# (M, N, K, overrides). The 1024^3 case is the "64 KiB buffer" one: 64 KiB on chip in all, split like the
# shipped spec (7/8 operand SRAM, 1/8 accumulator: 56 + 8 KiB); the second 1024^3 case shrinks only the
# operand SRAM to 64 KiB and keeps the shipped 64 KiB accumulator.
SMALL = ("memory.sram.capacity_kib=56", "memory.acc.capacity_kib=8")
CASES = [(4096, 4096, 4096, ()), (2048, 11008, 4096, ()), (8192, 8192, 16384, ()),
         (1024, 1024, 1024, SMALL), (1024, 1024, 1024, ("memory.sram.capacity_kib=64",))]


def _usable_and_homes(arch):
    usable = {n: lv.capacity_bytes / (2 if lv.double_buffered else 1) for n, lv in arch.memory.items()
              if not lv.offchip}
    home = {x: next(n for n, lv in arch.memory.items() if not lv.offchip and x in lv.holds)
            for x in ("activations", "weights", "outputs")}
    return usable, home


def _fits(usable, home, a_bytes, b_bytes, out_bytes):
    need = dict.fromkeys(usable, 0.0)
    need[home["activations"]] += a_bytes
    need[home["weights"]] += b_bytes
    need[home["outputs"]] += out_bytes
    return all(need[n] <= usable[n] for n in usable)


def k_tiled_reference_bytes(M, N, K, arch, rows=32, cols=32, acc=4):
    """Fewest DRAM bytes (int8 operands) of an output-tile-stationary, K-streamed schedule on `arch`."""
    usable, home = _usable_and_homes(arch)
    best = math.inf
    for tm in list(range(rows, M, rows)) + [M]:
        for tn in list(range(cols, N, cols)) + [N]:
            if not _fits(usable, home, tm, tn, tm * tn * acc):
                break
            best = min(best, M * K * math.ceil(N / tn) + K * N * math.ceil(M / tm) + M * N)
    return best


def spill_reference_bytes(M, N, K, arch, rows=32, cols=32, acc=4):
    """Fewest DRAM bytes of an operand-tile-stationary schedule whose partial sums spill to DRAM: a
    tk x tn tile of B stays while A streams past it in slices of one array edge (`rows` rows of tk),
    with that slice's `rows` x tn partial sums on chip; or the same with A's tm x tk tile and B streamed."""
    usable, home = _usable_and_homes(arch)
    best = math.inf
    for tk in list(range(rows, K, rows)) + [K]:
        spills = M * N * (1 + 2 * acc * (math.ceil(K / tk) - 1))
        for t in [*range(cols, N, cols), N][::-1]:                          # B tile stationary
            if _fits(usable, home, rows * tk, tk * t, rows * t * acc):
                best = min(best, M * K * math.ceil(N / t) + K * N + spills)
                break
        for t in [*range(rows, M, rows), M][::-1]:                          # A tile stationary
            if _fits(usable, home, t * tk, tk * cols, t * cols * acc):
                best = min(best, M * K + K * N * math.ceil(M / t) + spills)
                break
    return best


def reference_bytes(M, N, K, arch):
    return min(k_tiled_reference_bytes(M, N, K, arch), spill_reference_bytes(M, N, K, arch))


def run(M, N, K, dataflow, *extra):
    arch = load_arch(EDGE, [f"compute.dataflow={dataflow}", *extra])
    row = simulate(Trace(ops=[Op(name="g", kind="gemm", dims={"M": M, "N": N, "K": K})]), arch).rows[0]
    return arch, row


def test_reference_by_hand():
    # 64 x 64 x 100 in one 32 KiB double-buffered SRAM (16 KiB usable): a 32 x 64 or 64 x 32 tile fits
    # (8192 + 96 B), 64 x 64 (16384 + 128 B) does not; either reads one operand once and the other twice.
    shared = load_arch(EDGE, ["memory.sram.capacity_kib=32", "memory.acc.capacity_kib=0.001"])
    shared = shared.model_copy(update={"memory": {n: lv.model_copy(update={"holds": ["activations", "weights", "outputs"]})
                                                  if n == "sram" else lv for n, lv in shared.memory.items() if n != "acc"}})
    assert k_tiled_reference_bytes(64, 64, 100, shared) == 64 * 100 * 1 + 100 * 64 * 2 + 64 * 64
    # Split: a 16 KiB accumulator (8 KiB usable) holds 32 x 64 partial sums; the slices always fit the SRAM.
    split = load_arch(EDGE, ["memory.acc.capacity_kib=16"])
    assert k_tiled_reference_bytes(64, 64, 100, split) == 64 * 100 * 1 + 100 * 64 * 2 + 64 * 64
    assert k_tiled_reference_bytes(64, 64, 100, load_arch(EDGE)) == 64 * 100 + 100 * 64 + 64 * 64   # 64 x 64 fits
    # Spilling: 4096^3 with a 1024 x 192 B tile and a 32 x 1024 A slice (exactly the 224 KiB usable SRAM;
    # 32 x 192 partial sums of 4 B in the 32 KiB usable accumulator): A read 22 times, B once, outputs
    # written 4 times (4, 4, 4 and 1 B) and read back 3 times (4 B).
    n = 4096 * 4096
    assert spill_reference_bytes(4096, 4096, 4096, load_arch(EDGE)) <= n * 22 + n + n * (1 + 8 * 3)
    assert spill_reference_bytes(64, 64, 100, load_arch(EDGE)) == 64 * 100 + 100 * 64 + 64 * 64


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
@pytest.mark.parametrize("M, N, K, extra", CASES, ids=lambda v: str(v))
def test_dram_bytes_and_cycles_near_the_k_tiled_bound(M, N, K, extra, dataflow):
    arch, row = run(M, N, K, dataflow, *extra)
    ref = reference_bytes(M, N, K, arch)
    dram = row["lpddr4_read_bytes"] + row["lpddr4_write_bytes"]
    assert M * K + K * N + M * N <= dram <= 1.5 * ref
    bw = arch.memory["lpddr4"].bandwidth_bytes_per_cycle
    assert row["cycles"] <= 1.3 * max(row["compute_cycles"], ref / bw)


@pytest.mark.parametrize("dataflow", ["ws", "is"])
def test_partial_sums_use_the_accumulator_ports_not_the_operand_sram(dataflow):
    # A WS/IS fold reads and writes 32 partial sums of 4 B per cycle: 256 B/cycle, the accumulator's
    # bandwidth. Through the 128 B/cycle operand SRAM (one shared buffer) the same GEMM is SRAM-bound.
    arch, row = run(4096, 4096, 4096, dataflow)
    assert row["acc_read_bytes"] + row["acc_write_bytes"] <= 256 * row["cycles"] * (1 + 1e-9)
    assert row["cycles"] <= 1.01 * row["compute_cycles"]
    shared = arch.model_copy(update={"memory": {
        n: lv.model_copy(update={"holds": ["activations", "weights", "outputs"], "capacity_kib": 512})
        if n == "sram" else lv for n, lv in arch.memory.items() if n != "acc"}})
    one = simulate(Trace(ops=[Op(name="g", kind="gemm", dims={"M": 4096, "N": 4096, "K": 4096})]), shared).rows[0]
    assert one["cycles"] > 2 * one["compute_cycles"]


def test_a_spilling_mapping_moves_what_its_loop_nest_says_by_hand():
    # WS 4096^3 with tiles N128 K1376 M14 (GEMM letters), loops N > K > M: the A tile (M x K) changes every
    # step and is re-read for each of the 32 N tiles; the B tile (K x N) stays while M streams (read once);
    # the output tile (M x N) leaves the accumulator before its 3 K segments end, so its partial sums spill:
    # written 3 times (twice at 4 B, finally at 1 B) and read back twice at 4 B.
    arch = load_arch(EDGE, ["compute.dataflow=ws"])
    arch = arch.model_copy(update={"compute": arch.compute.model_copy(update={
        "mapping": arch.compute.mapping.model_copy(update={"tiles": {"K": 128, "C": 1376, "P": 14}})})})
    row = simulate(Trace(ops=[Op(name="g", kind="gemm", dims={"M": 4096, "N": 4096, "K": 4096})]), arch).rows[0]
    assert row["mapping"].startswith("N128 K1376 M14 | N>K>M | pinned")
    n = 4096 * 4096
    assert row["lpddr4_read_bytes"] == n * 32 + n + n * 2 * 4
    assert row["lpddr4_write_bytes"] == n * (2 * 4 + 1)
    assert "partial sums spill to DRAM" in row["notes"]


def test_an_output_stationary_array_parks_its_partial_sums_in_the_accumulator_between_k_tiles():
    # OS 64 x 64 x 256 with K (C) pinned to 64: 4 K tiles, so the PEs' 32-bit partial sums go to the
    # accumulator and back 3 times; the final 8-bit outputs are written once and read once to DRAM.
    arch = load_arch(EDGE)
    trace = Trace(ops=[Op(name="g", kind="gemm", dims={"M": 64, "N": 64, "K": 256})])
    pinned = arch.model_copy(update={"compute": arch.compute.model_copy(update={
        "mapping": arch.compute.mapping.model_copy(update={"tiles": {"C": 64}})})})
    row = simulate(trace, pinned).rows[0]
    outs = 64 * 64
    assert row["acc_write_bytes"] == row["acc_read_bytes"] == outs * 3 * 4 + outs
    assert simulate(trace, arch).rows[0]["acc_write_bytes"] == outs          # K whole: outputs only


def test_the_accumulator_has_area_and_access_energy():
    from simulator.area import area_breakdown_mm2, sram_area_mm2
    arch = load_arch(EDGE)
    parts = area_breakdown_mm2(arch)
    assert parts["acc"] == pytest.approx(sram_area_mm2(arch, 64)) and parts["acc"] + parts["sram"] == \
        pytest.approx(sram_area_mm2(arch, 512))                               # the 512 KiB, re-partitioned
    _, row = run(256, 256, 1024, "ws")
    assert row["energy_acc_read_pj"] > 0 and row["energy_acc_write_pj"] > 0
