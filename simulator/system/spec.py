"""The system spec: cores (each an arch), the shared DRAM, the NoC, the global buffer, the policy.

Read from YAML (`load_system`, `system_from_dict`) or built from one arch (`replicate`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator

from simulator.engines import load_engine
from simulator.inputs import StrictSpec
from simulator.errors import SparsimInputError, from_validation_error, nearest
from simulator.spec import Arch, load_arch, read_yaml


Policy = Literal["layer_by_layer", "pipeline", "expert_parallel", "graph"]


POLICIES = ("layer_by_layer", "pipeline", "expert_parallel", "graph")


MAX_MICROBATCHES = 4096  # SimPy processes per micro-batch / tile group: a limit stated in the error


class CoreGroupSpec(StrictSpec):
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


class DramSpec(StrictSpec):
    """The shared off-chip memory. Bandwidth defaults to the first core's off-chip bandwidth."""
    channels: int = Field(default=1, ge=1)
    bandwidth_gb_per_s: float | None = Field(default=None, gt=0, description="total over all channels, GB/s")
    ideal: bool = Field(default=False, description="unlimited shared bandwidth (only core ports limit)")


class NocSpec(StrictSpec):
    bandwidth_gb_per_s: float = Field(gt=0)


class GlobalBufferSpec(StrictSpec):
    """An on-chip SRAM shared by all cores, used to keep inter-op tensors off the DRAM."""
    capacity_kib: float = Field(gt=0)
    bandwidth_gb_per_s: float = Field(gt=0, description="total over all cores, GB/s")
    energy_pj_per_bit: float | None = Field(default=None, ge=0, description="per bit read or written "
                                            "(default: the cited SRAM figure for this capacity)")
    leakage_mw: float | None = Field(default=None, ge=0, description="default: the cited SRAM leakage per KiB")


class SystemSpec(StrictSpec):
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
        per_cycle = load_engine(self.arch.compute.kind).offchip_bytes_per_cycle(self.arch)
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
