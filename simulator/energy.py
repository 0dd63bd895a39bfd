"""Energy = action counts x energy per action + static power x time, with cited 45 nm defaults.

Defaults (45 nm, Horowitz, "Computing's energy problem", ISSCC 2014):
- MAC by operand bits: 8-bit int mult 0.2 pJ + 32-bit int add 0.1 pJ -> 0.3 pJ;
  fp16 mult 1.1 + add 0.4 -> 1.5 pJ; fp32 mult 3.7 + add 0.9 -> 4.6 pJ; 4-bit taken as
  half the 8-bit figure (rough). PE-local register traffic is folded into the MAC.
- Zero-gated MAC: 0.032 of a MAC (Accelergy/Timeloop Eyeriss-v2 PE table: 0.018 pJ gated
  vs 0.56 pJ full at 45 nm).
- SRAM per bit: Horowitz gives ~10 pJ per 64-bit read for 8 KB, ~20 pJ for 32 KB and
  ~100 pJ for 1 MB; we fit 0.16 pJ/bit x sqrt(capacity / 8 KiB) (within 15% of those
  points), writes taken equal to reads. Register files: 0.03 pJ/bit.
- DRAM: Horowitz 1.3-2.6 nJ per 64-bit access -> 20 pJ/bit (DDR); HBM2 ~3.9 pJ/bit
  (O'Connor et al., MICRO 2017).
- Sparse index decode + operand mux: 0.05 pJ per kept value at 45 nm (rough: a few
  8-bit mux/compare gates per value, about 1/6 of an 8-bit MAC; override `index_select_pj`).
- Leakage: none by default for compute; on-chip SRAM 0.01 mW per KiB (order of magnitude
  for 45 nm high-performance cells). Override `leakage_mw` per level.
Scaling: dynamic energies scale linearly with `technology_nm / 45` (a documented rough rule).
Every figure can be overridden in the arch YAML (`energy:` and per-level fields).
"""

from __future__ import annotations

import math

from simulator.cost import OpCost
from simulator.spec import Arch, MemoryLevel

DEFAULT_MAC_PJ_45NM = {4: 0.15, 8: 0.3, 16: 1.5, 32: 4.6, 64: 18.4}
RF_PJ_PER_BIT = 0.03
SRAM_PJ_PER_BIT_8KIB = 0.16
DRAM_PJ_PER_BIT = {"dram": 20.0, "ddr": 20.0, "hbm": 3.9}
INDEX_SELECT_PJ_45NM = 0.05
SRAM_LEAKAGE_MW_PER_KIB = 0.01


def _scale(arch: Arch) -> float:
    return arch.energy.technology_nm / 45.0


def mac_energy_pj(arch: Arch, bits: int) -> float:
    table = arch.energy.mac_pj
    if table:
        key = min((b for b in table if b >= bits), default=max(table))
        return table[key]
    key = min((b for b in DEFAULT_MAC_PJ_45NM if b >= bits), default=64)
    return DEFAULT_MAC_PJ_45NM[key] * _scale(arch)


def level_energy_pj_per_bit(arch: Arch, level: MemoryLevel) -> tuple[float, float]:
    """(read, write) energy per bit of a level: its own fields, else the cited default."""
    if level.kind in DRAM_PJ_PER_BIT:
        default = DRAM_PJ_PER_BIT[level.kind]
    elif level.kind == "rf":
        default = RF_PJ_PER_BIT * _scale(arch)
    else:
        default = SRAM_PJ_PER_BIT_8KIB * math.sqrt(max(level.capacity_kib or 8.0, 1.0) / 8.0) * _scale(arch)
    read = level.read_energy_pj_per_bit if level.read_energy_pj_per_bit is not None else default
    write = level.write_energy_pj_per_bit if level.write_energy_pj_per_bit is not None else read
    return read, write


def static_power_mw(arch: Arch) -> float:
    total = arch.energy.compute_leakage_mw or 0.0
    for level in arch.memory.values():
        if level.leakage_mw is not None:
            total += level.leakage_mw
        elif not level.offchip:
            total += SRAM_LEAKAGE_MW_PER_KIB * (level.capacity_kib or 0.0)
    return total


def op_energy_pj(cost: OpCost, arch: Arch, mac_bits: int, executions: float, latency_s: float) -> dict[str, float]:
    """Energy components (pJ) of `executions` runs of an op whose total time is `latency_s`.

    The components sum exactly to the op's energy; `leakage` is static power x latency.
    """
    mac = mac_energy_pj(arch, mac_bits)
    parts = {"mac": cost.macs * mac * executions,
             "gated_mac": cost.gated_macs * mac * arch.energy.gated_mac_fraction * executions}
    if cost.index_selects:
        per = arch.energy.index_select_pj if arch.energy.index_select_pj is not None else INDEX_SELECT_PJ_45NM * _scale(arch)
        parts["index_select"] = cost.index_selects * per * executions
    for name, level in arch.memory.items():
        read, write = level_energy_pj_per_bit(arch, level)
        parts[f"{name}_read"] = cost.reads_bytes.get(name, 0.0) * 8.0 * read * executions
        parts[f"{name}_write"] = cost.writes_bytes.get(name, 0.0) * 8.0 * write * executions
    for name, value in cost.extra_energy_pj.items():
        parts[name] = parts.get(name, 0.0) + value * executions
    parts["leakage"] = static_power_mw(arch) * 1e-3 * latency_s * 1e12
    return parts
