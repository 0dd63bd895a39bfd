"""FPGA facts and resource accounting: DSP families, device budgets, BRAM/URAM/LUT/FF estimates.

What is modelled
- DSP families (`FAMILIES`): multiplier port widths, accumulator width, INT8 packing and the
  default pipeline depth. DSP48E2 (UltraScale/UltraScale+, UG579): 27x18 multiplier, 48-bit
  accumulator, PCOUT->PCIN cascade; INT8 packing puts two 8-bit weights 18 bits apart on the
  27-bit A/D path so one shared 8-bit operand yields two products per slice (Xilinx WP486,
  "Deep Learning with INT8 Optimization on Xilinx Devices"; 1.75x peak INT8 ops once the
  fabric extraction logic is counted). DSP58 (Versal, AM004 / UG1273): 27x24 multiplier,
  58-bit accumulator and an INT8 vector mode that computes a 3-element dot product per slice.
  DSP48E1 (7-series, UG479): 25x18, 48-bit; its 25-bit port cannot hold two INT8 operands
  18 bits apart, so it does not pack.
- The accumulator-width limit of packing: the low product lives in a `pack_shift`-bit signed
  field; n products of a-bit by w-bit signed values (each at most 2^(a+w-2) in magnitude) fit
  while n * 2^(a+w-2) <= 2^(pack_shift-1) - 1, i.e. 7 for INT8 x INT8 on DSP48E2 (the limit
  WP486 works around by cutting the cascade and adding in fabric). Longer chains are cut into
  segments of that length whose partial sums are extracted and added in LUTs.
- Devices (`DEVICES`, one data file per part in arch_configs/fpga_devices/): DSP, BRAM36, URAM,
  LUT and FF counts from the AMD product tables
  (UltraScale+ DS890 / Alveo U280 DS963 for XCU280; DS890 for XCVU9P on the VCU1525;
  Versal AI Core DS950 for XCVC1902 on the VCK190). Static power is an order-of-magnitude
  placeholder for a warm 16 nm / 7 nm part (replace it with a Vivado `report_power` or
  XPE number for a real design). A new part is one more file there.
- Memories: BRAM is counted FINN-style from a memory's width and depth, choosing the best
  of the BRAM18 aspect ratios (16Kx1, 8Kx2, 4Kx4, 2Kx9, 1Kx18, 512x36 simple dual-port);
  two BRAM18 make one BRAM36. URAM (fixed 4Kx72) = ceil(width/72) * ceil(depth/4096).
  A FINN matrix-vector unit (PE x SIMD, W-bit weights) stores its weights in a memory of
  width SIMD*W*PE bits and depth MW*MH/(SIMD*PE) (`finn_mvu`).
- LUT/FF: rough per-component estimates (stated beside each constant below); they are meant
  to flag designs that are clearly too big, not to replace synthesis.

Energy defaults (used by the arch_configs YAMLs and the docs; every one is overridable):
- DSP slice operation: ~1.0 pJ at 16 nm. Derived, not measured: Horowitz (ISSCC 2014, 45 nm)
  puts a 16-bit multiply at 1.1 pJ and a 32-bit one at 3.1 pJ, so a 27x18 multiply is ~1.6 pJ,
  plus ~0.15 pJ for the 48-bit add; x16/45 for the node -> 0.63 pJ; x1.5 for the pipeline
  registers and cascade routing of a hard block -> ~1.0 pJ. A packed INT8 pair shares it
  (0.5 pJ per MAC); a DSP58 INT8 dot-3 op ~1.2 pJ (0.4 pJ per MAC; 7 nm, wider datapath).
- BRAM ~0.10 pJ/bit, URAM ~0.12 pJ/bit per access at 16 nm: the Horowitz SRAM fit used by
  `simulator.energy` (0.16 pJ/bit at 8 KiB, x sqrt(size/8 KiB)) applied to one 4.5 KiB BRAM36
  or one 36 KiB URAM288 block, scaled to 16 nm and doubled for FPGA routing. Derived.
- HBM2 3.9 pJ/bit (O'Connor et al., MICRO 2017); DDR4 ~20 pJ/bit (Horowitz) -- the
  `simulator.energy` defaults.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from simulator.errors import SparsimInputError, nearest


# ----------------------------------------------------------------------------- DSP families

@dataclass(frozen=True)
class DspFamily:
    name: str
    a_bits: int               # wide multiplier port (A / pre-adder path)
    b_bits: int               # narrow multiplier port
    acc_bits: int             # post-adder / accumulator width
    pack_n: int               # INT8 MACs per slice sharing one operand (1: cannot pack this way)
    pack_k: int               # INT8 products summed inside one slice (dot-product mode)
    pack_shift: int           # bit offset of the upper packed operand (field width of the low product)
    pipeline_stages: int      # registers from operand to P with full pipelining (A1, A2, M, P)
    dsp_op_pj: float          # energy of one slice operation, see module docstring
    source: str

    @property
    def can_pack(self) -> bool:
        return self.pack_n > 1 or self.pack_k > 1

    @property
    def int8_macs_per_slice(self) -> int:
        return self.pack_n * self.pack_k


FAMILIES: dict[str, DspFamily] = {
    "dsp48e1": DspFamily("dsp48e1", 25, 18, 48, 1, 1, 0, 4, 1.4, "Xilinx UG479 (7-series DSP48E1)"),
    "dsp48e2": DspFamily("dsp48e2", 27, 18, 48, 2, 1, 18, 4, 1.0,
                         "Xilinx UG579 (DSP48E2); INT8 packing: Xilinx WP486"),
    "dsp58": DspFamily("dsp58", 27, 24, 58, 1, 3, 0, 4, 1.2,
                       "AMD AM004 Versal DSP Engine (DSP58, INT8 3-element dot product); UG1273"),
}


def family(name: str) -> DspFamily:
    if name not in FAMILIES:
        guess = nearest(name, FAMILIES)
        raise SparsimInputError(f"unknown DSP family '{name}'", field="compute.family",
                                hint=(f"did you mean '{guess}'? " if guess else "") + "known: " + ", ".join(FAMILIES))
    return FAMILIES[name]


def packed_chain_limit(fam: DspFamily, a_bits: int, w_bits: int) -> int | None:
    """Longest cascade whose packed low-field sum cannot overflow (None: no limit from packing)."""
    if fam.pack_n <= 1 or fam.pack_shift <= 0:
        return None
    per_product = 2 ** (a_bits + w_bits - 2)
    return max(1, (2 ** (fam.pack_shift - 1) - 1) // per_product)


def slices_per_mac(fam: DspFamily, a_bits: int, w_bits: int) -> int:
    """DSP slices one multiply-accumulate of these widths needs (wider operands tile the multiplier)."""
    wide, narrow = max(a_bits, w_bits), min(a_bits, w_bits)
    return math.ceil(wide / fam.a_bits) * math.ceil(narrow / fam.b_bits)


def offchip_bytes_per_cycle(channels: int, gb_per_s_per_channel: float, clock_mhz: float) -> float:
    """Peak off-chip bytes per fabric cycle: HBM pseudo-channels or DDR channels x their rate.
    U280: 32 PCs x 14.375 GB/s at 225 MHz = 2044.4 (UG1393); VCU1525: 4 x 19.2 GB/s at 200 MHz = 384.
    Achieved efficiency goes in the spec's `offchip_efficiency`."""
    return channels * gb_per_s_per_channel * 1e9 / (clock_mhz * 1e6)


# ----------------------------------------------------------------------------- devices

@dataclass(frozen=True)
class Device:
    part: str
    dsp: int
    bram36: int
    uram: int
    lut: int
    ff: int
    static_power_w: float
    source: str


DEVICES_FOLDER = Path(__file__).resolve().parents[1] / "arch_configs" / "fpga_devices"


def _load_devices(folder: Path = DEVICES_FOLDER) -> dict[str, Device]:
    """The device table, one YAML file per part (read once, at import)."""
    from simulator.inputs import read_yaml_file
    out: dict[str, Device] = {}
    for path in sorted(folder.glob("*.yaml")):
        data = read_yaml_file(path, "FPGA device")
        out[data["part"]] = Device(**data)
    return out


DEVICES: dict[str, Device] = _load_devices()


# ----------------------------------------------------------------------------- memories

BRAM18_SHAPES = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))  # depth x width


def bram18_count(width_bits: int, depth: int) -> int:
    """BRAM18 blocks for a width x depth memory: the cheapest single aspect ratio for the whole array."""
    if width_bits <= 0 or depth <= 0:
        return 0
    return min(math.ceil(width_bits / w) * math.ceil(depth / d) for d, w in BRAM18_SHAPES)


def bram36_count(width_bits: int, depth: int) -> int:
    return math.ceil(bram18_count(width_bits, depth) / 2)


def uram_count(width_bits: int, depth: int) -> int:
    if width_bits <= 0 or depth <= 0:
        return 0
    return math.ceil(width_bits / 72) * math.ceil(depth / 4096)


def finn_mvu(MW: int, MH: int, PE: int, SIMD: int, weight_bits: int, vectors: int = 1) -> dict:
    """FINN-style matrix-vector unit: cycles and the weight memory it needs in BRAM or URAM."""
    if MH % PE or MW % SIMD:
        raise SparsimInputError(f"PE={PE} must divide MH={MH} and SIMD={SIMD} must divide MW={MW}",
                                field="finn_mvu", hint="FINN folds need exact divisors")
    width = SIMD * weight_bits * PE
    depth = (MW * MH) // (SIMD * PE)
    return {"cycles": (MH // PE) * (MW // SIMD) * vectors, "mem_width_bits": width, "mem_depth": depth,
            "bram18": bram18_count(width, depth), "bram36": bram36_count(width, depth),
            "uram": uram_count(width, depth)}


def level_blocks(level) -> dict[str, float]:
    """BRAM36 / URAM / FF cost of one on-chip memory level: width = its bytes per cycle (one read
    port per block), depth = capacity / width. `sram` levels are built from BRAM; `rf` from FFs."""
    bits = (level.capacity_kib or 0.0) * 1024 * 8
    if level.offchip or bits <= 0:
        return {}
    if level.kind == "rf":
        return {"ff": bits}
    width = int(round((level.bandwidth_bytes_per_cycle or 9.0) * 8))
    depth = math.ceil(bits / max(1, width))
    if level.kind == "uram":
        return {"uram": uram_count(width, depth)}
    return {"bram36": bram36_count(width, depth)}


# ----------------------------------------------------------------------------- LUT / FF estimates
# Rough per-component figures (order of magnitude, from typical Vivado utilisation of such blocks):
LUT_PER_CHAIN = 60            # output register mux, valid/control
FF_PER_CHAIN = 80
LUT_PER_SEGMENT = 60          # packed-pair extraction: two ~24-bit adders + sign fix per cut segment
FF_PER_SEGMENT = 60
LUT_PER_PE = 800              # PE controller, address generators, output quantiser
FF_PER_PE = 1500
FF_PER_ACC_BIT = 1            # fabric accumulator per output lane (acc_bits wide)
LUT_PER_ACC_BIT = 1


def _mux_luts(inputs: int) -> int:
    """LUT6s per bit of an inputs:1 multiplexer (a LUT6 is a 4:1 mux)."""
    return max(0, math.ceil((inputs - 1) / 3))


def resources(spec, arch=None) -> dict:
    """Estimated use of every resource by a dsp_chain compute spec and the arch's on-chip memories.

    `by_level` gives each on-chip memory level's BRAM36 / URAM / FF share (for error messages)."""
    fam = family(spec.family)
    p = spec.precision
    dev = spec.device.resolved()
    spm = slices_per_mac(fam, p.activations, p.weights)
    chains = spec.n_chains
    L = spec.chain_length
    pes = chains // spec.chains_per_pe
    used = {"dsp": float(chains * L * spm), "bram36": 0.0, "uram": 0.0, "lut": 0.0, "ff": 0.0}
    segments = spec.segments
    lanes = fam.pack_n if spec.int8_packing else 1
    used["lut"] += chains * (LUT_PER_CHAIN + lanes * fam.acc_bits * LUT_PER_ACC_BIT)
    used["ff"] += chains * (FF_PER_CHAIN + lanes * fam.acc_bits * FF_PER_ACC_BIT)
    if spec.int8_packing and segments > 1:
        used["lut"] += chains * segments * LUT_PER_SEGMENT
        used["ff"] += chains * segments * FF_PER_SEGMENT
    rows = spec.weight_stationary_rows
    if rows > 1:  # per-row partial sums of the stationary rows, in LUTRAM (64 bits per LUT)
        used["lut"] += chains * lanes * rows * fam.acc_bits / 64.0
    used["lut"] += pes * LUT_PER_PE
    used["ff"] += pes * FF_PER_PE
    if spec.sparse is not None and spec.sparse.patterns:
        m_max = max(m for _, m in spec.sparse.patterns)
        slots = L * (fam.pack_k if spec.int8_packing else 1)
        # each slot selects its activation among the m_max candidates of its group
        used["lut"] += chains * slots * p.activations * _mux_luts(m_max)
        used["ff"] += chains * slots * (p.activations + math.ceil(math.log2(max(2, m_max))))
    by_level: dict[str, dict[str, float]] = {}
    if arch is not None:
        for name, level in arch.memory.items():
            blocks = level_blocks(level)
            if blocks:
                by_level[name] = blocks
            for key, value in blocks.items():
                used[key] += value
    for key, value in spec.device.reserved.items():
        used[key] = used.get(key, 0.0) + value
    avail = {"dsp": dev.dsp, "bram36": dev.bram36, "uram": dev.uram, "lut": dev.lut, "ff": dev.ff}
    over = [k for k in avail if used[k] > avail[k]]
    return {"device": dev.part, "used": used, "available": avail, "over": over, "slices_per_mac": spm,
            "by_level": by_level}


def resources_report(arch) -> dict:
    """A printable `resources` section: per resource used / available / utilisation, and feasibility,
    plus the chain organisation, peak rate, off-chip bandwidth and the device's static power."""
    spec = arch.compute
    r = resources(spec, arch)
    out: dict = {"device": r["device"], "feasible": not r["over"]}
    for key in ("dsp", "bram36", "uram", "lut", "ff"):
        used, avail = r["used"][key], r["available"][key]
        out[key] = {"used": int(math.ceil(used)), "available": int(avail),
                    "utilization": used / avail if avail else (0.0 if used == 0 else None)}  # None: none available
    out["over_budget"] = list(r["over"])
    out["chains"] = spec.n_chains
    out["chain_length"] = spec.chain_length
    out["pes"] = spec.n_chains // spec.chains_per_pe
    out["peak_macs_per_cycle"] = spec.peak_macs_per_cycle
    out["peak_tops"] = 2 * spec.peak_macs_per_cycle * arch.clock_mhz * 1e6 / 1e12
    off = arch.memory[arch.offchip_name]
    out["offchip"] = {"level": arch.offchip_name, "kind": off.kind, "channels": spec.offchip_channels,
                      "efficiency": spec.offchip_efficiency}
    if off.ideal:  # unlimited: no number to state
        out["offchip"]["note"] = "ideal off-chip memory (unlimited bandwidth)"
    else:
        peak = off.bandwidth_bytes_per_cycle * arch.clock_mhz * 1e6 / 1e9
        out["offchip"].update(peak_gb_per_s=peak, effective_gb_per_s=peak * spec.offchip_efficiency)
    out["static_power_w"] = spec.static_power_w
    return out


RESOURCE_WORDS = {"dsp": "DSP slices", "bram36": "BRAM36 blocks", "uram": "URAM blocks", "lut": "LUTs",
                  "ff": "flip-flops"}


def check_resources(arch) -> None:
    """Raise one SparsimInputError naming the first resource the design over-uses."""
    spec = arch.compute
    r = resources(spec, arch)
    if not r["over"]:
        return
    key = r["over"][0]
    used, avail = r["used"][key], r["available"][key]
    reserved = spec.device.reserved.get(key, 0)
    if key == "dsp":
        how = (f"{spec.n_chains} chains x {spec.chain_length} slices"
               + (f" x {r['slices_per_mac']} slices per MAC" if r["slices_per_mac"] > 1 else "")
               + (f" + {reserved} reserved" if reserved else ""))
        fits = (avail - reserved) // (spec.chain_length * r["slices_per_mac"])
        raise SparsimInputError(f"design needs {int(used):,} DSP slices ({how}) but the {r['device']} has "
                                f"{avail:,}", field="compute.dsp_budget" if spec.chains is None else "compute.chains",
                                hint=f"use at most {fits:,} chains of length {spec.chain_length}, or set dsp_budget")
    if key in ("bram36", "uram"):
        levels = {n: b[key] for n, b in r["by_level"].items() if b.get(key)}
        if levels:
            worst = max(levels, key=levels.get)
            parts = ", ".join(f"{n} {math.ceil(v):,}" for n, v in levels.items()) + \
                (f", reserved {reserved:,}" if reserved else "")
            raise SparsimInputError(
                f"design needs {math.ceil(used):,} {RESOURCE_WORDS[key]} ({parts}) but the {r['device']} has "
                f"{avail:,}", field=f"memory.{worst}",
                hint="shrink its capacity_kib or bandwidth_bytes_per_cycle, since blocks = width x depth; "
                     "or use a bigger part")
        raise SparsimInputError(f"device.reserved takes {reserved:,} {RESOURCE_WORDS[key]} but the {r['device']} "
                                f"has {avail:,}", field=f"compute.device.reserved.{key}", hint="lower it")
    raise SparsimInputError(f"design needs ~{math.ceil(used):,} {RESOURCE_WORDS[key]} (estimate) but the "
                            f"{r['device']} has {avail:,}", field="compute.chains",
                            hint="use fewer chains/PEs or fewer sparse patterns, or a bigger part")


__all__ = ["DspFamily", "FAMILIES", "offchip_bytes_per_cycle", "family", "packed_chain_limit",
           "slices_per_mac", "Device", "DEVICES", "bram18_count", "bram36_count", "uram_count",
           "finn_mvu", "level_blocks", "resources", "resources_report", "check_resources"]
