"""GPU engine: SMs with tensor cores, an L2 and HBM, costed kernel by kernel at CTA-tile level.

What is modelled (one op = one library kernel launch, as PyTorch issues it):

- **Dense GEMM** (cuBLAS/CUTLASS/rocBLAS-like). The output is cut into CTA tiles from a
  small heuristic set (`tile_shapes`, e.g. 256x128 ... 64x64); a tile's operand pipeline
  (`pipeline_stages` x (mt + nt) x `k_tile` values) sets how many CTAs fit in an SM's
  shared memory (capped by `max_ctas_per_sm`); tiles run in waves of
  `sm_count x ctas_per_sm`, so waves = ceil(tiles / concurrent CTAs) and the last, partial
  wave is paid in full per SM (tail-wave quantisation). Per wave the time is bounded by
  tensor math (`2 mt nt K / (rate per SM x efficiency.tensor)`), by L2->SM traffic
  (`(mt + nt) K` bytes per tile over the L2 bandwidth) and by HBM traffic (each operand once
  if both fit in L2, else once per rasterised wave block that uses it), and HBM bandwidth
  is also capped by Little's law (bytes a CTA keeps in flight / memory latency) when few
  CTAs run. GEMM mainloops stream HBM at `efficiency.hbm_gemm` of peak (cuBLAS skinny GEMMs
  and GEMVs reach less than a copy kernel's `efficiency.hbm`). Skinny shapes (output tiles
  filling less than one wave) may use split-K (K cut into s slices, fp32 partials written
  and reduced by a second launch). Like a library
  heuristic, the (tile, split) with the least time is chosen; the choice is appended to the
  op's `model` string.
- **2:4 sparse GEMM** (cuSPARSELt / CUTLASS sparse semantics): the 2:4 operand is stored
  compressed at half size plus 2-bit metadata per kept value, math runs at the separate
  2:4 peak (`sparse_2_4_flops_per_cycle_per_sm`) times `efficiency.sparse_tensor`; the
  sparse kernels have no split-K (`sparse_split_k`) and PyTorch's semi-structured path adds
  `sparse_extra_launches` small kernels (operand transpose/padding). The 2:4 tile kernels
  have no GEMV specialisation: they stream at `efficiency.sparse_hbm` of HBM peak, a measured
  fraction (approximation: no mechanism is modelled for it). That is why decode GEMVs
  (M <= 16) gain ~nothing (measured: pytorch issue 111339; NVIDIA/CUDALibrarySamples issue
  276) and large GEMMs gain 1.1-1.7x (PyTorch semi-structured tutorial; Mishra et al. 2021,
  arXiv 2104.08378), never above the 2x math ratio. Other N:M patterns run as 2:4 when every aligned group of 4 holds <= 2
  values (1:4, 2:8), else dense; unstructured sparsity runs dense (noted).
- **GEMV / decode GEMMs** (M <= `gemv_max_m`): max(bytes / (HBM peak x `efficiency.hbm_gemm`),
  math). M = 1 is a CUDA-core GEMV; M = 2..16 run on tensor cores whose MMA tile pads M to
  `mma_m` (16), as mma_m x 128 tiles paying the K-loop iteration overhead, so the padded math
  sets the time where it approaches the streaming time (low-bandwidth-per-FLOP corners, tf32).
- **Memory-bound ops** (elementwise, softmax, norm): bytes / achievable HBM bandwidth.
- **Attention** as one fused FlashAttention-style kernel (Dao et al. 2022/2023): Q/K/V read
  once, O written once, no S/P matrix in HBM; math at `efficiency.attention` of the dense
  peak, CTAs = batch x heads x ceil(q_len / 128) in waves; decode (q_len <= gemv_max_m) is
  split-KV and bandwidth-bound. The `attention_qk` op carries the kernel launch and Q, K
  traffic; `attention_pv` carries V and O (the two halves of one fused kernel).
- **MoE grouped GEMM**: all experts' tiles in one launch, waves over the total tile count.

The op's own precision selects the tensor rate: 16 bits -> fp16/bf16 (alike), 8 -> int8,
32 -> tf32/fp32. Results are cycles at the spec clock, launch overhead included
(`launch_overhead_us`, charged as compute cycles).

Board power (`power`: idle, per-SM active; per-action energies in `energy`/memory levels,
`simulator.power`, docs/power.md) is charged per op, and a kernel that would draw more than
the TDP is slowed to draw exactly the TDP (the board lowers its clock).

Approximations (what is left out): no occupancy/register modelling beyond shared memory,
no bank conflicts, no clock changes other than the power limit and the efficiency factors
(so fp16 and bf16, both 16-bit, get the same rate; bf16 measures ~3% faster on H100),
no stream-K, no overlap between consecutive kernels (a split-K reduction or an extra 2:4
kernel costs a full `launch_overhead_us`), L2 reuse within a kernel by a square
rasterisation rule and no L2 residency across repeated calls (operands are read from HBM
every call, as in a timing loop with an L2 flush). Efficiency factors are per GPU and carry
a `calibration` provenance note.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal

from pydantic import Field, model_validator

from simulator.cost import OpCost
from simulator.engines.base import ComputeSpecBase
from simulator.inputs import StrictSpec
from simulator.engines.vector import vector_work
from simulator.errors import SparsimInputError
from simulator.memory import last_onchip_level, no_traffic
from simulator.memory import offchip_bytes_per_cycle as offchip_bytes_per_cycle_at
from simulator.spec import Arch
from simulator.trace import AttentionDims, Op, Sparsity

Dtype = Literal["fp16", "bf16", "tf32", "fp32", "int8", "fp8"]
DTYPES_FOR_BITS: dict[int, tuple[str, ...]] = {16: ("fp16", "bf16"), 8: ("int8", "fp8"), 32: ("tf32", "fp32")}
SPLIT_K_CHOICES = (1, 2, 3, 4, 6, 8, 12, 16)
ATTENTION_BLOCK_Q = 128


class TensorRate(StrictSpec):
    """Per-SM tensor math rate of one dtype, in FLOPs (2 per MAC) per cycle at the spec clock."""
    dense_flops_per_cycle_per_sm: float = Field(gt=0)
    sparse_2_4_flops_per_cycle_per_sm: float | None = Field(
        default=None, gt=0, description="2:4 structured-sparse peak; None = no sparse tensor cores")


class Efficiency(StrictSpec):
    """Achievable fractions of datasheet peaks for tuned library kernels, with provenance."""
    tensor: float = Field(gt=0, le=1, description="fraction of the dense tensor peak a GEMM mainloop sustains")
    sparse_tensor: float = Field(default=0.6, gt=0, le=1, description="fraction of the 2:4 peak sustained")
    attention: float = Field(default=0.6, gt=0, le=1, description="fused attention math, fraction of dense peak")
    hbm: float = Field(gt=0, le=1, description="achievable fraction of HBM peak bandwidth (copies, elementwise)")
    hbm_gemm: float | None = Field(
        default=None, gt=0, le=1,
        description="fraction of HBM peak that GEMM/GEMV mainloops reach when streaming operands; None = hbm")
    sparse_hbm: float | None = Field(
        default=None, gt=0, le=1,
        description="fraction of HBM peak the 2:4 sparse tile kernels reach when streaming; None = hbm_gemm")
    l2: float = Field(default=0.8, gt=0, le=1, description="achievable fraction of L2 peak bandwidth")
    calibration: str = Field(min_length=1, description="where these numbers come from (fit, dataset, date)")


class BoardPower(StrictSpec):
    """Board power of a GPU (`simulator.power`): idle + per-SM active power while kernels run; tensor math
    and memory traffic are charged per action by the energy model (`energy.mac_pj`, per-level pJ/bit)."""
    tdp_w: float = Field(gt=0, description="board power limit (datasheet TDP / max board power)")
    idle_w: float = Field(ge=0, description="board power with clocks up and a context, no kernel running")
    sm_active_w: float = Field(ge=0, description="extra watts per SM while a kernel occupies it (clock tree, "
                                                "schedulers, register file, L1), tensor math excluded")
    sources: str = Field(min_length=1, description="where each number comes from")

    @model_validator(mode="after")
    def _idle_below_tdp(self):
        if self.idle_w >= self.tdp_w:
            raise ValueError("power.idle_w must be below power.tdp_w")
        return self


class ComputeSpec(ComputeSpecBase):
    kind: Literal["gpu"] = "gpu"
    vendor: str = ""
    sm_count: int = Field(ge=1, description="streaming multiprocessors (NVIDIA) / compute units (AMD)")
    tensor_math: dict[Dtype, TensorRate] = Field(min_length=1)
    register_file_kib_per_sm: float = Field(gt=0)
    shared_memory_kib_per_sm: float = Field(gt=0, description="max shared memory / LDS one SM gives CTAs")
    hbm_capacity_gib: float = Field(gt=0)
    memory_latency_ns: float = Field(default=600.0, gt=0, description="loaded HBM latency seen by an SM")
    launch_overhead_us: float = Field(ge=0, description="per kernel launch, as seen by back-to-back timing")
    tile_shapes: list[tuple[int, int]] = Field(
        default_factory=lambda: [(256, 128), (128, 256), (128, 128), (128, 64), (64, 128), (64, 64)],
        min_length=1, description="CTA output tiles (mt, nt) the library heuristic chooses from")
    k_tile_bytes: int = Field(default=128, ge=16, description="bytes of K per pipeline stage (64 fp16 values)")
    pipeline_stages: int = Field(default=3, ge=1)
    k_iteration_overhead_cycles: float = Field(
        default=0.0, ge=0, description="cycles per K-loop iteration not hidden behind tensor math (barrier, "
                                       "fragment loads); small tiles and 2:4 tiles (half the math) feel it most")
    max_ctas_per_sm: int = Field(default=2, ge=1)
    split_k: bool = True
    sparse_split_k: bool = False
    sparse_extra_launches: int = Field(default=1, ge=0, description="extra small kernels of the 2:4 path")
    gemv_max_m: int = Field(default=16, ge=0, description="GEMMs with M up to this run as bandwidth kernels")
    mma_m: int = Field(default=16, ge=1, description="rows of the tensor-core MMA tile: skinny M is padded to it")
    l2_resident_fraction: float = Field(default=0.5, gt=0, le=1, description="share of L2 operands may occupy")
    die_area_mm2: float | None = Field(default=None, gt=0)
    efficiency: Efficiency
    power: BoardPower | None = Field(default=None, description="board power; None = no idle/SM-active power")

    @model_validator(mode="after")
    def _check(self):
        for dtype, rate in self.tensor_math.items():
            sparse = rate.sparse_2_4_flops_per_cycle_per_sm
            if sparse is not None and sparse > 2.0 * rate.dense_flops_per_cycle_per_sm + 1e-9:
                raise ValueError(f"tensor_math.{dtype}: the 2:4 peak cannot exceed twice the dense peak")
        for mt, nt in self.tile_shapes:
            if mt < 1 or nt < 1:
                raise ValueError("tile_shapes entries must be positive (mt, nt) pairs")
        return self

    @property
    def peak_macs_per_cycle(self) -> float:
        best = max(r.dense_flops_per_cycle_per_sm for r in self.tensor_math.values())
        return best * self.sm_count / 2.0

    @property
    def board_tdp_w(self) -> float | None:
        return float(self.power.tdp_w) if self.power is not None and self.power.tdp_w else None


# ----------------------------------------------------------------------------- arch checks

def _levels(arch: Arch) -> tuple[str, str]:
    """(L2 level name, HBM level name) of a GPU arch."""
    return last_onchip_level(arch), arch.offchip_name


def check_arch(arch: Arch) -> None:
    """A GPU arch needs an on-chip L2 (sram) level and HBM, both with finite bandwidth."""
    if last_onchip_level(arch) is None:
        raise SparsimInputError("a GPU arch needs an on-chip L2 level before HBM", field="memory",
                                hint="add l2: {kind: sram, capacity_kib: ..., bandwidth_bytes_per_cycle: ...}")
    for name in _levels(arch):
        if arch.memory[name].ideal:
            raise SparsimInputError("GPU memory levels need a finite bandwidth, not ideal: true",
                                    field=f"memory.{name}", hint="set bandwidth_bytes_per_cycle")


def compute_area_mm2(arch: Arch, pe_mm2: float) -> float:
    """The die minus the L2 the area model counts separately (0 when no die area is given)."""
    spec: ComputeSpec = arch.compute
    if spec.die_area_mm2 is None:
        return 0.0
    from simulator.area import sram_area_mm2
    onchip = sum((lv.capacity_kib or 0.0) for lv in arch.memory.values() if not lv.offchip)
    return max(0.0, spec.die_area_mm2 - sram_area_mm2(arch, onchip))


# ----------------------------------------------------------------------------- helpers

def tensor_rate(spec: ComputeSpec, bits: int) -> tuple[str, TensorRate]:
    """The spec's tensor rate for an operand width; a width the GPU cannot run is a user error."""
    for dtype in DTYPES_FOR_BITS.get(bits, ()):
        if dtype in spec.tensor_math:
            return dtype, spec.tensor_math[dtype]
    wanted = "/".join(DTYPES_FOR_BITS.get(bits, ())) or f"{bits}-bit"
    raise SparsimInputError(f"this GPU spec has no tensor rate for {bits}-bit operands ({wanted})",
                            field="compute.tensor_math",
                            hint="add the dtype to tensor_math, or use 16-bit (fp16/bf16), 8-bit (int8) "
                                 "or 32-bit (tf32) operands; have: " + ", ".join(spec.tensor_math))


def runs_as_2_4(s: Sparsity) -> bool:
    """True when every aligned group of 4 holds at most 2 values, so 2:4 hardware can use it."""
    if s.kind != "nm":
        return False
    return s.n <= 2 and (4 % s.m == 0 or s.m % 4 == 0) and s.n / s.m <= 0.5


def _ceil(a: float, b: float) -> int:
    return int(-(-a // b))


@dataclass(frozen=True)
class KernelTime:
    """Time of one kernel in cycles at the spec clock, split by bound, with its traffic."""
    math_cycles: float
    total_cycles: float
    hbm_read_bytes: float
    hbm_write_bytes: float
    l2_read_bytes: float
    l2_write_bytes: float
    choice: str
    active_sms: float | None = None    # SMs a kernel occupies (None = all)


@dataclass(frozen=True)
class _Gemm:
    M: int
    N: int
    K: int
    count: int


def _hbm_efficiency(eff: Efficiency, kernel: str) -> float:
    """Achievable HBM fraction for a kernel family: 'stream' (copies, elementwise, attention),
    'gemm' (dense GEMM/GEMV mainloops) or 'sparse' (2:4 tile kernels)."""
    gemm = eff.hbm_gemm if eff.hbm_gemm is not None else eff.hbm
    if kernel == "gemm":
        return gemm
    if kernel == "sparse":
        return eff.sparse_hbm if eff.sparse_hbm is not None else gemm
    return eff.hbm


def _bandwidths(arch: Arch, kernel: str = "stream") -> tuple[float, float]:
    """(L2, HBM) achievable bytes per cycle for a kernel family (see `_hbm_efficiency`)."""
    l2, hbm = _levels(arch)
    eff = arch.compute.efficiency
    return (arch.memory[l2].bytes_per_cycle * eff.l2, offchip_bytes_per_cycle_at(arch, _hbm_efficiency(eff, kernel)))


def offchip_bytes_per_cycle(arch: Arch) -> float:
    """Achievable HBM bytes per cycle of a streaming kernel: what a core's port can pull from a
    shared HBM in `simulator.system` (peak x `efficiency.hbm`)."""
    return _bandwidths(arch)[1]


def _latency_cycles(arch: Arch) -> float:
    return arch.compute.memory_latency_ns * 1e-9 * arch.clock_hz


def _tiled_gemm_time(arch: Arch, gemms: list[_Gemm], bits: dict[str, float], flops_per_cycle_per_sm: float,
                     efficiency: float, sparse_b: bool, allow_split: bool) -> KernelTime:
    """Best (tile, split-K) time of a grouped/batched GEMM kernel at tile level."""
    spec: ComputeSpec = arch.compute
    l2_bpc, hbm_bpc = _bandwidths(arch, "sparse" if sparse_b else "gemm")
    l2_name, _ = _levels(arch)
    l2_bytes_cap = arch.memory[l2_name].capacity_bytes * spec.l2_resident_fraction
    latency = _latency_cycles(arch)
    a_b, b_b, c_b = bits["a"] / 8.0, bits["b"] / 8.0, bits["c"] / 8.0
    # 2:4 compressed operand: half the values plus 2 bits of position per kept value.
    b_stored = (0.5 * b_b + 0.5 * 2 / 8.0) if sparse_b else b_b
    k_tile = max(8, spec.k_tile_bytes / max(a_b, b_b))
    rate = flops_per_cycle_per_sm * efficiency
    overhead = spec.k_iteration_overhead_cycles
    best: KernelTime | None = None
    for mt, nt in spec.tile_shapes:
        stage_bytes = (mt * a_b + nt * b_stored) * k_tile
        ctas_per_sm = max(1, min(spec.max_ctas_per_sm,
                                 int(spec.shared_memory_kib_per_sm * 1024 // (stage_bytes * spec.pipeline_stages))))
        concurrent = spec.sm_count * ctas_per_sm
        # Split-K only for skinny problems: output tiles that fill less than one wave.
        output_tiles = sum(_ceil(g.M, mt) * _ceil(g.N, nt) * g.count for g in gemms)
        splits = SPLIT_K_CHOICES if allow_split and output_tiles < concurrent else (1,)
        for s in splits:
            if s > 1 and max(g.K for g in gemms) < s * 2 * k_tile:
                continue
            tiles = 0
            math_flops_per_tile_set = []
            a_hbm = b_hbm = c_hbm = l2_read = 0.0
            partial_bytes = 0.0
            for g in gemms:
                tm, tn = _ceil(g.M, mt), _ceil(g.N, nt)
                kp = _ceil(_ceil(g.K, s), k_tile) * k_tile
                n_tiles = tm * tn * s * g.count
                tiles += n_tiles
                math_flops_per_tile_set.append((n_tiles, 2.0 * mt * nt * kp))
                a_bytes, b_bytes = g.M * g.K * a_b, g.K * g.N * b_stored
                # Each operand once if both fit in L2; else once per square wave block that uses it.
                if a_bytes + b_bytes <= l2_bytes_cap:
                    ra = rb = 1.0
                else:
                    wm = max(1, min(tm, round(math.sqrt(concurrent * nt / mt))))
                    wn = max(1, min(tn, _ceil(concurrent, wm)))
                    ra, rb = _ceil(tn, wn), _ceil(tm, wm)
                a_hbm += a_bytes * ra * g.count
                b_hbm += b_bytes * rb * g.count
                c_hbm += g.M * g.N * c_b * g.count
                l2_read += (tm * tn * s) * (mt * a_b + nt * b_stored) * kp * g.count
                if s > 1:
                    partial_bytes += g.M * g.N * 4.0 * s * g.count
            # Tile math: CTAs sharing an SM share its rate; a partial last wave still costs
            # ceil(tail / SMs) tile-times on its busiest SM.
            # Each K-loop iteration issues 2 mt nt k_tile FLOPs plus a fixed unhidden overhead, so a
            # small tile (or a 2:4 tile, whose math per iteration is halved) loses more to it.
            flops = max(f for _, f in math_flops_per_tile_set)
            per_tile = flops / rate + overhead * flops / (2.0 * mt * nt * k_tile)
            full_waves, tail = divmod(tiles, concurrent)
            math_cycles = full_waves * (ctas_per_sm * per_tile + latency)
            if tail:
                math_cycles += _ceil(tail, spec.sm_count) * per_tile + latency
            active_sms = min(spec.sm_count, tiles)
            inflight_bpc = active_sms * min(tiles / active_sms, ctas_per_sm) * stage_bytes * spec.pipeline_stages / latency
            hbm_rate = min(hbm_bpc, inflight_bpc)
            hbm_read = a_hbm + b_hbm + partial_bytes
            hbm_write = c_hbm + partial_bytes
            mem_cycles = max((hbm_read + hbm_write) / hbm_rate, (l2_read + hbm_write) / l2_bpc)
            total = max(math_cycles, mem_cycles)
            if s > 1:  # the reduction kernel reads the fp32 partials once more (already counted) and launches
                total += spec.launch_overhead_us * 1e-6 * arch.clock_hz
            cand = KernelTime(math_cycles=math_cycles, total_cycles=total, hbm_read_bytes=hbm_read,
                              hbm_write_bytes=hbm_write, l2_read_bytes=l2_read, l2_write_bytes=hbm_write,
                              active_sms=active_sms, choice=f"tile {mt}x{nt}, split-K {s}, {ctas_per_sm} CTA/SM, "
                                     f"{_ceil(tiles, concurrent)} waves")
            if best is None or cand.total_cycles < best.total_cycles:
                best = cand
    return best


def _dense_peak_macs(spec: ComputeSpec, rate: TensorRate) -> float:
    """Dense peak MACs per cycle of the op's dtype (utilisation is reported against it)."""
    return rate.dense_flops_per_cycle_per_sm * spec.sm_count / 2.0


def _launch_cycles(arch: Arch, launches: int = 1) -> float:
    return arch.compute.launch_overhead_us * 1e-6 * arch.clock_hz * launches


def _traffic(arch: Arch, kt: KernelTime) -> tuple[dict, dict]:
    l2, hbm = _levels(arch)
    reads = no_traffic(arch)
    writes = no_traffic(arch)
    reads[hbm], writes[hbm] = kt.hbm_read_bytes, kt.hbm_write_bytes
    reads[l2], writes[l2] = kt.l2_read_bytes, kt.l2_write_bytes
    return reads, writes


def _board_energy_pj(arch: Arch, kt: KernelTime, launch_cycles: float) -> dict[str, float]:
    """Idle board power over the whole op (launch gaps included) and per-SM active power while the
    kernel occupies its SMs; empty when the spec has no `power` block."""
    power: BoardPower | None = arch.compute.power
    if power is None:
        return {}
    kernel_s = kt.total_cycles / arch.clock_hz
    sms = arch.compute.sm_count if kt.active_sms is None else min(kt.active_sms, arch.compute.sm_count)
    return {"board_idle": power.idle_w * (kernel_s + launch_cycles / arch.clock_hz) * 1e12,
            "sm_active": power.sm_active_w * sms * kernel_s * 1e12}


def energy_components(arch: Arch) -> tuple[str, ...]:
    """The board's idle and per-SM active energy, when the spec has a `power` block."""
    return ("board_idle", "sm_active") if arch.compute.power is not None else ()


def _power_limited(arch: Arch, kt: KernelTime, macs: float, mac_bits: int) -> tuple[KernelTime, str]:
    """Stretch a kernel whose board power would pass the TDP to the time at which it draws exactly the
    TDP (the board lowers its clock; approximation: energy per action is taken as clock-independent)."""
    power: BoardPower | None = arch.compute.power
    if power is None or kt.total_cycles <= 0:
        return kt, ""
    from simulator.energy import level_energy_pj_per_bit, mac_energy_pj
    l2, hbm = _levels(arch)
    per_bit = {n: level_energy_pj_per_bit(arch, arch.memory[n]) for n in (l2, hbm)}
    actions_pj = (macs * mac_energy_pj(arch, mac_bits)
                  + 8 * (kt.l2_read_bytes * per_bit[l2][0] + kt.l2_write_bytes * per_bit[l2][1])
                  + 8 * (kt.hbm_read_bytes * per_bit[hbm][0] + kt.hbm_write_bytes * per_bit[hbm][1]))
    sms = arch.compute.sm_count if kt.active_sms is None else min(kt.active_sms, arch.compute.sm_count)
    headroom_w = power.tdp_w - power.idle_w - power.sm_active_w * sms
    seconds = kt.total_cycles / arch.clock_hz
    if headroom_w <= 0 or actions_pj * 1e-12 / seconds <= headroom_w:
        return kt, ""
    stretch = actions_pj * 1e-12 / headroom_w / seconds
    slower = dataclasses.replace(kt, total_cycles=kt.total_cycles * stretch, math_cycles=kt.math_cycles * stretch)
    return slower, f"power-limited at the {power.tdp_w:g} W TDP: clock lowered {1 - 1 / stretch:.0%}"


def _cost(op: Op, arch: Arch, kt: KernelTime, launches: int, model: str, macs: float, notes: list[str],
          peak_macs_per_cycle: float) -> OpCost:
    kt, limited = _power_limited(arch, kt, macs, max(op.precision.activations, op.precision.weights))
    if limited:
        notes = [*notes, limited]
    launch = _launch_cycles(arch, launches)
    reads, writes = _traffic(arch, kt)
    compute = min(kt.math_cycles, kt.total_cycles) + launch
    stall = max(0.0, kt.total_cycles - kt.math_cycles)
    # The kernel choice (tile, split-K, waves) goes with the model string, per op; notes are
    # for what the user must know (sparsity not exploited, fused halves).
    return OpCost(engine="gpu", model=f"{model} [{kt.choice}]", compute_cycles=compute, stall_cycles=stall,
                  macs=macs, dense_macs=float(op.dense_macs), peak_macs_per_cycle=peak_macs_per_cycle,
                  reads_bytes=reads, writes_bytes=writes, extra_energy_pj=_board_energy_pj(arch, kt, launch),
                  notes=tuple(notes))


def _streaming(arch: Arch, read_bytes: float, write_bytes: float, math_cycles: float, choice: str,
               kernel: str = "stream") -> KernelTime:
    _, hbm_bpc = _bandwidths(arch, kernel)
    total = max(math_cycles, (read_bytes + write_bytes) / hbm_bpc)
    return KernelTime(math_cycles=math_cycles, total_cycles=total, hbm_read_bytes=read_bytes,
                      hbm_write_bytes=write_bytes, l2_read_bytes=read_bytes, l2_write_bytes=write_bytes,
                      choice=choice)


def _check_capacity(spec: ComputeSpec, total_bytes: float) -> None:
    if total_bytes > spec.hbm_capacity_gib * 2 ** 30:
        raise SparsimInputError(f"the op's operands need {total_bytes / 2 ** 30:.1f} GiB, more than the GPU's "
                                f"{spec.hbm_capacity_gib:g} GiB of HBM", field="compute.hbm_capacity_gib",
                                hint="split the op (smaller batch) or use a GPU with more memory")


# ----------------------------------------------------------------------------- per op kind

def _vector_cost(op: Op, arch: Arch) -> OpCost:
    work = vector_work(op, None, op.precision.activations, op.precision.outputs)  # math hidden under HBM time
    kt = _streaming(arch, work.read_bytes, work.write_bytes, work.lane_cycles,
                    "streaming kernel (bytes / achievable HBM bandwidth)")
    return _cost(op, arch, kt, 1, "gpu memory-bound kernel: bytes / achievable HBM bandwidth", 0.0, [],
                 arch.compute.peak_macs_per_cycle)


def _attention_cost(op: Op, arch: Arch) -> OpCost:
    spec: ComputeSpec = arch.compute
    d = op.dims
    bits = max(op.precision.activations, op.precision.weights)
    _, rate = tensor_rate(spec, bits)
    b = bits / 8.0
    flops = 2.0 * d.batch * d.heads * d.q_len * d.kv_len * d.head_dim   # this half (QK^T or PV)
    kv_bytes = d.kv_elements * b                                          # K (qk) or V (pv), read once
    q_or_o = d.batch * d.heads * d.q_len * d.head_dim * b                 # Q read (qk) or O written (pv)
    _check_capacity(spec, 2 * kv_bytes + 2 * q_or_o)
    per_sm = rate.dense_flops_per_cycle_per_sm * spec.efficiency.attention
    if d.q_len <= spec.gemv_max_m:
        # Decode: split-KV (flash-decoding) spreads the KV cache over all SMs; bandwidth-bound.
        math_cycles = flops / (per_sm * spec.sm_count)
        choice = "fused attention, split-KV decode"
    else:
        ctas = d.batch * d.heads * _ceil(d.q_len, ATTENTION_BLOCK_Q)
        rows = min(d.q_len, ATTENTION_BLOCK_Q)
        per_cta = 2.0 * rows * d.kv_len * d.head_dim / per_sm
        math_cycles = _ceil(ctas, spec.sm_count) * per_cta
        choice = f"fused attention, {ctas} CTAs in {_ceil(ctas, spec.sm_count)} waves"
    read, write = (q_or_o + kv_bytes, 0.0) if op.kind == "attention_qk" else (kv_bytes, q_or_o)
    kt = _streaming(arch, read, write, math_cycles, choice)
    if d.q_len > spec.gemv_max_m:
        kt = dataclasses.replace(kt, active_sms=min(spec.sm_count, ctas))
    launches = 1 if op.kind == "attention_qk" else 0
    notes = [] if launches else ["second half of the fused attention kernel (launch counted on attention_qk)"]
    sparse = [n for n in ("activations", "weights") if getattr(op.sparsity, n).kind != "dense"]
    if sparse:
        notes.append(f"{'/'.join(sparse)} sparsity not exploited by the fused attention kernel (runs dense)")
    return _cost(op, arch, kt, launches, "gpu fused FlashAttention-style kernel (tile waves, bytes once)",
                 float(op.dense_macs), notes, _dense_peak_macs(spec, rate))


def _skinny_math_cycles(spec: ComputeSpec, rate: TensorRate, gemms: list[_Gemm], bits: dict) -> tuple[float, str]:
    """Math time of a decode-shaped GEMM (M <= gemv_max_m). M = 1 runs as a CUDA-core GEMV (the spec's
    fp32 rate when it has one). Larger M runs on tensor cores, whose MMA tile pads M to `mma_m`, as
    a `mma_m` x 128 CTA tile paying the K-loop iteration overhead: M = 2..16 all cost the padded
    math, which decides the time only where it approaches the weight-streaming time."""
    if max(g.M for g in gemms) == 1:
        cuda_core = spec.tensor_math["fp32"].dense_flops_per_cycle_per_sm if "fp32" in spec.tensor_math \
            else rate.dense_flops_per_cycle_per_sm
        flops = sum(2.0 * g.N * g.K * g.count for g in gemms)
        return flops / (cuda_core * spec.sm_count), "CUDA-core GEMV, bandwidth-bound unless math is slower"
    mt, nt = spec.mma_m, 128
    k_tile = max(8, spec.k_tile_bytes / (max(bits["a"], bits["b"]) / 8.0))
    per_sm = rate.dense_flops_per_cycle_per_sm * spec.efficiency.tensor
    iteration = 2.0 * mt * nt * k_tile / per_sm
    efficiency = iteration / (iteration + spec.k_iteration_overhead_cycles)
    flops = sum(2.0 * _ceil(g.M, mt) * mt * g.N * g.K * g.count for g in gemms)
    return flops / (per_sm * efficiency * spec.sm_count), f"tensor-core tiles with M padded to {mt}"


def _gemm_cost(op: Op, arch: Arch) -> OpCost:
    spec: ComputeSpec = arch.compute
    bits_in = max(op.precision.activations, op.precision.weights)
    dtype, rate = tensor_rate(spec, bits_in)
    bits = {"a": op.precision.activations, "b": op.precision.weights, "c": op.precision.outputs}
    gemms = [_Gemm(g.M, g.N, g.K, g.count) for g in op.gemm_shapes()]
    notes: list[str] = []
    dense_macs = float(op.dense_macs)
    if not gemms or dense_macs == 0:
        kt = _streaming(arch, 0.0, 0.0, 0.0, "empty")
        return _cost(op, arch, kt, 0, "gpu: no work", 0.0, ["op has no work"], spec.peak_macs_per_cycle)

    # Which operand (if any) the 2:4 tensor cores can use; cuSPARSELt takes one sparse operand.
    sp_w, sp_a = op.sparsity.weights, op.sparsity.activations
    sparse_operand = "weights" if runs_as_2_4(sp_w) else ("activations" if runs_as_2_4(sp_a) else None)
    if sparse_operand and rate.sparse_2_4_flops_per_cycle_per_sm is None:
        notes.append(f"{sparse_operand} are 2:4-sparse but this GPU has no sparse tensor cores (runs dense)")
        sparse_operand = None
    for name, s in (("weights", sp_w), ("activations", sp_a)):
        if s.kind != "dense" and name != sparse_operand and not any(name in n for n in notes):
            notes.append(f"{name} {s.label} sparsity not exploited (runs dense)")
    if sparse_operand == "activations":
        # Compute C^T = B^T A^T so that the sparse operand takes the compressed side.
        gemms = [_Gemm(g.N, g.M, g.K, g.count) for g in gemms]
        bits = {"a": bits["b"], "b": bits["a"], "c": bits["c"]}
    total_bytes = sum((g.M * g.K * bits["a"] + g.K * g.N * bits["b"] + g.M * g.N * bits["c"]) / 8.0 * g.count
                      for g in gemms)
    _check_capacity(spec, total_bytes)
    grouped = op.dims.grouped
    gemm_word = "grouped GEMM" if grouped else ("batched GEMM" if sum(g.count for g in gemms) > 1 else "GEMM")

    if sparse_operand:
        kt = _tiled_gemm_time(arch, gemms, bits, rate.sparse_2_4_flops_per_cycle_per_sm,
                              spec.efficiency.sparse_tensor, True, spec.sparse_split_k)
        launches = 1 + spec.sparse_extra_launches
        model = f"gpu 2:4 sparse {gemm_word} ({dtype}): tile waves at the sparse peak, compressed operand"
        return _cost(op, arch, kt, launches, model, dense_macs / 2.0, notes,
                     _dense_peak_macs(spec, rate))

    if max(g.M for g in gemms) <= spec.gemv_max_m and not grouped:
        read = sum((g.M * g.K * bits["a"] + g.K * g.N * bits["b"]) / 8.0 * g.count for g in gemms)
        write = sum(g.M * g.N * bits["c"] / 8.0 * g.count for g in gemms)
        math_cycles, how = _skinny_math_cycles(spec, rate, gemms, bits)
        kt = _streaming(arch, read, write, math_cycles, f"skinny kernel (M <= {spec.gemv_max_m}), {how}",
                        kernel="gemm")
        return _cost(op, arch, kt, 1, f"gpu GEMV ({dtype}): max(bytes / achievable HBM bandwidth, padded math)",
                     dense_macs, notes, _dense_peak_macs(spec, rate))

    kt = _tiled_gemm_time(arch, gemms, bits, rate.dense_flops_per_cycle_per_sm, spec.efficiency.tensor,
                          False, spec.split_k and not grouped)
    model = f"gpu {gemm_word} ({dtype}): CTA tile waves bounded by tensor math, L2 and HBM"
    return _cost(op, arch, kt, 1, model, dense_macs, notes, _dense_peak_macs(spec, rate))


def estimate(op: Op, arch: Arch) -> OpCost:
    """Cycles (at the spec clock) of one execution of `op` as one GPU kernel."""
    if op.is_vector:
        return _vector_cost(op, arch)
    if isinstance(op.dims, AttentionDims):
        return _attention_cost(op, arch)
    return _gemm_cost(op, arch)


__all__ = ["ComputeSpec", "TensorRate", "Efficiency", "BoardPower", "estimate", "check_arch", "compute_area_mm2",
           "tensor_rate", "runs_as_2_4", "DTYPES_FOR_BITS"]
