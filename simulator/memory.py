"""Memory hierarchy model for a 2-D PE array: fold tiling, reuse, traffic per level, stalls.

The array computes a GEMM (M x K) @ (K x N) in folds (see `fold_grid`); folds run
outer-major over two loops, and one operand is stationary in the PEs. Per operand:

- its on-chip buffer is the outermost on-chip level that `holds` it (reuse is decided
  there); the innermost holding level feeds the array; levels between pass fills through;
- a tile that stays the same across the inner loop is fetched once per outer step if it
  fits in the buffer, else every fold; the other streamed operand is fetched once in total
  if the whole operand fits in its buffer (it stays resident), else again on every outer
  step. "Fits" means within the buffer's usable capacity (half when double-buffered)
  minus the tiles of the other operands sharing it;
- partial sums (WS/IS, several K folds) stay in the output buffer when an output tile of
  accumulator-width values fits, else they spill to DRAM and are read back each K fold.

Time: DRAM transfers are scheduled fold by fold (`kernels.schedule.fold_schedule`) with
or without double buffering; an on-chip level whose bandwidth cannot move its bytes within
that time (compute + DRAM stalls) adds the shortfall as stall cycles (aggregate over the op,
an approximation: the op takes the longer of the two, never their sum). Bytes per
element come from the operand's precision, sparsity and storage format per level
(`simulator.formats`). Every op starts and ends in DRAM (no inter-op fusion here).
Approximation: edge effects inside a fold and bank conflicts are not modelled.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from simulator.formats import bits_per_element
from simulator.kernels.schedule import fold_schedule
from simulator.spec import Arch
from simulator.trace import Op

OPERANDS = ("activations", "weights", "outputs")


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class FoldGrid:
    """Fold loops of one dataflow: the outer loop tiles `outer_dim`, the inner loop `inner_dim`."""
    outer_dim: str
    inner_dim: str
    outer_sizes: np.ndarray
    inner_sizes: np.ndarray

    @property
    def n_folds(self) -> int:
        return len(self.outer_sizes) * len(self.inner_sizes)


def _split(total: int, tile: int) -> np.ndarray:
    n = ceil_div(total, tile)
    sizes = np.full(n, tile, dtype=np.float64)
    sizes[-1] = total - tile * (n - 1)
    return sizes


def fold_grid(dataflow: str, M: int, N: int, K: int, rows: int, cols: int) -> FoldGrid:
    """OS: outer M over rows, inner N over cols. WS: outer N over cols, inner K over rows.
    IS: outer M over cols, inner K over rows (the SCALE-Sim mappings of REFERENCE.md)."""
    if dataflow == "os":
        return FoldGrid("M", "N", _split(M, rows), _split(N, cols))
    if dataflow == "ws":
        return FoldGrid("N", "K", _split(N, cols), _split(K, rows))
    return FoldGrid("M", "K", _split(M, cols), _split(K, rows))


@dataclass(frozen=True)
class MemoryCost:
    stall_cycles: float
    dram_stall_cycles: float
    onchip_stall_cycles: float
    reads_bytes: dict[str, float] = field(default_factory=dict)
    writes_bytes: dict[str, float] = field(default_factory=dict)
    notes: str = ""


def operand_bits(op: Op, arch: Arch, value_bits: dict[str, float]) -> dict[str, dict[str, float]]:
    """Stored bits per dense element of each operand at each level that holds it (format-aware)."""
    shapes = op.gemm_shapes()
    row_len = shapes[0].K if shapes else 1
    out: dict[str, dict[str, float]] = {}
    for operand in OPERANDS:
        sparsity = getattr(op.sparsity, operand)
        per_level = {}
        for name, level in arch.memory.items():
            if operand in level.holds:
                fmt = level.formats.get(operand, "dense")
                per_level[name] = bits_per_element(sparsity, fmt, value_bits[operand], row_len=row_len)
        out[operand] = per_level
    return out


def _holding_levels(arch: Arch, operand: str) -> list[str]:
    return [n for n, lv in arch.memory.items() if not lv.offchip and operand in lv.holds]


def array_memory_cost(arch: Arch, M: int, N: int, K: int, dataflow: str, rows: int, cols: int,
                      fold_compute_cycles: np.ndarray, bits: dict[str, dict[str, float]],
                      accumulator_bits: float) -> MemoryCost:
    """Traffic and stalls of one GEMM on a rows x cols array.

    `bits[operand][level]` are stored bits per *array element* (the engine folds sparsity
    and compression into them); `fold_compute_cycles` has one entry per fold in
    `fold_grid` order.
    """
    grid = fold_grid(dataflow, M, N, K, rows, cols)
    n_out, n_in = len(grid.outer_sizes), len(grid.inner_sizes)
    o = np.repeat(grid.outer_sizes, n_in)
    i = np.tile(grid.inner_sizes, n_out)
    first_inner = np.tile(np.arange(n_in) == 0, n_out).astype(np.float64)
    last_inner = np.tile(np.arange(n_in) == n_in - 1, n_out).astype(np.float64)
    first_outer = (np.arange(n_out * n_in) < n_in).astype(np.float64)
    dram = arch.offchip_name
    byte = {op_: {lv: b / 8.0 for lv, b in bits[op_].items()} for op_ in OPERANDS}

    def usable(level: str) -> float:
        lv = arch.memory[level]
        return lv.capacity_bytes * (0.5 if lv.double_buffered else 1.0)

    def buffer(operand: str) -> str | None:
        levels = _holding_levels(arch, operand)
        return levels[-1] if levels else None

    # Element counts of each operand's tile in one fold (its largest fold) and whole size.
    if dataflow == "os":
        tile = {"activations": grid.outer_sizes[0] * K, "weights": K * grid.inner_sizes[0],
                "outputs": grid.outer_sizes[0] * grid.inner_sizes[0]}
    elif dataflow == "ws":
        tile = {"activations": M * grid.inner_sizes[0], "weights": grid.inner_sizes[0] * grid.outer_sizes[0],
                "outputs": M * grid.outer_sizes[0]}
    else:
        tile = {"activations": grid.inner_sizes[0] * grid.outer_sizes[0], "weights": grid.inner_sizes[0] * N,
                "outputs": grid.outer_sizes[0] * N}
    whole = {"activations": M * K, "weights": K * N, "outputs": M * N}

    def tile_bytes(operand: str, level: str) -> float:
        b = byte[operand].get(level, byte[operand][dram])
        if operand == "outputs":
            b = max(b, accumulator_bits / 8.0) if (dataflow != "os" and n_in > 1) else b
        return tile[operand] * b

    def fits(operand: str, elements: float) -> bool:
        level = buffer(operand)
        if level is None:
            return False
        others = sum(tile_bytes(x, level) for x in OPERANDS if x != operand and level in byte[x])
        return elements * byte[operand][level] + others <= usable(level)

    # Bytes fetched from DRAM before each fold, per operand (in DRAM's format).
    loads = {}
    if dataflow == "os":
        a_tile = o * K
        loads["activations"] = a_tile * (first_inner if fits("activations", tile["activations"]) else 1.0)
        w_tile = K * i
        loads["weights"] = w_tile * (first_outer if fits("weights", whole["weights"]) else 1.0)
    elif dataflow == "ws":
        loads["weights"] = i * o
        loads["activations"] = M * i * (first_outer if fits("activations", whole["activations"]) else 1.0)
    else:
        loads["activations"] = i * o
        loads["weights"] = i * N * (first_outer if fits("weights", whole["weights"]) else 1.0)
    load_bytes = loads["activations"] * byte["activations"][dram] + loads["weights"] * byte["weights"][dram]

    # Outputs: OS writes each finished tile; WS/IS accumulate over the inner (K) loop.
    out_b = byte["outputs"][dram]
    acc_b = accumulator_bits / 8.0
    spill = False
    if dataflow == "os":
        store_bytes = o * i * out_b
        psum_dram_reads = 0.0
    else:
        out_tile = o * (M if dataflow == "ws" else N)
        psum_level = buffer("outputs")
        spill = n_in > 1 and (psum_level is None or
                              tile["outputs"] * acc_b + sum(tile_bytes(x, psum_level) for x in ("activations", "weights")
                                                            if psum_level in byte[x]) > usable(psum_level))
        if spill:
            store_bytes = out_tile * acc_b * (1 - last_inner) + out_tile * out_b * last_inner
            psum_reads = out_tile * acc_b * (1 - first_inner)
            load_bytes = load_bytes + psum_reads
            psum_dram_reads = float(psum_reads.sum())
        else:
            store_bytes = out_tile * out_b * last_inner
            psum_dram_reads = 0.0

    dram_level = arch.memory[dram]
    cycles_per_byte = 0.0 if dram_level.ideal else 1.0 / dram_level.bandwidth_bytes_per_cycle
    total, dram_stall = fold_schedule(np.ascontiguousarray(fold_compute_cycles, dtype=np.float64),
                                      np.ascontiguousarray(load_bytes, dtype=np.float64),
                                      np.ascontiguousarray(store_bytes, dtype=np.float64),
                                      cycles_per_byte, bool(dram_level.double_buffered))

    reads = {name: 0.0 for name in arch.memory}
    writes = {name: 0.0 for name in arch.memory}
    fetched = {"activations": float(loads["activations"].sum()), "weights": float(loads["weights"].sum())}
    for operand in ("activations", "weights"):
        reads[dram] += fetched[operand] * byte[operand][dram]
        for level in _holding_levels(arch, operand):
            writes[level] += fetched[operand] * byte[operand][level]
            reads[level] += fetched[operand] * byte[operand][level]  # passed inward or to the array (fill part)
    # Array-side operand reads from the innermost holding level (re-reads of resident tiles).
    if dataflow == "os":
        demand = {"activations": M * K * n_in, "weights": K * N * n_out}
    elif dataflow == "ws":
        demand = {"activations": M * K * n_out, "weights": K * N}
    else:
        demand = {"activations": M * K, "weights": K * N * n_out}
    for operand in ("activations", "weights"):
        levels = _holding_levels(arch, operand)
        if levels:
            # The fill already counted one read per fetched element; the rest are buffer re-reads.
            reads[levels[0]] += max(0.0, demand[operand] - fetched[operand]) * byte[operand][levels[0]]
    # Outputs and partial sums.
    writes[dram] += float(store_bytes.sum())
    reads[dram] += psum_dram_reads
    out_levels = _holding_levels(arch, "outputs")
    k_folds = n_in if dataflow != "os" else 1
    if out_levels:
        inner = out_levels[0]
        psum_traffic = M * N * (k_folds - 1) * acc_b
        writes[inner] += psum_traffic + M * N * byte["outputs"].get(inner, out_b)
        reads[inner] += psum_traffic + M * N * byte["outputs"].get(inner, out_b)

    # On-chip bandwidth: a level that cannot move its bytes within the time the op already takes
    # (compute plus DRAM stalls, during which it keeps transferring) stalls it for the rest.
    elapsed = float(np.sum(fold_compute_cycles)) + float(dram_stall)
    onchip_stall = 0.0
    for name, level in arch.memory.items():
        if level.offchip or level.ideal:
            continue
        need = (reads[name] + writes[name]) / level.bandwidth_bytes_per_cycle
        onchip_stall = max(onchip_stall, need - elapsed)
    notes = "partial sums spill to DRAM" if spill else ""
    return MemoryCost(stall_cycles=float(dram_stall) + onchip_stall, dram_stall_cycles=float(dram_stall),
                      onchip_stall_cycles=onchip_stall, reads_bytes=reads, writes_bytes=writes, notes=notes)


def streaming_memory_cost(arch: Arch, bytes_read: float, bytes_written: float,
                          compute_cycles: float) -> MemoryCost:
    """An op that streams its operands once through DRAM (vector ops, GEMV-like): the slower of
    compute and transfer bounds it (transfers overlap compute when double-buffered)."""
    dram = arch.memory[arch.offchip_name]
    transfer = 0.0 if dram.ideal else (bytes_read + bytes_written) / dram.bandwidth_bytes_per_cycle
    stall = max(0.0, transfer - compute_cycles) if dram.double_buffered else transfer
    reads = {name: 0.0 for name in arch.memory}
    writes = {name: 0.0 for name in arch.memory}
    reads[arch.offchip_name] = bytes_read
    writes[arch.offchip_name] = bytes_written
    return MemoryCost(stall_cycles=stall, dram_stall_cycles=stall, onchip_stall_cycles=0.0,
                      reads_bytes=reads, writes_bytes=writes)


__all__ = ["FoldGrid", "fold_grid", "MemoryCost", "array_memory_cost", "streaming_memory_cost",
           "operand_bits", "ceil_div"]
