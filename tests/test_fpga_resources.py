"""FPGA resource accounting: FINN-style BRAM/URAM counts, device budgets, feasibility errors."""

from pathlib import Path

import pytest
import yaml

from simulator import fpga, load_arch
from simulator.errors import SparsimInputError
from simulator.spec import arch_from_dict

ROOT = Path(__file__).resolve().parents[1]
U280 = ROOT / "arch_configs" / "fpga_u280_llm_sparse.yaml"


def test_bram_counts_pick_the_best_aspect_ratio():
    # 72 x 512: two 512x36 BRAM18 = one BRAM36.
    assert fpga.bram18_count(72, 512) == 2 and fpga.bram36_count(72, 512) == 1
    # 8 bits x 16K: every shape from 16Kx1 to 2Kx9 needs 8 BRAM18 (128 Kib of data) -> 4 BRAM36.
    assert fpga.bram18_count(8, 16384) == 8 and fpga.bram36_count(8, 16384) == 4
    # a shallow, 1-bit memory still takes a whole block
    assert fpga.bram36_count(1, 100) == 1
    # wide and shallow: 1024 bits x 32 deep -> ceil(1024/36) = 29 BRAM18 in 512x36 mode
    assert fpga.bram18_count(1024, 32) == 29 and fpga.bram36_count(1024, 32) == 15


def test_uram_count_is_width_over_72_times_depth_over_4096():
    assert fpga.uram_count(72, 4096) == 1
    assert fpga.uram_count(144, 8192) == 4
    assert fpga.uram_count(73, 4097) == 4


def test_finn_mvu_memory_and_cycles():
    # MW=256 inputs, MH=64 outputs, PE=16, SIMD=32, 2-bit weights:
    # width = SIMD*W*PE = 1024 bits, depth = MW*MH/(SIMD*PE) = 32, cycles = (MH/PE)*(MW/SIMD) = 32/vector.
    r = fpga.finn_mvu(256, 64, 16, 32, 2, vectors=3)
    assert r["mem_width_bits"] == 1024 and r["mem_depth"] == 32
    assert r["cycles"] == 4 * 8 * 3
    assert r["bram36"] == 15 and r["uram"] == 15
    with pytest.raises(SparsimInputError, match="must divide"):
        fpga.finn_mvu(256, 64, 5, 32, 2)


def test_u280_report_counts():
    arch = load_arch(U280)
    report = fpga.resources_report(arch)
    # DSP: 640 chains x 14 slices + 7 reserved by the shell
    assert report["dsp"]["used"] == 8967 and report["dsp"]["available"] == 9024
    # act_bram: 2048 B/cycle -> 16384-bit wide, 4608 KiB / 16384 bits = 2304 deep;
    # best shape 512x36: 456 x 5 = 2280 BRAM18 = 1140 BRAM36, plus 264 for the shell.
    assert report["bram36"]["used"] == 1140 + 264
    # weight_uram: 6912 B/cycle -> 55296 bits = 768 URAM wide, 27648 KiB / 55296 bits = 4096 deep -> 768
    assert report["uram"]["used"] == 768
    assert report["feasible"] and not report["over_budget"]
    assert report["peak_macs_per_cycle"] == 640 * 14 * 2
    assert 0 < report["lut"]["utilization"] < 1 and 0 < report["ff"]["utilization"] < 1


def test_sparse_chain_costs_luts():
    base = yaml.safe_load(U280.read_text())
    dense = dict(base, compute={k: v for k, v in base["compute"].items() if k != "sparse"})
    with_sparse = fpga.resources_report(load_arch(U280))["lut"]["used"]
    without = fpga.resources_report(arch_from_dict(dense))["lut"]["used"]
    # 640 chains x 14 slots x 8 bits x 3 LUT6 per 8:1 mux bit
    assert with_sparse - without == 640 * 14 * 8 * 3


def test_bram_over_budget_is_rejected():
    data = yaml.safe_load(U280.read_text())
    data["memory"]["act_bram"]["capacity_kib"] = 16384
    with pytest.raises(SparsimInputError, match="BRAM36 blocks") as info:
        arch_from_dict(data)
    assert "2,016" in str(info.value)
    # 16 MiB at 2048 B/cycle: 16384 bits wide, 8192 deep. BRAM18 shapes: 512x36 -> 456 x 16 = 7296,
    # 1Kx18 -> 911 x 8 = 7288, 2Kx9 -> 1821 x 4 = 7284 (cheapest), 4Kx4 -> 4096 x 2 = 8192;
    # 7284 BRAM18 = 3642 BRAM36, with the 264 of the shell: 3906
    assert info.value.field == "memory.act_bram" and "3,906" in str(info.value) and "act_bram 3,642" in str(info.value)


def test_uram_and_shell_overuse_name_the_field_to_change():
    data = yaml.safe_load(U280.read_text())
    data["memory"]["weight_uram"]["capacity_kib"] = 2 * 27648   # 768 URAM wide x 2 deep = 1536 > 960
    with pytest.raises(SparsimInputError, match="1,536 URAM blocks") as info:
        arch_from_dict(data)
    assert info.value.field == "memory.weight_uram"
    data = yaml.safe_load(U280.read_text())
    data["compute"]["device"]["reserved"]["lut"] = 2_000_000
    with pytest.raises(SparsimInputError, match="LUTs") as info:
        arch_from_dict(data)
    assert "1,303,680" in str(info.value)


def test_unknown_part_and_incomplete_custom_device():
    data = yaml.safe_load(U280.read_text())
    data["compute"]["device"] = {"part": "xcu28"}
    with pytest.raises(SparsimInputError, match="unknown FPGA part 'xcu28'.*xcu280"):
        arch_from_dict(data)
    data["compute"]["device"] = {"dsp": 100}
    with pytest.raises(SparsimInputError, match="bram36, uram, lut, ff"):
        arch_from_dict(data)


def test_custom_device_counts():
    data = yaml.safe_load(U280.read_text())
    data["compute"]["device"] = {"dsp": 10000, "bram36": 3000, "uram": 1000, "lut": 2_000_000, "ff": 4_000_000}
    report = fpga.resources_report(arch_from_dict(data))
    assert report["device"] == "custom" and report["dsp"]["available"] == 10000
    assert report["static_power_w"] == 0.0


@pytest.mark.parametrize("name", ["fpga_u280_llm_sparse", "fpga_vcu1525_nm", "fpga_versal_dsp58",
                                  "fpga_finn_mvu_zcu104"])
def test_shipped_fpga_configs_fit_their_devices(name):
    arch = load_arch(ROOT / "arch_configs" / f"{name}.yaml")
    report = fpga.resources_report(arch)
    assert report["feasible"], report
    assert arch.sources


def test_offchip_bandwidth_of_the_shipped_specs():
    u280 = load_arch(U280)
    assert fpga.offchip_bytes_per_cycle(32, 14.375, 225) == pytest.approx(
        u280.memory["hbm"].bandwidth_bytes_per_cycle, rel=1e-4)
    vcu = load_arch(ROOT / "arch_configs" / "fpga_vcu1525_nm.yaml")
    assert fpga.offchip_bytes_per_cycle(4, 19.2, 200) == pytest.approx(
        vcu.memory["ddr4"].bandwidth_bytes_per_cycle)
