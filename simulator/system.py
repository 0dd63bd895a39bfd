"""System level: N cores, their DMA engines and one shared DRAM, simulated with SimPy.

What is modelled
- Cores: each runs its own arch (any engine kind; heterogeneous systems mix them). Per-op
  compute time and DRAM traffic come from the engine's `OpCost` for that core's arch
  (`engine_module(kind).estimate(op, arch)`), never re-derived here.
- Work is issued at tile-group granularity: an op (or the shard of it a core runs) is cut
  into `tile_groups` equal groups. A DMA process fetches group k+1 while the core computes
  group k when the core's off-chip level is double-buffered (two buffer slots), else
  fetch and compute alternate. The per-group compute time is solved from the analytic op
  time T and the uncontended per-group transfer time x, so that the pipeline
  x + (G-1)·max(c, x) + c (double-buffered) or G·(x + c) (single) equals T exactly: with
  one core and an uncontended memory the SimPy answer equals `simulator.simulate`.
- Shared DRAM: a fluid bandwidth server. Transfers in flight share the total bandwidth
  max-min fairly, each capped by its core's port (its arch's off-chip bandwidth), and the
  shares are re-divided whenever a transfer starts or ends, so contention stretches them:
  two cores streaming at full bandwidth each take 2x as long as one alone. Channels are
  taken as address-interleaved, so only their total bandwidth matters. A transfer holds
  one of its core's DMA engines; a job keeps one fetch in flight (double buffering), so
  extra engines only let a NoC hand-off overlap a fetch, never exceed the core's port.
- Optional NoC between cores: one shared link, used by layer pipelining to hand a
  stage's output to the next core.
- Optional global buffer: an on-chip SRAM shared by all cores (capacity, total bandwidth).
  An op's output is kept there instead of making a DRAM round trip when its only consumer
  runs next and the tensor fits (`simulator.graph.global_buffer_plan`: every op's kept
  inputs plus its kept output must fit together). The producer's shards write their part
  of the tensor to the buffer and the consumer's shards read what they need from it (a
  shard reads the share of the tensor its activation operand is of the whole op's), so
  those bytes leave the DRAM, the op's analytic memory stall shrinks by them over the
  core's port, and they move over the buffer's own fluid bandwidth server instead. A tile
  group's DRAM and buffer transfers overlap when the core has two or more DMA engines and
  follow each other with one. Buffer accesses cost the cited SRAM energy per bit for its
  capacity (`simulator.energy`), unless the spec gives one, plus its leakage. Layer
  pipelining does not use it (stage hand-offs go over the NoC).

Scheduling policies (`policy`)
- `layer_by_layer`: ops in dependency order; each op is split over all cores and all
  cores wait for the slowest before the next op (a barrier). The cut (`split_dims`: GEMM
  columns, rows or batch; conv filters/groups, output rows or batch; attention KV-head
  groups, batch or query rows; MoE columns; vector elements) is the one with the lowest
  estimate max(slowest share, all shares' DRAM bytes / shared bandwidth); heterogeneous
  cores also try shares in proportion to their speed on the op, and the whole op on the
  fastest core.
- `pipeline`: layers (ops sharing a `layer`; an op/layer repeated r times counts as r
  layers) are cut into contiguous stages balanced on the first core's analytic time,
  one stage per core; `microbatches` copies of the workload flow through the stages.
- `expert_parallel`: like layer_by_layer, except that a `moe_gemm` runs each expert
  whole on the core `placement` names (default: expert e on core e mod N), with the
  trace's token counts, so routing skew shows up as load imbalance.
- `graph`: list scheduling on the op DAG (`simulator.graph`): each op runs whole on the
  first free core once its producers finish, so parallel branches overlap.

Approximations: DRAM writes share the same bandwidth as reads; transfers are uniform
over an op's tile groups; no bank conflicts, row-buffer effects or channel imbalance;
partitions are picked from that small set of cuts by an uncontended estimate; no
finer, tile-aware load balancing.
Repeated ops (`repeat x (1 - skip_probability)` executions) run as one job with summed
time and bytes. The global buffer's capacity is checked per op in a barrier-separated
order; the graph policy may run branches whose kept tensors exceed it together (not
checked). Barrier-separated ops (layer_by_layer, expert_parallel) are simulated once per
distinct op and reused, which keeps runs to seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import simpy
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from simulator.engines import engine_module
from simulator.energy import op_energy_pj, static_power_mw
from simulator.inputs import StrictFields
from simulator.errors import SparsimInputError, from_validation_error, nearest
from simulator.simulate import locate_op_error
from simulator.spec import Arch, load_arch, read_yaml
from simulator.split import largest_remainder
from simulator.trace import Op, Trace

Policy = Literal["layer_by_layer", "pipeline", "expert_parallel", "graph"]
POLICIES = ("layer_by_layer", "pipeline", "expert_parallel", "graph")


# ----------------------------------------------------------------------------- the system spec (YAML)

MAX_MICROBATCHES = 4096  # SimPy processes per micro-batch / tile group: a limit stated in the error


class _Strict(StrictFields):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CoreGroupSpec(_Strict):
    """`count` identical cores running the arch in `arch` (a path relative to the system file)."""
    arch: str
    count: int = 1
    name: str | None = Field(default=None, description="core name prefix (default: the arch file's stem)")
    dma_engines: int = Field(default=1, ge=1, description="concurrent DMA transfers per core")
    overrides: dict[str, Any] = Field(default_factory=dict, description="dotted arch overrides, as --set")

    @field_validator("count")
    @classmethod
    def _count(cls, v):
        if v < 1:
            raise ValueError(f"core count must be at least 1 (got {v})")
        return v


class DramSpec(_Strict):
    """The shared off-chip memory. Bandwidth defaults to the first core's off-chip bandwidth."""
    channels: int = Field(default=1, ge=1)
    bandwidth_gb_per_s: float | None = Field(default=None, gt=0, description="total over all channels, GB/s")
    ideal: bool = Field(default=False, description="unlimited shared bandwidth (only core ports limit)")


class NocSpec(_Strict):
    bandwidth_gb_per_s: float = Field(gt=0)


class GlobalBufferSpec(_Strict):
    """An on-chip SRAM shared by all cores, used to keep inter-op tensors off the DRAM."""
    capacity_kib: float = Field(gt=0)
    bandwidth_gb_per_s: float = Field(gt=0, description="total over all cores, GB/s")
    energy_pj_per_bit: float | None = Field(default=None, ge=0, description="per bit read or written "
                                            "(default: the cited SRAM figure for this capacity)")
    leakage_mw: float | None = Field(default=None, ge=0, description="default: the cited SRAM leakage per KiB")


class SystemSpec(_Strict):
    name: str = "system"
    description: str | None = None
    sources: list[str] = Field(default_factory=list)
    cores: list[CoreGroupSpec] = Field(min_length=1)
    dram: DramSpec = DramSpec()
    noc: NocSpec | None = None
    global_buffer: GlobalBufferSpec | None = None
    policy: Policy = "layer_by_layer"
    placement: dict[int, str] = Field(default_factory=dict, description="MoE expert index -> core name")
    tile_groups: int = Field(default=8, ge=1, le=MAX_MICROBATCHES, description="tile groups an op is issued in")
    microbatches: int = Field(default=1, ge=1, le=MAX_MICROBATCHES, description="inputs streamed through a pipeline")


# ----------------------------------------------------------------------------- resolved system

@dataclass(frozen=True)
class Core:
    name: str
    arch: Arch
    dma_engines: int = 1

    @property
    def port_bytes_per_s(self) -> float:
        """What the core can pull from DRAM: the level's peak, or the engine's achievable rate
        where it derates the peak (FPGA `offchip_efficiency`, GPU `efficiency.hbm`)."""
        level = self.arch.memory[self.arch.offchip_name]
        if level.ideal:
            return math.inf
        achievable = getattr(engine_module(self.arch.compute.kind), "offchip_bytes_per_cycle", None)
        per_cycle = achievable(self.arch) if achievable else level.bandwidth_bytes_per_cycle
        return per_cycle * self.arch.clock_hz

    @property
    def double_buffered(self) -> bool:
        return self.arch.memory[self.arch.offchip_name].double_buffered


@dataclass(frozen=True)
class System:
    name: str
    cores: tuple[Core, ...]
    dram_bytes_per_s: float = math.inf
    dram_channels: int = 1
    noc_bytes_per_s: float | None = None
    policy: str = "layer_by_layer"
    placement: dict = field(default_factory=dict)
    tile_groups: int = 8
    microbatches: int = 1
    global_buffer_bytes: float | None = None          # capacity of the shared on-chip buffer (None: none)
    global_buffer_bytes_per_s: float | None = None
    global_buffer_pj_per_bit: float | None = None     # None: the cited SRAM default for its capacity
    global_buffer_leakage_mw: float | None = None

    def __post_init__(self):
        if len(self.cores) < 1:
            raise SparsimInputError("a system needs at least one core (got 0)", field="cores",
                                    hint="use --cores N with N >= 1")
        if self.policy not in POLICIES:
            raise SparsimInputError(f"unknown policy '{self.policy}'", field="policy",
                                    hint="allowed: " + ", ".join(POLICIES))
        names = [c.name for c in self.cores]
        if len(set(names)) != len(names):
            raise SparsimInputError("core names must be unique", field="cores",
                                    hint="give each core group its own name")
        if self.global_buffer_bytes is not None:
            if not self.global_buffer_bytes > 0:
                raise SparsimInputError(f"global buffer capacity must be > 0 (got {self.global_buffer_bytes})",
                                        field="global_buffer.capacity_kib", hint="e.g. capacity_kib: 2048")
            if not (self.global_buffer_bytes_per_s or 0) > 0:
                raise SparsimInputError("a global buffer needs a bandwidth", field="global_buffer.bandwidth_gb_per_s",
                                        hint="e.g. bandwidth_gb_per_s: 200")
        for expert, core in self.placement.items():
            if core not in names:
                guess = nearest(core, names)
                raise SparsimInputError(f"expert {expert} is placed on core '{core}', which does not exist",
                                        field=f"placement.{expert}",
                                        hint=(f"did you mean '{guess}'? " if guess else "") + "cores: " + ", ".join(names))

    def core_index(self, name: str) -> int:
        return [c.name for c in self.cores].index(name)

    @property
    def has_global_buffer(self) -> bool:
        return self.global_buffer_bytes is not None

    def global_buffer_energy_pj_per_bit(self) -> float:
        """The buffer's access energy: its own figure, else the cited SRAM default for its capacity
        at the first core's technology node."""
        if self.global_buffer_pj_per_bit is not None:
            return self.global_buffer_pj_per_bit
        from simulator.energy import level_energy_pj_per_bit
        from simulator.spec import MemoryLevel
        level = MemoryLevel(kind="sram", capacity_kib=self.global_buffer_bytes / 1024.0, ideal=True)
        return level_energy_pj_per_bit(self.cores[0].arch, level)[0]

    def global_buffer_static_mw(self) -> float:
        if not self.has_global_buffer:
            return 0.0
        if self.global_buffer_leakage_mw is not None:
            return self.global_buffer_leakage_mw
        from simulator.energy import SRAM_LEAKAGE_MW_PER_KIB
        return SRAM_LEAKAGE_MW_PER_KIB * self.global_buffer_bytes / 1024.0

    def with_(self, **changes) -> "System":
        from dataclasses import replace
        return replace(self, **changes)


def replicate(arch: Arch, count: int, *, policy: str = "layer_by_layer", dram_channels: int = 1,
              dram_bytes_per_s: float | None = None, dma_engines: int = 1, noc_bytes_per_s: float | None = None,
              placement: dict | None = None, tile_groups: int = 8, microbatches: int = 1,
              global_buffer_kib: float | None = None, global_buffer_bytes_per_s: float | None = None) -> System:
    """N copies of `arch` sharing one DRAM whose bandwidth defaults to the arch's own off-chip bandwidth
    (and, optionally, a global buffer of `global_buffer_kib` KiB)."""
    if not 1 <= microbatches <= MAX_MICROBATCHES:
        raise SparsimInputError(f"microbatches must be in 1..{MAX_MICROBATCHES} (got {microbatches})",
                                field="--microbatches")
    if count < 1:
        raise SparsimInputError(f"core count must be at least 1 (got {count})", field="--cores",
                                hint="use --cores N with N >= 1")
    from simulator.bounds import MAX_CORES, check_limit
    check_limit(count, MAX_CORES, "the core count", field="--cores", fix="use fewer cores")
    cores = tuple(Core(f"core{i}", arch, dma_engines) for i in range(count))
    bw = cores[0].port_bytes_per_s if dram_bytes_per_s is None else dram_bytes_per_s
    return System(name=f"{count}x {arch.name}", cores=cores, dram_bytes_per_s=bw, dram_channels=dram_channels,
                  noc_bytes_per_s=noc_bytes_per_s, policy=policy, placement=dict(placement or {}),
                  tile_groups=tile_groups, microbatches=microbatches,
                  global_buffer_bytes=None if global_buffer_kib is None else global_buffer_kib * 1024.0,
                  global_buffer_bytes_per_s=global_buffer_bytes_per_s)


def system_from_dict(data: Any, *, path: str | Path | None = None, base_dir: Path | None = None) -> System:
    if isinstance(data, dict) and "system" in data and len(data) == 1:
        data = data["system"]
    if not isinstance(data, dict):
        raise SparsimInputError("a system spec must be a YAML mapping with 'cores'", path=path,
                                hint="see arch_configs/systems/*.yaml")
    try:
        spec = SystemSpec.model_validate(data)
    except ValidationError as exc:
        allowed = {"": list(SystemSpec.model_fields), "dram": list(DramSpec.model_fields),
                   "noc": list(NocSpec.model_fields), "global_buffer": list(GlobalBufferSpec.model_fields)}
        groups = data.get("cores")
        for i in range(len(groups) if isinstance(groups, list) else 0):
            allowed[f"cores.[{i}]"] = list(CoreGroupSpec.model_fields)
        raise from_validation_error(exc, path=path, allowed_keys=allowed) from None
    base_dir = base_dir or (Path(path).parent if path else Path.cwd())
    cores: list[Core] = []
    from simulator.bounds import MAX_CORES, check_limit
    check_limit(sum(g.count for g in spec.cores), MAX_CORES, "the total core count", path=path, field="cores",
                fix="the system model runs one process per core; use fewer cores")
    for gi, group in enumerate(spec.cores):
        arch = _core_arch(group, gi, base_dir, path)
        arch_path = Path(group.arch)
        prefix = group.name or arch_path.stem
        for i in range(group.count):
            cores.append(Core(prefix if group.count == 1 else f"{prefix}{i}", arch, group.dma_engines))
    if spec.dram.ideal:
        bw = math.inf
    elif spec.dram.bandwidth_gb_per_s is not None:
        bw = spec.dram.bandwidth_gb_per_s * 1e9
    else:
        bw = cores[0].port_bytes_per_s
    try:
        return System(name=spec.name, cores=tuple(cores), dram_bytes_per_s=bw, dram_channels=spec.dram.channels,
                      noc_bytes_per_s=spec.noc.bandwidth_gb_per_s * 1e9 if spec.noc else None,
                      policy=spec.policy, placement=dict(spec.placement), tile_groups=spec.tile_groups,
                      microbatches=spec.microbatches, **_global_buffer_fields(spec.global_buffer))
    except SparsimInputError as exc:
        raise exc.located(path) from None


def _core_arch(group: CoreGroupSpec, gi: int, base_dir: Path, path) -> Arch:
    """The arch of one core group; a path or override mistake names the system file and the field."""
    from simulator.inputs import check_file
    arch_path = Path(group.arch)
    if not arch_path.is_absolute():
        arch_path = base_dir / arch_path
    if not arch_path.exists() and len(Path(group.arch).parts) == 1:
        from simulator.shipped import resolve
        arch_path = resolve(group.arch, "specs")  # a shipped spec by name
    if not group.arch.strip():
        raise SparsimInputError("arch is empty", path=path, field=f"cores[{gi}].arch", hint="give an arch YAML path")
    try:
        check_file(arch_path, "arch spec")
    except SparsimInputError as exc:
        raise SparsimInputError(f"'{group.arch}': {exc.message}", path=path,
                                field=f"cores[{gi}].arch", hint="paths are relative to the system file") from None
    try:
        return load_arch(arch_path, group.overrides or None)
    except SparsimInputError as exc:
        if exc.field and any(exc.field == k or exc.field.startswith(k + ".") or k.startswith(exc.field + ".")
                             for k in group.overrides):
            raise SparsimInputError(exc.message, path=path, field=f"cores[{gi}].overrides.{exc.field}",
                                    hint=exc.hint) from None
        raise


def _global_buffer_fields(gb: GlobalBufferSpec | None) -> dict:
    if gb is None:
        return {}
    return {"global_buffer_bytes": gb.capacity_kib * 1024.0, "global_buffer_bytes_per_s": gb.bandwidth_gb_per_s * 1e9,
            "global_buffer_pj_per_bit": gb.energy_pj_per_bit, "global_buffer_leakage_mw": gb.leakage_mw}


def load_system(path: str | Path) -> System:
    """Read a system YAML (cores by arch file and count, DMA engines, shared DRAM, NoC, policy)."""
    from simulator.shipped import resolve
    path = resolve(path, "systems")
    return system_from_dict(read_yaml(path, "system spec"), path=path)


# ----------------------------------------------------------------------------- jobs and results

@dataclass(frozen=True)
class Job:
    """One core's share of one op: its uncontended analytic time and the DRAM bytes it moves."""
    core: int
    op: str
    label: str
    time_s: float
    dram_bytes: float
    dynamic_energy_pj: float
    macs: float = 0.0
    gb_bytes: float = 0.0      # bytes moved to/from the global buffer instead of the DRAM


@dataclass
class Interval:
    core: str
    name: str
    op: str
    start_s: float
    end_s: float
    category: str = "op"


@dataclass
class SystemResult:
    """A simulated run: makespan, per-op start/finish, per-core intervals, energy."""
    system: str
    workload: str
    policy: str
    cores: list[str]
    makespan_s: float
    ops: list[dict]
    intervals: list[Interval]
    core_busy_s: dict[str, float]
    dram_bytes: float
    dram_busy_s: float
    dynamic_energy_pj: float
    static_energy_pj: float
    analytic_serial_s: float = 0.0   # one core, no contention, ops in sequence (core 0's arch)
    extra: dict = field(default_factory=dict)

    @property
    def latency_s(self) -> float:
        return self.makespan_s

    @property
    def energy_pj(self) -> float:
        return self.dynamic_energy_pj + self.static_energy_pj

    @property
    def dram_utilization(self) -> float:
        return self.dram_busy_s / self.makespan_s if self.makespan_s > 0 else 0.0

    def totals(self) -> dict:
        return {"system": self.system, "workload": self.workload, "policy": self.policy, "cores": len(self.cores),
                "latency_s": self.makespan_s, "energy_pj": self.energy_pj,
                "dynamic_energy_pj": self.dynamic_energy_pj, "static_energy_pj": self.static_energy_pj,
                "dram_bytes": self.dram_bytes, "dram_utilization": self.dram_utilization,
                "analytic_serial_s": self.analytic_serial_s,
                "core_utilization": {c: b / self.makespan_s if self.makespan_s else 0.0
                                     for c, b in self.core_busy_s.items()}, **self.extra}


# ----------------------------------------------------------------------------- costing

def _mac_bits(arch: Arch, op: Op) -> int:
    from simulator.simulate import _mac_bits as mac_bits
    return mac_bits(arch, op)


@dataclass(frozen=True)
class GlobalBufferUse:
    """How one op uses the global buffer: bytes of its kept input tensors (whole op, one
    execution), whether its output is kept there, and the buffer's energy per bit."""
    in_bytes: float = 0.0
    out: bool = False
    pj_per_bit: float = 0.0


def make_job(core_index: int, core: Core, op: Op, label: str | None = None, executions: float | None = None,
             cost=None, gb: GlobalBufferUse | None = None, whole: Op | None = None) -> Job:
    """Cost `op` on `core` with its engine (or take the given `OpCost`) and turn it into a job
    covering all its executions. With `gb`, the op's kept tensors move over the global buffer
    instead of the DRAM; `whole` is the op this one is a shard of (for its share of the inputs)."""
    from dataclasses import replace
    arch = core.arch
    if cost is None:
        try:
            cost = engine_module(arch.compute.kind).estimate(op, arch)
        except SparsimInputError as exc:
            raise locate_op_error(exc, op.name) from None
    n = op.repeat * (1.0 - op.skip_probability) if executions is None else executions
    dram = arch.offchip_name
    moved = 0.0
    if gb is not None and (gb.in_bytes > 0 or gb.out):
        from simulator.graph import output_bytes
        whole = whole or op
        full = whole.operand_elements()["activations"]
        share = op.operand_elements()["activations"] / full if full > 0 else 1.0
        r = min(share * gb.in_bytes, cost.reads_bytes.get(dram, 0.0))
        w = min(output_bytes(op, arch), cost.writes_bytes.get(dram, 0.0)) if gb.out else 0.0
        if r + w > 0:
            level = arch.memory[dram]
            reads, writes = dict(cost.reads_bytes), dict(cost.writes_bytes)
            reads[dram] = reads.get(dram, 0.0) - r
            writes[dram] = writes.get(dram, 0.0) - w
            # the bytes left the DRAM's critical transfer path: the stall shrinks by their transfer time
            stall = cost.stall_cycles if level.ideal else max(0.0, cost.stall_cycles - (r + w) / level.bytes_per_cycle)
            cost = replace(cost, stall_cycles=stall, reads_bytes=reads, writes_bytes=writes)
            moved = r + w
    nbytes = (cost.reads_bytes.get(dram, 0.0) + cost.writes_bytes.get(dram, 0.0)) * n
    energy = op_energy_pj(cost, arch, _mac_bits(arch, op), n, 0.0)
    dynamic = sum(v for k, v in energy.items() if k != "leakage")
    if moved:
        dynamic += moved * n * 8.0 * gb.pj_per_bit
    return Job(core_index, op.name, label or op.name, cost.cycles * n / arch.clock_hz, nbytes, dynamic, cost.macs * n,
               moved * n)


def _split(total: int, parts: int, weights: list[float] | None = None) -> list[int]:
    """`total` units over `parts`, evenly or in proportion to `weights` (largest remainders)."""
    return largest_remainder(total, weights, parts=parts)


def _conv_out_h(d) -> int:
    return d.out_h if d.out_h is not None else (d.H + 2 * d.pad - d.R) // d.stride + 1


def split_dims(op: Op, parts: int) -> list[str]:
    """The ways `op` can be cut over `parts` cores, the default first.

    gemm: output columns N (each core reads all the activations, 1/parts of the weights),
    output rows M (all the weights, 1/parts of the activations), independent GEMMs (batch).
    conv2d: filters K (or groups), output rows (each shard reads its input rows plus the
    filter's halo), batch. attention: KV-head groups, else batch, else query rows. moe_gemm
    (when not expert-parallel): N. Vector ops: elements."""
    d = op.dims
    if op.kind == "gemm":
        first = "N" if d.N >= parts or d.N >= d.M else "M"
        return [first, "M" if first == "N" else "N"] + (["batch"] if d.batch > 1 else [])
    if op.kind == "conv2d":
        return ["K", "rows"] + (["batch"] if d.N > 1 else [])
    if op.kind in ("attention_qk", "attention_pv"):
        return ["heads"]
    return ["default"]


def shard_slots(op: Op, parts: int, weights: list[float] | None = None, dim: str | None = None) -> list[Op | None]:
    """One piece of `op` per core (None: that core gets nothing), split evenly or by `weights`
    (a core's relative speed on this op) along `dim` (one of `split_dims`; default the first)."""
    if parts <= 1:
        return [op]
    d = op.dims
    kind = op.kind
    dim = dim or split_dims(op, parts)[0]

    def split(total: int) -> list[int]:
        return _split(total, parts, weights)

    sizes: list[dict] = []
    if kind == "gemm":
        sizes = [{dim: s} for s in split(getattr(d, dim))]
    elif kind == "moe_gemm":
        sizes = [{"N": s} for s in split(d.N)]
    elif kind == "conv2d":
        if dim == "rows":
            # e output rows need (e - 1) x stride + R padded input rows; the shard keeps the
            # op's padding, so interior shards read 2 x pad rows fewer than their real halo
            for e in split(_conv_out_h(d)):
                h = (e - 1) * d.stride + d.R - 2 * d.pad if e else 0
                if e and h < 1:
                    return [op] + [None] * (parts - 1)
                sizes.append({"H": h, **({"out_h": e} if d.out_h is not None else {})})
        elif dim == "batch":
            sizes = [{"N": s} for s in split(d.N)]
        elif d.groups > 1:
            per_c, per_k = d.C // d.groups, d.K // d.groups
            sizes = [{"groups": g, "C": per_c * g, "K": per_k * g} for g in split(d.groups)]
        else:
            sizes = [{"K": s} for s in split(d.K)]
    elif kind in ("attention_qk", "attention_pv"):
        kvh = d.n_kv_heads
        group = d.heads // kvh
        if kvh >= parts or (kvh > 1 and d.batch < parts):
            sizes = [{"kv_heads": s, "heads": s * group} for s in split(kvh)]
        elif d.batch > 1:
            sizes = [{"batch": s} for s in split(d.batch)]
        else:
            sizes = [{"q_len": s} for s in split(d.q_len)]
    elif op.is_vector:
        sizes = [{"elements": s} for s in split(d.elements)]
    if sum(1 for s in sizes if all(v for v in s.values())) <= 1:
        return [op] + [None] * (parts - 1)
    return [op.model_copy(update={"name": f"{op.name}[{i}]", "dims": d.model_copy(update=s)})
            if all(v for v in s.values()) else None for i, s in enumerate(sizes)]


def shard_op(op: Op, parts: int, weights: list[float] | None = None) -> list[Op]:
    """Split one op into up to `parts` independent pieces (fewer when it is too small)."""
    return [s for s in shard_slots(op, parts, weights) if s is not None]


def expert_ops(op: Op) -> list[tuple[int, Op]]:
    """One single-expert op per expert that received tokens: (expert index, op)."""
    d = op.dims
    return [(e, op.model_copy(update={"name": f"{op.name}.e{e}", "dims": d.model_copy(update={"tokens_per_expert": [t]})}))
            for e, t in enumerate(d.tokens_per_expert) if t > 0]


# ----------------------------------------------------------------------------- the SimPy machine

class _Flow:
    __slots__ = ("remaining", "total", "cap", "rate", "event")

    def __init__(self, nbytes: float, cap: float, event):
        self.remaining = self.total = nbytes
        self.cap = cap
        self.rate = 0.0
        self.event = event


class _SharedDram:
    """A fluid bandwidth server: active transfers share the bandwidth max-min fairly, each capped
    by its core's port; every arrival or completion re-divides it (processor sharing)."""

    def __init__(self, env: simpy.Environment, bytes_per_s: float):
        self.env = env
        self.bytes_per_s = bytes_per_s
        self.flows: list[_Flow] = []
        self.last_s = 0.0
        self.version = 0
        self.busy_s = 0.0

    def _advance(self) -> None:
        dt = self.env.now - self.last_s
        if dt > 0:
            used = 0.0
            for f in self.flows:
                f.remaining -= f.rate * dt
                used += f.rate
            self.busy_s += dt * used / self.bytes_per_s
        self.last_s = self.env.now

    def _reschedule(self) -> None:
        left = self.bytes_per_s
        flows = sorted(self.flows, key=lambda f: f.cap)
        for i, f in enumerate(flows):       # water-filling: slow ports take their cap, the rest share
            f.rate = min(f.cap, left / (len(flows) - i))
            left -= f.rate
        self.version += 1
        if flows:
            wait = min(max(f.remaining, 0.0) / f.rate for f in flows)
            self.env.process(self._wake(self.version, wait))

    def _wake(self, version: int, wait: float):
        yield self.env.timeout(wait)
        if version != self.version:
            return
        self._advance()
        nearest_done = min(self.flows, key=lambda f: f.remaining / f.rate)
        for f in list(self.flows):
            if f is nearest_done or f.remaining <= 1e-9 * f.total:
                self.flows.remove(f)
                f.event.succeed()
        self._reschedule()

    def transfer(self, nbytes: float, cap_bytes_per_s: float):
        self._advance()
        flow = _Flow(nbytes, cap_bytes_per_s, self.env.event())
        self.flows.append(flow)
        self._reschedule()
        yield flow.event


class _Machine:
    """Shared DRAM, per-core DMA engines and the NoC, plus the tile-group pipeline."""

    def __init__(self, system: System, env: simpy.Environment):
        self.system = system
        self.env = env
        self.dram = None if math.isinf(system.dram_bytes_per_s) else _SharedDram(env, system.dram_bytes_per_s)
        self.gb = _SharedDram(env, system.global_buffer_bytes_per_s) if system.has_global_buffer else None
        self.dma = [simpy.Resource(env, capacity=c.dma_engines) for c in system.cores]
        self.noc = simpy.Resource(env, capacity=1) if system.noc_bytes_per_s else None
        self.intervals: list[Interval] = []

    @property
    def dram_busy_s(self) -> float:
        return self.dram.busy_s if self.dram is not None else 0.0

    @property
    def gb_busy_s(self) -> float:
        return self.gb.busy_s if self.gb is not None else 0.0

    def gb_transfer(self, core: int, nbytes: float):
        """Move `nbytes` between the global buffer and `core` through one of its DMA engines."""
        if nbytes <= 0 or self.gb is None:
            return
        with self.dma[core].request() as req:
            yield req
            yield from self.gb.transfer(nbytes, math.inf)

    def group_transfer(self, core: int, dram_bytes: float, gb_bytes: float):
        """One tile group's DRAM and global-buffer traffic: concurrent on two DMA engines, else in turn."""
        if dram_bytes > 0 and gb_bytes > 0 and self.system.cores[core].dma_engines >= 2:
            yield self.env.process(self.transfer(core, dram_bytes)) & self.env.process(self.gb_transfer(core, gb_bytes))
        else:
            yield from self.transfer(core, dram_bytes)
            yield from self.gb_transfer(core, gb_bytes)

    def transfer(self, core: int, nbytes: float):
        """Move `nbytes` between the shared DRAM and `core` through one of its DMA engines."""
        if nbytes <= 0:
            return
        port = self.system.cores[core].port_bytes_per_s
        with self.dma[core].request() as req:
            yield req
            if self.dram is None:
                if not math.isinf(port):
                    yield self.env.timeout(nbytes / port)
            else:
                yield from self.dram.transfer(nbytes, port)

    def noc_transfer(self, core: int, nbytes: float):
        if self.noc is None or nbytes <= 0:
            return
        with self.dma[core].request() as dma, self.noc.request() as link:
            yield dma
            yield link
            yield self.env.timeout(nbytes / self.system.noc_bytes_per_s)

    def run_job(self, job: Job):
        """Tile-group pipeline of one job; its uncontended duration is exactly `job.time_s`."""
        env = self.env
        core = self.system.cores[job.core]
        start = env.now
        groups = self.system.tile_groups
        port = core.port_bytes_per_s
        moves_dram = job.dram_bytes > 0 and not (math.isinf(port) and math.isinf(self.system.dram_bytes_per_s))
        moves_gb = job.gb_bytes > 0 and self.gb is not None
        if not (moves_dram or moves_gb):
            yield env.timeout(job.time_s)
        else:
            per_group = job.dram_bytes / groups if moves_dram else 0.0
            gb_group = job.gb_bytes / groups if moves_gb else 0.0
            x_dram = 0.0 if math.isinf(port) else per_group / port   # uncontended transfer of one group
            x_gb = gb_group / self.system.global_buffer_bytes_per_s if moves_gb else 0.0
            x = max(x_dram, x_gb) if core.dma_engines >= 2 else x_dram + x_gb
            T = job.time_s
            if core.double_buffered:
                # x + (G-1) max(c, x) + c = T, solved for the per-group compute c >= 0
                c = (T - x) / groups if T >= (groups + 1) * x else max(0.0, T - groups * x)
                fetched = [env.event() for _ in range(groups)]
                computed = [env.event() for _ in range(groups)]

                def dma():
                    for k in range(groups):
                        if k >= 2:
                            yield computed[k - 2]      # two buffer slots: wait for the slot to free up
                        yield from self.group_transfer(job.core, per_group, gb_group)
                        fetched[k].succeed()

                env.process(dma())
                for k in range(groups):
                    yield fetched[k]
                    yield env.timeout(c)
                    computed[k].succeed()
            else:
                c = max(0.0, T / groups - x)
                for _ in range(groups):
                    yield from self.group_transfer(job.core, per_group, gb_group)
                    yield env.timeout(c)
        self.intervals.append(Interval(core.name, job.label, job.op, start, env.now))


def _run_parallel(system: System, jobs: list[Job]) -> tuple[float, list[Interval], float, float]:
    """Run barrier-free jobs from t=0 (jobs on one core in sequence);
    return (makespan, intervals, DRAM busy, global-buffer busy)."""
    env = simpy.Environment()
    machine = _Machine(system, env)
    per_core: dict[int, list[Job]] = {}
    for job in jobs:
        per_core.setdefault(job.core, []).append(job)

    def core_proc(js):
        for job in js:
            yield from machine.run_job(job)

    for js in per_core.values():
        env.process(core_proc(js))
    env.run()
    return env.now, machine.intervals, machine.dram_busy_s, machine.gb_busy_s


# ----------------------------------------------------------------------------- policies

def _op_key(op: Op) -> str:
    return op.model_dump_json(exclude={"name", "layer", "depends_on"})


def _jobs_for_op(system: System, op: Op, fused: dict | None = None,
                 gb: GlobalBufferUse | None = None) -> list[Job]:
    cores = system.cores
    n = len(cores)
    if fused and op.name in fused:
        return [make_job(0, cores[0], op, cost=fused[op.name], gb=gb)]
    if system.policy == "expert_parallel" and op.kind == "moe_gemm":
        experts = len(op.dims.tokens_per_expert)
        for e in system.placement:
            if not 0 <= e < experts:
                raise SparsimInputError(f"placement names expert {e}, but op '{op.name}' has {experts} experts",
                                        field=f"placement.{e}", hint=f"experts are numbered 0..{experts - 1}")
        jobs = []
        for e, sub in expert_ops(op):
            core = system.core_index(system.placement[e]) if e in system.placement else e % n
            jobs.append(make_job(core, cores[core], sub, label=sub.name, gb=gb, whole=op))
        return jobs
    def estimate(jobs: list[Job]) -> float:
        # the slowest share alone, or all shares' DRAM bytes through the shared DRAM
        return max(max(j.time_s for j in jobs), sum(j.dram_bytes for j in jobs) / system.dram_bytes_per_s)

    def partition(weights, dim) -> list[Job]:
        return [make_job(i, cores[i], s, label=s.name, gb=gb, whole=op)
                for i, s in enumerate(shard_slots(op, n, weights, dim)) if s is not None]

    dims = split_dims(op, n)
    if len({id(c.arch) for c in cores}) == 1:
        # Identical cores: the cut along the dimension whose estimate is lowest (ties: the default
        # order), so activation-heavy layers split by rows and weight-heavy ones by columns.
        candidates = [partition(None, dim) for dim in dims]
        return min(candidates, key=estimate)
    # Heterogeneous cores: of the partitions (shares proportional to each core's speed on the
    # whole op, or even, along each dimension, and the whole op on the fastest core) take the
    # one whose estimate is lowest; tile quantisation can make a proportional share no faster
    # on a big core.
    alone = [make_job(i, c, op, gb=gb) for i, c in enumerate(cores)]
    fastest = min(range(n), key=lambda i: alone[i].time_s)
    candidates = [[alone[fastest]]]
    speed = [1.0 / j.time_s if j.time_s > 0 else 1.0 for j in alone]
    for dim in dims:
        for weights in (speed, None):
            candidates.append(partition(weights, dim))
    return min(candidates, key=lambda jobs: (estimate(jobs), len(jobs)))


def _barrier_schedule(system: System, ordered: list[Op], fused: dict | None = None, gb: dict | None = None):
    cache: dict[str, tuple] = {}
    now = 0.0
    rows, intervals = [], []
    dram_busy = gb_busy = dynamic = nbytes = gb_bytes = 0.0
    gb = gb or {}
    for op in ordered:
        key = op.name if (fused and op.name in fused) or op.name in gb else _op_key(op)
        if key not in cache:
            jobs = _jobs_for_op(system, op, fused, gb.get(op.name))
            span, ivs, busy, busy_gb = _run_parallel(system, jobs)
            cache[key] = (op.name, jobs, span, ivs, busy, busy_gb)
        first_name, jobs, span, ivs, busy, busy_gb = cache[key]
        for iv in ivs:
            label = op.name + iv.name[len(first_name):] if iv.name.startswith(first_name) else iv.name
            intervals.append(Interval(iv.core, label, op.name, now + iv.start_s, now + iv.end_s))
        core_time = {}
        for iv in ivs:
            core_time[iv.core] = core_time.get(iv.core, 0.0) + iv.end_s - iv.start_s
        rows.append({"op": op.name, "kind": op.kind, "layer": op.layer, "start_s": now, "finish_s": now + span,
                     "latency_s": span, "cores_used": len(core_time),
                     "imbalance": (max(core_time.values()) / (sum(core_time.values()) / len(system.cores))
                                   if core_time and sum(core_time.values()) > 0 else 1.0),
                     "dram_bytes": sum(j.dram_bytes for j in jobs),
                     "global_buffer_bytes": sum(j.gb_bytes for j in jobs),
                     "energy_pj": sum(j.dynamic_energy_pj for j in jobs)})
        now += span
        dram_busy += busy
        gb_busy += busy_gb
        dynamic += sum(j.dynamic_energy_pj for j in jobs)
        nbytes += sum(j.dram_bytes for j in jobs)
        gb_bytes += sum(j.gb_bytes for j in jobs)
    return now, rows, intervals, dram_busy, dynamic, nbytes, gb_busy, gb_bytes


def _units(ordered: list[Op]) -> list[list[Op]]:
    """Layers for pipelining: consecutive ops sharing `layer`; a layer repeated r times is r layers."""
    groups: list[list[Op]] = []
    for op in ordered:
        if groups and op.layer is not None and groups[-1][-1].layer == op.layer:
            groups[-1].append(op)
        else:
            groups.append([op])
    units: list[list[Op]] = []
    for g in groups:
        reps = {op.repeat for op in g}
        if len(reps) == 1 and (r := reps.pop()) > 1:
            one = [op.model_copy(update={"repeat": 1}) for op in g]
            for i in range(r):
                units.append([o.model_copy(update={"name": f"{o.name}#{i}"}) for o in one])
        else:
            units.append(g)
    return units


def _balanced_partition(weights: list[float], parts: int) -> list[int]:
    """Contiguous split of `weights` into at most `parts` pieces minimising the largest sum (DP).
    Returns the start index of each piece."""
    n = len(weights)
    parts = min(parts, n)
    prefix = [0.0]
    for w in weights:
        prefix.append(prefix[-1] + w)
    INF = math.inf
    best = [[INF] * (n + 1) for _ in range(parts + 1)]
    cut = [[0] * (n + 1) for _ in range(parts + 1)]
    best[0][0] = 0.0
    for p in range(1, parts + 1):
        for j in range(1, n + 1):
            for i in range(p - 1, j):
                v = max(best[p - 1][i], prefix[j] - prefix[i])
                if v < best[p][j]:
                    best[p][j], cut[p][j] = v, i
    starts, j = [], n
    for p in range(parts, 0, -1):
        i = cut[p][j]
        starts.append(i)
        j = i
    return sorted(starts)


def _pipeline_schedule(system: System, ordered: list[Op]):
    units = _units(ordered)
    first = system.cores[0]
    weights = [sum(make_job(0, first, op).time_s for op in unit) for unit in units]
    starts = _balanced_partition(weights, len(system.cores)) + [len(units)]
    stages = [[op for unit in units[starts[s]:starts[s + 1]] for op in unit] for s in range(len(starts) - 1)]
    stage_jobs = [[make_job(s, system.cores[s], op) for op in ops] for s, ops in enumerate(stages)]
    env = simpy.Environment()
    machine = _Machine(system, env)
    m = system.microbatches
    done = [[env.event() for _ in range(m)] for _ in stages]
    finish_mb = [0.0] * m

    def handoff_bytes(ops: list[Op], arch: Arch) -> float:
        last = ops[-1]
        bits = getattr(getattr(arch.compute, "precision", None), "outputs", last.precision.outputs)
        return last.operand_elements()["outputs"] * bits / 8.0

    def stage_proc(s: int):
        for j in range(m):
            if s > 0:
                yield done[s - 1][j]
                start = env.now
                yield from machine.noc_transfer(s, handoff_bytes(stages[s - 1], system.cores[s - 1].arch))
                if env.now > start:
                    machine.intervals.append(Interval(system.cores[s].name, f"recv mb{j}", "noc", start, env.now, "noc"))
            for job in stage_jobs[s]:
                yield from machine.run_job(Job(job.core, job.op, f"{job.label} mb{j}", job.time_s, job.dram_bytes,
                                               job.dynamic_energy_pj, job.macs))
            done[s][j].succeed()
            if s == len(stages) - 1:
                finish_mb[j] = env.now

    for s in range(len(stages)):
        env.process(stage_proc(s))
    env.run()
    rows = [{"stage": s, "core": system.cores[s].name, "ops": len(ops), "first_op": ops[0].name, "last_op": ops[-1].name,
             "stage_time_s": sum(j.time_s for j in stage_jobs[s])} for s, ops in enumerate(stages)]
    all_jobs = [j for js in stage_jobs for j in js]
    extra = {"stages": len(stages), "microbatches": m, "first_result_s": finish_mb[0],
             "steady_interval_s": (finish_mb[-1] - finish_mb[0]) / (m - 1) if m > 1 else finish_mb[0]}
    return (env.now, rows, machine.intervals, machine.dram_busy_s, m * sum(j.dynamic_energy_pj for j in all_jobs),
            m * sum(j.dram_bytes for j in all_jobs), extra)


def _graph_schedule(system: System, trace: Trace, graph, fused: dict | None = None, gb: dict | None = None):
    env = simpy.Environment()
    machine = _Machine(system, env)
    free = simpy.Store(env)
    for i in range(len(system.cores)):
        free.put(i)
    done = {name: env.event() for name in graph.nodes}
    rows: dict[str, dict] = {}
    totals = {"energy": 0.0, "bytes": 0.0, "gb_bytes": 0.0}
    gb = gb or {}

    def op_proc(name: str):
        preds = list(graph.predecessors(name))
        if preds:
            yield env.all_of([done[p] for p in preds])
        ready = env.now
        core = yield free.get()
        op = graph.nodes[name]["op"]
        job = make_job(core, system.cores[core], op, cost=(fused or {}).get(name), gb=gb.get(name))
        start = env.now
        yield from machine.run_job(job)
        totals["energy"] += job.dynamic_energy_pj
        totals["bytes"] += job.dram_bytes
        totals["gb_bytes"] += job.gb_bytes
        rows[name] = {"op": name, "kind": op.kind, "layer": op.layer, "core": system.cores[core].name,
                      "ready_s": ready, "start_s": start, "finish_s": env.now, "latency_s": env.now - start,
                      "dram_bytes": job.dram_bytes, "global_buffer_bytes": job.gb_bytes,
                      "energy_pj": job.dynamic_energy_pj}
        free.put(core)
        done[name].succeed()

    for op in trace.ops:
        env.process(op_proc(op.name))
    env.run()
    ordered = [rows[op.name] for op in trace.ops]
    return (env.now, ordered, machine.intervals, machine.dram_busy_s, totals["energy"], totals["bytes"],
            machine.gb_busy_s, totals["gb_bytes"])


def simulate_system(trace: Trace, system: System, *, policy: str | None = None, fusion: bool = False) -> SystemResult:
    """Run `trace` on `system` under its policy (or `policy`), returning makespan, timeline and energy.

    `fusion` keeps fusable outputs on chip (`simulator.graph.fusion_plan`); it applies on a
    one-core system, where producer and consumer share the core's buffers (split over
    several cores, a consumer needs every core's part of the tensor). A system with a global
    buffer keeps the tensors that fit there (`simulator.graph.global_buffer_plan`) under the
    layer_by_layer, expert_parallel and graph policies, with or without `fusion`.
    """
    from simulator.graph import build_graph, fused_costs, global_buffer_plan, output_bytes, topological_ops
    if policy is not None and policy != system.policy:
        system = system.with_(policy=policy)
    graph = build_graph(trace)
    ordered = topological_ops(graph)
    extra: dict = {}
    fused = None
    if fusion and len(system.cores) == 1 and system.policy != "pipeline":
        arch = system.cores[0].arch
        estimate = engine_module(arch.compute.kind).estimate
        costs, edges, saved = fused_costs(trace, arch, {op.name: estimate(op, arch) for op in trace.ops}, graph)
        fused = {name: costs[name] for name in costs}
        extra = {"fused_edges": len(edges), "fusion_saved_dram_bytes": saved}
    gb_use: dict[str, GlobalBufferUse] = {}
    if system.has_global_buffer and system.policy != "pipeline":
        arch0 = system.cores[0].arch
        local = set(edges) if fused is not None else set()
        plan = global_buffer_plan(graph, system.global_buffer_bytes, lambda op: output_bytes(op, arch0), exclude=local)
        pj = system.global_buffer_energy_pj_per_bit()
        ins: dict[str, float] = {}
        for (u, v), nbytes in plan.items():
            ins[v] = ins.get(v, 0.0) + nbytes
        for name in {u for u, _ in plan} | set(ins):
            gb_use[name] = GlobalBufferUse(in_bytes=ins.get(name, 0.0), out=any(u == name for u, _ in plan),
                                           pj_per_bit=pj)
        extra["global_buffer_edges"] = len(plan)
    gb_busy = gb_bytes = 0.0
    if system.policy in ("layer_by_layer", "expert_parallel"):
        span, rows, intervals, busy, dynamic, nbytes, gb_busy, gb_bytes = _barrier_schedule(system, ordered, fused,
                                                                                          gb_use)
    elif system.policy == "pipeline":
        span, rows, intervals, busy, dynamic, nbytes, extra = _pipeline_schedule(system, ordered)
    else:
        span, rows, intervals, busy, dynamic, nbytes, gb_busy, gb_bytes = _graph_schedule(system, trace, graph, fused,
                                                                                        gb_use)
    if system.has_global_buffer:
        extra["global_buffer_bytes"] = gb_bytes
        extra["global_buffer_utilization"] = gb_busy / span if span > 0 else 0.0
    core_busy = {c.name: 0.0 for c in system.cores}
    for iv in intervals:
        if iv.category == "op":
            core_busy[iv.core] += iv.end_s - iv.start_s
    static = (sum(static_power_mw(c.arch) for c in system.cores) + system.global_buffer_static_mw()) * 1e-3 * span * 1e12
    first = system.cores[0]
    serial = sum(make_job(0, first, op).time_s for op in ordered)
    return SystemResult(system=system.name, workload=trace.name, policy=system.policy,
                        cores=[c.name for c in system.cores], makespan_s=span, ops=rows, intervals=intervals,
                        core_busy_s=core_busy, dram_bytes=nbytes, dram_busy_s=busy, dynamic_energy_pj=dynamic,
                        static_energy_pj=static, analytic_serial_s=serial, extra=extra)


__all__ = ["SystemSpec", "CoreGroupSpec", "DramSpec", "NocSpec", "Core", "System", "replicate", "load_system",
           "system_from_dict", "simulate_system", "SystemResult", "Interval", "Job", "make_job", "shard_op",
           "expert_ops", "split_dims", "POLICIES", "GlobalBufferSpec", "GlobalBufferUse"]
