"""Energy = counts x per-action energy + leakage x time; area = PEs + SRAM; breakdowns sum to totals."""

import math

import pytest

from simulator import arch_from_dict, load_arch, load_trace, simulate
from simulator.area import area_breakdown_mm2
from simulator.trace import Op, Trace

from conftest import ARCH_DIR, TRACE_DIR


def tiny_arch(**energy):
    return arch_from_dict({
        "clock_mhz": 1000,
        "compute": {"kind": "systolic", "rows": 4, "cols": 4, "dataflow": "os"},
        "memory": {"sram": {"capacity_kib": 64, "ideal": True, "read_energy_pj_per_bit": 0.5,
                            "write_energy_pj_per_bit": 0.25, "leakage_mw": 2.0},
                   "dram": {"kind": "dram", "ideal": True, "read_energy_pj_per_bit": 10.0}},
        "energy": {"mac_pj": {8: 0.3}, **energy}})


def test_energy_of_one_fold_by_hand():
    # 4x4x10 GEMM, one OS fold: 160 MACs; DRAM reads A+B = 80 B, writes 16 B; the SRAM is filled with
    # those 80 B and 16 B of outputs, and read once for each (array side + write-back).
    row = simulate(Trace(ops=[Op(name="g", kind="gemm", dims={"M": 4, "N": 4, "K": 10})]), tiny_arch()).rows[0]
    assert row["energy_mac_pj"] == pytest.approx(160 * 0.3)
    assert row["energy_dram_read_pj"] == pytest.approx(80 * 8 * 10.0)
    assert row["energy_dram_write_pj"] == pytest.approx(16 * 8 * 10.0)  # writes default to the read energy
    assert row["energy_sram_read_pj"] == pytest.approx((80 + 16) * 8 * 0.5)
    assert row["energy_sram_write_pj"] == pytest.approx((80 + 16) * 8 * 0.25)
    cycles = 4 + 4 + 10 - 2 - 1
    assert row["energy_leakage_pj"] == pytest.approx(2.0e-3 * cycles * 1e-9 * 1e12)


@pytest.mark.parametrize("arch_name", ["edge_npu_32x32_os", "tpu_v1_256x256_ws", "scalesim_32x32_os"])
def test_energy_breakdown_sums_to_total_per_op_and_overall(arch_name):
    result = simulate(load_trace(TRACE_DIR / "resnet18.yaml"), load_arch(ARCH_DIR / f"{arch_name}.yaml"))
    for row in result.rows:
        parts = sum(v for k, v in row.items() if k.startswith("energy_") and k != "energy_pj")
        assert parts == pytest.approx(row["energy_pj"], rel=1e-12)
    total_parts = sum(v for k, v in result.totals.items() if k.startswith("energy_") and k != "energy_pj")
    assert total_parts == pytest.approx(result.totals["energy_pj"], rel=1e-12)


def test_area_is_pes_plus_sram_with_cited_45nm_defaults():
    arch = tiny_arch()
    parts = area_breakdown_mm2(arch)
    assert parts["compute"] == pytest.approx(16 * 503e-6)      # Horowitz: 8b mult 282 + 32b add 137, +20% regs
    assert parts["sram"] == pytest.approx(64 * 0.0057)
    assert sum(parts.values()) == pytest.approx(simulate(
        Trace(ops=[Op(name="g", kind="gemm", dims={"M": 4, "N": 4, "K": 4})]), arch).totals["area_mm2"])


def test_technology_scaling_shrinks_energy_linearly_and_area_quadratically():
    a45, a22 = tiny_arch(), tiny_arch(technology_nm=22.5)
    trace = Trace(ops=[Op(name="g", kind="gemm", dims={"M": 4, "N": 4, "K": 4})])
    # MAC energy is given explicitly in tiny_arch, so compare the default tables instead.
    from simulator.energy import level_energy_pj_per_bit
    from simulator.spec import MemoryLevel
    sram = MemoryLevel(capacity_kib=8, ideal=True)
    assert level_energy_pj_per_bit(a22, sram)[0] == pytest.approx(level_energy_pj_per_bit(a45, sram)[0] / 2)
    assert area_breakdown_mm2(a22)["compute"] == pytest.approx(area_breakdown_mm2(a45)["compute"] / 4)
    assert simulate(trace, a22).totals["cycles"] == simulate(trace, a45).totals["cycles"]


def test_sram_default_energy_fits_horowitz_points():
    # ~10 pJ / 64-bit read at 8 KB, ~20 pJ at 32 KB, ~100 pJ at 1 MB (ISSCC 2014): within 20%.
    from simulator.energy import level_energy_pj_per_bit
    from simulator.spec import MemoryLevel
    arch = tiny_arch()
    for kib, pj_per_64b in ((8, 10.0), (32, 20.0), (1024, 100.0)):
        got = level_energy_pj_per_bit(arch, MemoryLevel(capacity_kib=kib, ideal=True))[0] * 64
        assert math.isclose(got, pj_per_64b, rel_tol=0.2), (kib, got)
