"""Silicon area: PEs + on-chip SRAM + a fixed part, with cited 45 nm defaults.

- PE (a MAC with its pipeline registers), Horowitz ISSCC 2014 at 45 nm: 8-bit mult
  282 um^2 + 32-bit add 137 um^2 = 419 um^2, +20% for registers -> 503 um^2; fp16 mult
  1640 + add 1360 -> 3600 um^2 with registers; fp32 mult 7700 + add 4184 -> 14260 um^2.
- SRAM: a 45 nm 6T cell is ~0.35 um^2 (Intel 45 nm); with ~50% array efficiency
  ~0.7 um^2 per bit -> 0.0057 mm^2 per KiB.
Scaling: area scales with (technology_nm / 45)^2 (ideal scaling; real SRAM scales worse).
Each engine's `compute_area_mm2(arch, pe_mm2)` hook (`simulator.engines.base.Engine`) gives its compute part.
"""

from __future__ import annotations

from simulator.spec import Arch

PE_UM2_45NM = {8: 503.0, 16: 3600.0, 32: 14260.0}
SRAM_MM2_PER_KIB_45NM = 0.0057


def pe_area_mm2(arch: Arch, bits: int) -> float:
    if arch.area.pe_mm2 is not None:
        return arch.area.pe_mm2
    key = min((b for b in PE_UM2_45NM if b >= bits), default=32)
    return PE_UM2_45NM[key] * 1e-6 * (arch.energy.technology_nm / 45.0) ** 2


def sram_area_mm2(arch: Arch, kib: float) -> float:
    """Area of `kib` KiB of on-chip SRAM: the arch's figure, else the 45 nm default scaled."""
    per_kib = arch.area.sram_mm2_per_kib or SRAM_MM2_PER_KIB_45NM * (arch.energy.technology_nm / 45.0) ** 2
    return kib * per_kib


def area_breakdown_mm2(arch: Arch) -> dict[str, float]:
    """Area per component (mm^2); the components sum to the total."""
    from simulator.engines import load_engine
    precision = arch.compute.datapath_precision
    bits = max(precision.activations, precision.weights) if precision is not None else 8
    parts: dict[str, float] = {"compute": load_engine(arch.compute.kind).compute_area_mm2(arch, pe_area_mm2(arch, bits))}
    for name, level in arch.memory.items():
        if not level.offchip:
            parts[name] = sram_area_mm2(arch, level.capacity_kib or 0.0)
    parts["fixed"] = arch.area.fixed_mm2
    return parts


def area_mm2(arch: Arch) -> float:
    return sum(area_breakdown_mm2(arch).values())
