"""FPGA engine: cascaded DSP-slice chains (dense and FlightLLM-style sparse), BRAM/URAM, HBM/DDR.

What is modelled
- A chain is L MAC positions of one DSP family (`simulator.fpga.FAMILIES`) cascaded through the
  dedicated PCOUT->PCIN path: every cycle it takes L (weight, activation) pairs and, after its
  pipeline has filled, emits one L-long dot product per cycle. A GEMM's reduction K is cut
  into k_steps = ceil(K / slots) issues per output (slots = L, x3 for DSP58 INT8 dot-product
  mode); partial sums are accumulated in a fabric accumulator behind the chain. Operands wider
  than the multiplier take `slices_per_mac` slices per position (DSPs = chains x L x that).
- Chains are grouped into PEs of `chains_per_pe`; the chains of a PE share one activation
  stream (broadcast) and compute different output columns. PEs either work on further
  columns (mapping `n`) or on further rows/tokens (mapping `m`); `auto` picks the one with
  fewer cycles. A fold is a tile of p_m rows x p_n columns reduced over the full K;
  folds run outer over N tiles and inner over M tiles (a weight tile stays in its buffer
  while every token streams past it). When that scheme is bandwidth-bound because a K-long
  weight tile or activation row no longer fits its buffer, K is tiled as well and the partial
  sums stay on chip (`simulator.engines.dsp_ktiling`; noted in the result). A FINN
  matrix-vector unit is one PE: PE = chains, SIMD = L (cycles (MH/PE)(MW/SIMD) x vectors;
  `arch_configs/fpga_finn_mvu_zcu104.yaml`).
- Attention: the query heads that share a KV head (GQA) are stacked into the rows of one
  GEMM, so each K/V tensor streams once per KV head.
- INT8 packing (`int8_packing`): DSP48E2 computes two MACs per slice sharing one operand
  (WP486). Sharing the activation packs two output columns (`n`); sharing the weight packs
  two tokens (`m`, useful in prefill). The low product's field limits how many packed
  products a cascade may sum (`simulator.fpga.packed_chain_limit`: 7 for INT8 x INT8);
  a longer chain is cut into segments that cascade side by side and are added in fabric
  (more LUTs, ceil(log2 segments) adder levels). DSP58 INT8 mode sums 3 products per slice
  (3x slots, no packing limit). INT4 and mixed widths up to 8 bits use the same packing
  (longer packed cascades: 127 for W4A8); denser INT4 packings are not modelled.
- Time of one GEMM = issues + fill - 1, with fill = L (the longest segment when packed) +
  pipeline_stages (+ fabric adder levels), paid once per GEMM shape (the chains stream back
  to back; `pipeline_fill: overlapped` drops it for a streaming dataflow that hides it behind
  the previous layer, as FINN counts cycles), + on-chip port stalls + DRAM stalls. Each fold's
  issue cycles are bounded below by the bytes its chains read from each on-chip level divided
  by that level's bandwidth (BRAM/URAM ports); DRAM transfers are overlapped fold by fold with
  double buffering (`kernels.schedule`).
- Sparse chain (`sparse:`): weights in a supported N:M pattern are stored compressed (kept
  values + ceil(log2 M)-bit indices); a chain issues L kept values per cycle and selects the
  matching activations by index from a window of dense activations, so one issue covers
  slots * M/N dense K positions, bounded by the activation buffer's read width per row
  (`act_read_width`). Shared-activation packing cannot be used on N:M weights (two columns
  have different masks); shared-weight packing still can. Non-N:M weights go through the
  N:M tensor core's machinery (`simulator.sparsity.nm_mode_choice`): the measured group
  histogram when the trace has one (else exact N:M, hypergeometric, block or binomial group
  statistics) with the `overflow` policy for groups over N (split: ceil(j/N) passes;
  group_dense; op_dense). Block-sparse weights skip zero blocks when `block: true`;
  the chains of a PE share an activation stream, so a K-block is skipped only when it is
  zero in every column of the PE: kept fraction 1 - (1-d)^(columns per PE / block cols).
  Each sparse GEMM pays `reconfig_cycles` once. When no supported pattern beats dense, the
  op runs dense (noted). Activation sparsity is not exploited.
- Memory: weights, activations and outputs live in the innermost on-chip level that holds
  them (`bram`/`uram`), else stream from the off-chip level (`hbm`/`ddr`), whose bandwidth
  is derated by `offchip_efficiency` (for GEMMs and vector ops alike). `offchip_channels` x
  `offchip_gb_per_s_per_channel` (HBM pseudo-channels / DDR channels) must agree with the
  level's bytes per cycle at the spec's clock. `onchip_resident` operands (FlightLLM's
  always-on-chip decode keeps activations on chip) cost no off-chip traffic when the whole
  tensor fits its level; `weights` / `kv` (the K/V operand of attention) must fit with all
  `repeat` instances, since they stay for the whole run.
- Energy: DSP energy enters through `energy.mac_pj` (set it per MAC from the family's slice
  energy, see `simulator.fpga`); BRAM/URAM/HBM through level read/write energies; the
  device's static power x time goes to `extra_energy_pj['device_static']`; LUT muxes of the
  sparse chain through `index_selects`.

Approximations: edge tiles use the same issue count as full ones; columns of a PE are
assumed to need the same kept count (no load imbalance between chains); storage formats of
the levels are not consulted for weights (the chain's own compressed format is used);
residency is decided per op (other ops' resident tensors are not subtracted from the
level); the extra latency of assembling a wide product from several slices is ignored;
LUT/FF counts are estimates; area in mm^2 is not meaningful on an FPGA (`compute_area_mm2` = 0).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from simulator import fpga, memory
from simulator.cost import OpCost
from simulator.engines.dsp_ktiling import MAX_K_TILED_FOLDS, Buffers, tilings
from simulator.engines.dsp_spec import ComputeSpec, DeviceSpec, SparseChainSpec, check_spec
from simulator.engines.vector import vector_work
from simulator.errors import SparsimInputError
from simulator.memory import streaming_memory_cost
from simulator.kernels.dsp import chain_folds
from simulator.kernels.schedule import fold_schedule
from simulator.sparsity import block_extents, index_bits, nm_mode_choice, operand_density
from simulator.spec import Arch
from simulator.trace import Op, Trace

MAX_TILED_FOLDS = 400_000


def offchip_bytes_per_cycle(arch: Arch) -> float:
    """Achieved off-chip bytes per cycle: the level's peak x `offchip_efficiency` (inf when ideal)."""
    return memory.offchip_bytes_per_cycle(arch, arch.compute.offchip_efficiency)


# ----------------------------------------------------------------------------- sparsity choice

@dataclasses.dataclass(frozen=True)
class Mode:
    kind: str                  # "dense" | "nm" | "block"
    label: str
    fraction: float            # nm: slots issued per dense element; block: kept K fraction
    index_bits: int = 0
    n: int = 0
    m: int = 0
    block: tuple[int, int] | None = None
    model: str = ""            # group-distribution model behind `fraction`


def weight_modes(spec: ComputeSpec, op: Op) -> list[Mode]:
    """Every way the chains can run this op's weights: dense plus each applicable sparse mode.

    N:M modes go through `simulator.sparsity.nm_mode_choice` one pattern at a time, as on the N:M
    tensor core: measured group histogram when the trace has one, else exact N:M, hypergeometric,
    block or binomial group statistics, with the `overflow` policy for groups over N."""
    sp = op.sparsity.weights
    modes = [Mode("dense", "dense", 1.0)]
    if spec.sparse is None or sp.kind == "dense":
        return modes
    shapes = op.gemm_shapes()
    k_block, _ = block_extents(sp, "weights")
    for n_hw, m_hw in spec.sparse.patterns:
        if n_hw == m_hw:
            continue
        choice = nm_mode_choice(sp, [(n_hw, m_hw)], spec.sparse.overflow, k_block=k_block,
                                groups_of_m=lambda m: sum(math.ceil(g.K / m) * g.N * g.count for g in shapes))
        if not choice.dense and choice.k_factor < 1.0:
            modes.append(Mode("nm", f"{n_hw}:{m_hw}", choice.k_factor, index_bits=index_bits(m_hw),
                              n=n_hw, m=m_hw, model=choice.model))
    if spec.sparse.block and sp.kind == "block":
        modes.append(Mode("block", f"block{sp.block[0]}x{sp.block[1]}", float(operand_density(sp)),
                          block=tuple(sp.block), model="block density"))
    return modes


def stored_weight_bits(spec: ComputeSpec, mode: Mode) -> float:
    """Bits stored per dense weight element in a mode (the chain's own compressed format)."""
    w = spec.precision.weights
    if mode.kind == "nm":
        return mode.fraction * (w + mode.index_bits)
    if mode.kind == "block":
        br, bc = mode.block
        return mode.fraction * w + 1.0 / (br * bc)     # kept values + a 1-bit block mask
    return float(w)


# ----------------------------------------------------------------------------- one GEMM

@dataclasses.dataclass
class _Cost:
    compute: float = 0.0
    port_stall: float = 0.0
    dram_stall: float = 0.0
    macs: float = 0.0
    index_selects: float = 0.0
    k_tiling: str = "full K"
    offchip_bytes: float = 0.0
    reads: dict = dataclasses.field(default_factory=dict)
    writes: dict = dataclasses.field(default_factory=dict)

    @property
    def cycles(self) -> float:
        return self.compute + self.port_stall + self.dram_stall


def _act_width(spec: ComputeSpec) -> float:
    if spec.sparse is not None and spec.sparse.act_read_width is not None:
        return float(spec.sparse.act_read_width)
    return 2.0 * spec.slots


def _kept_fraction(mode: Mode, pe_cols: int) -> float:
    """Share of the dense K positions a chain issues (nm: slots incl. padding; block: union over the PE)."""
    if mode.kind == "block":
        groups = max(1, math.ceil(pe_cols / mode.block[1]))
        return 1.0 - (1.0 - mode.fraction) ** groups
    return mode.fraction


def _k_steps(spec: ComputeSpec, mode: Mode, K: int, pe_cols: int) -> int:
    """Issues one chain needs to reduce a K-long (dense) dot product in this mode."""
    slots = spec.slots
    if mode.kind == "dense":
        return math.ceil(K / min(slots, _act_width(spec)))
    if mode.kind == "nm":
        # L kept values cover slots * M/N dense positions, but the buffer delivers only act_read_width
        covered = min(slots / mode.fraction, _act_width(spec))
        return max(1, math.ceil(K / covered))
    return max(1, math.ceil(K * _kept_fraction(mode, pe_cols) / slots))


def _plans(spec: ComputeSpec, mode: Mode, M: int, N: int, K: int):
    """Candidate (p_m_hw, p_n, pe_cols, k_steps, issues) for each pack direction and PE mapping,
    fewest issues first (ties: share the activation, map PEs along N)."""
    pes = spec.n_chains // spec.chains_per_pe
    cpp = spec.chains_per_pe
    pn = spec.pack_n
    dirs = ["none"]
    if pn > 1:
        dirs = ["m"]
        if mode.kind == "dense" or (mode.kind == "block" and mode.block[1] % pn == 0):
            dirs.insert(0, "n")     # shared-activation packing needs one mask for both columns
    maps = ["n", "m"] if spec.mapping == "auto" else [spec.mapping]
    out = []
    for d in dirs:
        for mp in maps:
            lane_n = pn if d == "n" else 1
            lane_m = pn if d == "m" else 1
            pe_cols = cpp * lane_n
            p_n, p_m = (pes * pe_cols, lane_m) if mp == "n" else (pe_cols, pes * lane_m)
            k_steps = _k_steps(spec, mode, K, pe_cols)
            issues = math.ceil(M / p_m) * math.ceil(N / p_n) * k_steps
            out.append(((issues, d != "n", mp != "n"), (p_m, p_n, pe_cols, k_steps, issues)))
    out.sort(key=lambda x: x[0])
    return [plan for _, plan in out]


def _gemm(spec: ComputeSpec, arch: Arch, mode: Mode, M: int, N: int, K: int, count: int,
          instances: int = 1, b_operand: str = "weights") -> _Cost:
    """Cost of `count` independent (M x K) @ (K x N) GEMMs in one mode, best mapping. `instances`
    (the op's repeat) and `b_operand` ('weights' or 'kv') decide whether the B operand may stay on chip."""
    best = None
    for plan in _plans(spec, mode, M, N, K)[:2]:
        cost = _gemm_plan(spec, arch, mode, M, N, K, count, plan, instances, b_operand)
        if best is None or cost.cycles < best.cycles:
            best = cost
    return best


def _gemm_plan(spec, arch, mode, M, N, K, count, plan, instances=1, b_operand="weights") -> _Cost:
    """Cost of one PE mapping: the untiled buffer scheme, and when its DRAM traffic takes longer
    than its compute (full-K tiles too big for the buffers make it re-fetch operands), also every K
    tiling of the on-chip buffers (`simulator.engines.dsp_ktiling`); the fewest cycles win."""
    p = spec.precision
    a_b, o_b = p.activations / 8.0, p.outputs / 8.0
    p_m_hw, p_n, pe_cols, k_steps, _ = plan
    # stored weight bytes per dense element (the chain's own compressed format) and per chain issue
    w_elem = stored_weight_bits(spec, mode) / 8.0
    if mode.kind == "nm":
        w_issue = spec.slots * (p.weights + mode.index_bits) / 8.0
        act_issue = min(spec.slots / mode.fraction, _act_width(spec)) * a_b
    elif mode.kind == "block":
        w_issue = spec.slots * p.weights / 8.0
        act_issue = spec.slots * a_b
    else:
        w_issue = spec.slots * p.weights / 8.0
        act_issue = min(spec.slots, _act_width(spec)) * a_b
    a_lvl, w_lvl, o_lvl = arch.buffer_for("activations"), arch.buffer_for("weights"), arch.buffer_for("outputs")
    bufs = Buffers(M=M, p_m_hw=p_m_hw, p_n=p_n, row_bytes=K * a_b, w_tile=K * p_n * w_elem,
                   out_tile=p_m_hw * p_n * o_b, psum_row=p_n * p.accumulator / 8.0,
                   psum_row_all=N * p.accumulator / 8.0,
                   ws_rows=spec.weight_stationary_rows, a_lvl=a_lvl, w_lvl=w_lvl, o_lvl=o_lvl,
                   usable={n: memory.usable_bytes(arch, n) for n in arch.memory})
    # On-chip residency between ops (FlightLLM's always-on-chip decode): the whole tensor of all
    # `count` GEMMs must fit its level; weights / KV must fit with every `instances` copy (layers),
    # since they stay there for the whole run.
    def cap(level):
        return arch.memory[level].capacity_bytes if level is not None else -1.0
    res = spec.onchip_resident
    resident = ("activations" in res and M * bufs.row_bytes * count <= cap(a_lvl),
                b_operand in res and K * N * w_elem * count * instances <= cap(w_lvl),
                "outputs" in res and M * N * o_b * count <= cap(o_lvl))
    issue_bytes = (act_issue, w_issue, w_elem)
    untiled = tilings(bufs, k_steps, False)[0]
    best = _tiled_cost(spec, arch, mode, (M, N, K, count), plan, bufs, untiled, resident, issue_bytes)
    if best.offchip_bytes * _cycles_per_offchip_byte(arch) > best.compute:    # bandwidth-bound untiled
        for tiling in tilings(bufs, k_steps, True)[1:]:
            cost = _tiled_cost(spec, arch, mode, (M, N, K, count), plan, bufs, tiling, resident, issue_bytes)
            if cost is not None and cost.cycles < best.cycles:
                best = cost
    return best


def _cycles_per_offchip_byte(arch: Arch) -> float:
    bpc = offchip_bytes_per_cycle(arch)
    return 0.0 if not math.isfinite(bpc) else 1.0 / bpc


def _tiled_cost(spec, arch, mode, shape, plan, bufs, tiling, resident, issue_bytes) -> _Cost | None:
    """Cycles, traffic and MACs of one GEMM under one buffer tiling (None: too many folds to tile)."""
    M, N, K, count = shape
    p_m_hw, p_n, pe_cols, k_steps, _ = plan
    a_res, w_res, o_res = resident
    act_issue, w_issue, w_elem = issue_bytes
    a_lvl, w_lvl, o_lvl = bufs.a_lvl, bufs.w_lvl, bufs.o_lvl
    o_b, acc_b = spec.precision.outputs / 8.0, spec.precision.accumulator / 8.0
    kept = _kept_fraction(mode, pe_cols)
    p_m, chunk, k_tiles = tiling.p_m, tiling.chunk, tiling.k_tiles
    if k_tiles > 1 and math.ceil(M / p_m) * math.ceil(N / p_n) * k_tiles > MAX_K_TILED_FOLDS:
        return None
    a_bw = arch.memory[a_lvl].bytes_per_cycle if a_lvl else 0.0
    w_bw = arch.memory[w_lvl].bytes_per_cycle if w_lvl else 0.0
    issue, cyc, load, store, a_rd, w_rd = chain_folds(
        M, N, K, p_m, p_n, k_steps, act_issue, w_issue,
        a_bw if math.isfinite(a_bw) else 0.0, w_bw if math.isfinite(w_bw) else 0.0,
        a_lvl is not None and a_lvl == w_lvl,
        bufs.row_bytes, 0.0 if w_res else K * w_elem, o_b, tiling.w_fits, tiling.a_chunk_fits, a_res, o_res,
        pe_cols, p_m_hw, chunk, k_tiles, tiling.k_outer)

    dram = arch.memory[arch.offchip_name]
    cpb = _cycles_per_offchip_byte(arch)
    folds = len(cyc)
    reps = count if count * folds <= MAX_TILED_FOLDS else 1
    if reps > 1:
        _, dram_stall = fold_schedule(np.tile(cyc, reps), np.tile(load, reps), np.tile(store, reps), cpb,
                                      bool(dram.double_buffered))
    else:
        _, dram_stall = fold_schedule(cyc, load, store, cpb, bool(dram.double_buffered))

    issues = float(issue.sum())
    reconfig = spec.sparse.reconfig_cycles if (mode.kind != "dense" and spec.sparse) else 0
    fill = spec.fill_cycles - 1 if spec.pipeline_fill == "per_gemm" else 0
    cost = _Cost()
    cost.compute = issues * count + fill + reconfig
    cost.port_stall = (float(cyc.sum()) - issues) * count
    cost.dram_stall = float(dram_stall) * count / reps
    dense_macs = float(M) * N * K * count
    cost.macs = dense_macs * kept
    if mode.kind == "nm":
        cost.index_selects = dense_macs * kept
    cost.k_tiling = tiling.label
    reads = memory.no_traffic(arch)
    writes = memory.no_traffic(arch)
    off = arch.offchip_name
    reads[off] += float(load.sum()) * count
    writes[off] += float(store.sum()) * count
    cost.offchip_bytes = reads[off] + writes[off]
    if a_lvl:
        reads[a_lvl] += a_rd * count
        a_fill = 0.0 if a_res else M * bufs.row_bytes * (1 if tiling.a_chunk_fits else math.ceil(N / p_n))
        writes[a_lvl] += a_fill * count
    if w_lvl:
        reads[w_lvl] += w_rd * count
        w_fetches = math.ceil(M / chunk) if tiling.w_fits else math.ceil(M / p_m)
        writes[w_lvl] += (0.0 if w_res else K * N * w_elem * w_fetches) * count
    if o_lvl:
        writes[o_lvl] += M * N * o_b * count
        if not o_res:
            reads[o_lvl] += M * N * o_b * count
        psums = (k_tiles - 1) * float(M) * N * acc_b * count    # partial sums re-read and re-written per K tile
        reads[o_lvl] += psums
        writes[o_lvl] += psums
    cost.reads, cost.writes = reads, writes
    return cost


# ----------------------------------------------------------------------------- vector ops

def _vector_cost(op: Op, arch: Arch) -> OpCost:
    """Elementwise / softmax / norm on `vector_lanes` fabric lanes: ceil(elements / lanes) x
    ceil(flops per element) cycles; operands stream through the activation buffer when they are
    `onchip_resident` and fit it (bounded by its ports), else through off-chip memory at the derated
    bandwidth. The slower of compute and transfer bounds the op (double-buffered streaming)."""
    spec: ComputeSpec = arch.compute
    lanes = spec.vector_lanes or spec.n_chains
    bits = spec.precision.activations
    work = vector_work(op, lanes, bits, bits)
    compute, rd, wr = work.lane_cycles, work.read_bytes, work.write_bytes
    a_lvl = arch.buffer_for("activations")
    on_chip = "activations" in spec.onchip_resident and a_lvl is not None and \
        rd + wr <= arch.memory[a_lvl].capacity_bytes
    if on_chip:
        mem = streaming_memory_cost(arch, rd, wr, compute, level=a_lvl, double_buffered=True)
        where = f"on chip ({a_lvl})"
    else:
        mem = streaming_memory_cost(arch, rd, wr, compute, bytes_per_cycle=offchip_bytes_per_cycle(arch))
        where = "off chip"
    stall = mem.stall_cycles
    static_pj = spec.static_power_w / arch.clock_hz * 1e12
    return OpCost(engine="dsp_chain", model=f"dsp_chain vector lanes x{lanes}, streaming {where} (analytic)",
                  compute_cycles=compute, stall_cycles=stall, macs=0.0, dense_macs=0.0,
                  peak_macs_per_cycle=float(lanes), reads_bytes=mem.reads_bytes, writes_bytes=mem.writes_bytes,
                  extra_energy_pj={"device_static": (compute + stall) * static_pj})


# ----------------------------------------------------------------------------- one op

def estimate(op: Op, arch: Arch) -> OpCost:
    spec: ComputeSpec = arch.compute
    static_pj_per_cycle = spec.static_power_w / arch.clock_hz * 1e12
    if op.is_vector:
        return _vector_cost(op, arch)
    shapes = op.gemm_shapes()
    b_operand = op.dims.b_operand
    best_mode, best = None, None
    for mode in weight_modes(spec, op):        # dense first: it wins ties
        parts = [_gemm(spec, arch, mode, g.M, g.N, g.K, g.count, op.repeat, b_operand) for g in shapes]
        total = _Cost(reads=memory.no_traffic(arch), writes=memory.no_traffic(arch))
        for c in parts:
            total.compute += c.compute
            total.port_stall += c.port_stall
            total.dram_stall += c.dram_stall
            total.macs += c.macs
            total.index_selects += c.index_selects
            for n in arch.memory:
                total.reads[n] += c.reads[n]
                total.writes[n] += c.writes[n]
        total.k_tiling = ", ".join(sorted({c.k_tiling for c in parts}))
        if best is None or total.cycles < best.cycles:
            best_mode, best = mode, total
    notes = []
    w_sp = op.sparsity.weights
    if w_sp.kind != "dense" and best_mode.kind == "dense":
        why = "no sparse chain configured" if spec.sparse is None else "pattern not supported or no faster"
        notes.append(f"weights {w_sp.label}: runs dense on the DSP chains ({why})")
    elif best_mode.kind != "dense":
        notes.append(f"sparse chain mode {best_mode.label} ({best_mode.model})")
    if op.sparsity.activations.kind != "dense":
        notes.append("activation sparsity not exploited by DSP chains")
    p, q = spec.precision, op.precision
    if (q.activations, q.weights) != (p.activations, p.weights):
        notes.append(f"operands quantised to the datapath's {p.activations}x{p.weights} bits "
                     f"(trace: {q.activations}x{q.weights})")
    if spec.int8_packing and spec.segments > 1:
        notes.append(f"packed chain cut into {spec.segments} segments of <= {spec.packed_limit} (accumulator field)")
    if best.port_stall > 0.05 * best.compute and best.port_stall > best.dram_stall:
        notes.append("limited by on-chip (BRAM/URAM) read ports")
    if best.k_tiling != "full K":
        notes.append(f"on-chip buffers K-tiled ({best.k_tiling}): partial sums stay on chip across K tiles")
    if arch.energy.mac_pj is None:
        notes.append("energy.mac_pj not set: MAC energy uses the ASIC default, not the DSP slice figure")
    fill = "fill per GEMM" if spec.pipeline_fill == "per_gemm" else "fill overlapped"
    return OpCost(engine="dsp_chain", model=f"dsp_chain {spec.family} L={spec.chain_length} x{spec.n_chains} "
                  f"({best_mode.label}) fold-level analytic, {fill}",
                  compute_cycles=best.compute, stall_cycles=best.port_stall + best.dram_stall,
                  macs=best.macs, dense_macs=float(op.dense_macs), peak_macs_per_cycle=spec.peak_macs_per_cycle,
                  index_selects=best.index_selects, reads_bytes=best.reads, writes_bytes=best.writes,
                  extra_energy_pj={"device_static": best.cycles * static_pj_per_cycle}, notes=tuple(notes))


# ----------------------------------------------------------------------------- whole-trace bounds

def memory_bound(trace: Trace, arch: Arch, tokens: int | None = None) -> dict:
    """The memory-bound limit of one pass over `trace`: every GEMM weight byte (in the smallest
    stored format the chains could use for it; attention K/V excluded) crosses the off-chip link
    once, so no pass is faster than weight bytes / peak off-chip bandwidth.

    `tokens` defaults to the largest M among the GEMMs (1 for a batch-1 decode step). Returns
    weight and KV bytes, the peak and derated (x offchip_efficiency) bandwidth in bytes/s, the
    bound in seconds and tokens/s at peak bandwidth.
    """
    spec: ComputeSpec = arch.compute
    dram = arch.memory[arch.offchip_name]
    peak_bps = math.inf if dram.ideal else dram.bandwidth_bytes_per_cycle * arch.clock_hz
    weight_bytes = kv_bytes = 0.0
    m_max = 0
    for op in trace.ops:
        if op.is_vector:
            continue
        executions = op.executions
        if op.dims.b_operand == "kv":
            kv_bytes += op.dims.kv_elements * spec.precision.weights / 8.0 * executions
            continue
        bits = min(stored_weight_bits(spec, m) for m in weight_modes(spec, op))
        for g in op.gemm_shapes():
            weight_bytes += g.K * g.N * g.count * bits / 8.0 * executions
            m_max = max(m_max, g.M)
    tokens = tokens or max(1, m_max)
    bound_s = weight_bytes / peak_bps
    return {"tokens": tokens, "weight_bytes": weight_bytes, "kv_bytes": kv_bytes,
            "peak_bytes_per_s": peak_bps, "effective_bytes_per_s": peak_bps * spec.offchip_efficiency,
            "bound_s": bound_s, "bound_tokens_per_s": tokens / bound_s if bound_s > 0 else math.inf}


# ----------------------------------------------------------------------------- engine hooks

def energy_components(arch: Arch) -> tuple[str, ...]:
    """N:M chains count LUT-mux index selects; every op adds the device's static energy."""
    return ("index_select", "device_static")


def check_arch(arch: Arch) -> None:
    spec: ComputeSpec = arch.compute
    check_spec(spec)
    if spec.offchip_channels is not None:
        off = arch.offchip_name
        level = arch.memory[off]
        expected = fpga.offchip_bytes_per_cycle(spec.offchip_channels, spec.offchip_gb_per_s_per_channel,
                                                arch.clock_mhz)
        if not level.ideal and abs(level.bandwidth_bytes_per_cycle - expected) > 0.005 * expected:
            raise SparsimInputError(
                f"bandwidth_bytes_per_cycle {level.bandwidth_bytes_per_cycle:g} disagrees with compute's "
                f"{spec.offchip_channels} channels x {spec.offchip_gb_per_s_per_channel:g} GB/s at "
                f"{arch.clock_mhz:g} MHz = {expected:.1f} bytes/cycle",
                field=f"memory.{off}.bandwidth_bytes_per_cycle",
                hint=f"set it to {expected:.1f}, or drop offchip_channels / offchip_gb_per_s_per_channel")
    fpga.check_resources(arch)


def compute_area_mm2(arch: Arch, pe_mm2: float) -> float:
    """FPGA compute is counted in resources (see `simulator.fpga.resources_report`), not mm^2."""
    return 0.0


def resources_report(arch: Arch) -> dict:
    return fpga.resources_report(arch)


__all__ = ["ComputeSpec", "DeviceSpec", "SparseChainSpec", "check_spec", "estimate", "memory_bound", "check_arch",
           "compute_area_mm2", "resources_report", "offchip_bytes_per_cycle", "weight_modes", "stored_weight_bits"]
