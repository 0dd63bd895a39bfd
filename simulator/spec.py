"""Accelerator specs: pydantic models loaded from YAML, with dotted `--set` overrides.

An arch has a clock, one `compute` block whose `kind` selects an engine (each engine
module owns the model of its own compute block, so adding a kind touches no other
module), a memory hierarchy ordered from the innermost level to off-chip DRAM/HBM,
and energy/area tables whose defaults are cited in `simulator.energy` and
`simulator.area`. Every mistake becomes one `SparsimInputError` naming file, field and fix.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, ValidationError, model_validator

from simulator.engines.base import ComputeSpecBase
from simulator.inputs import StrictSpec
from simulator.errors import SparsimInputError, from_validation_error, nearest

OperandName = Literal["activations", "weights", "outputs"]
OFFCHIP_KINDS = ("dram", "hbm", "ddr")


class DatapathPrecision(StrictSpec):
    """Bits the compute datapath uses; workloads are assumed quantised to it on accelerators."""
    activations: int = Field(default=8, ge=1, le=64)
    weights: int = Field(default=8, ge=1, le=64)
    outputs: int = Field(default=8, ge=1, le=64)
    accumulator: int = Field(default=32, ge=1, le=64)


class MemoryLevel(StrictSpec):
    """One level of the hierarchy. Off-chip kinds (dram/hbm/ddr) are unlimited in capacity."""
    kind: Literal["rf", "sram", "bram", "uram", "dram", "hbm", "ddr"] = "sram"
    capacity_kib: float | None = Field(default=None, gt=0)
    bandwidth_bytes_per_cycle: float | None = Field(default=None, gt=0)
    ideal: bool = Field(default=False, description="unlimited bandwidth (SCALE-Sim CALC-mode style)")
    holds: list[OperandName] = Field(default_factory=lambda: ["activations", "weights", "outputs"], min_length=1)
    double_buffered: bool = True
    per_pe: bool = Field(default=False, description="a register file in every PE, read once per MAC for each operand "
                         "it holds (capacity per PE); not a tiling level (simulator.mapping)")
    access_word_bits: int | None = Field(default=None, gt=0, description="each access moves whole words of this many "
                                         "bits (a port's minimum width): narrow accesses of a searched mapping are "
                                         "charged energy per word touched (simulator.mapping.words); default per bit")
    read_energy_pj_per_bit: float | None = Field(default=None, ge=0)
    write_energy_pj_per_bit: float | None = Field(default=None, ge=0)
    leakage_mw: float | None = Field(default=None, ge=0)
    formats: dict[OperandName, Literal["dense", "bitmap", "csr", "csc", "coo", "rle", "nm"]] = Field(
        default_factory=dict, description="compressed storage format per operand at this level")

    @property
    def offchip(self) -> bool:
        return self.kind in OFFCHIP_KINDS

    @model_validator(mode="after")
    def _check(self):
        if not self.offchip and self.capacity_kib is None:
            raise ValueError(f"an on-chip '{self.kind}' level needs capacity_kib")
        if not self.ideal and self.bandwidth_bytes_per_cycle is None:
            raise ValueError("needs bandwidth_bytes_per_cycle, or ideal: true for unlimited bandwidth")
        if len(set(self.holds)) != len(self.holds):
            raise ValueError("holds lists an operand twice")
        return self

    @property
    def capacity_bytes(self) -> float:
        return float("inf") if self.capacity_kib is None else self.capacity_kib * 1024.0

    @property
    def bytes_per_cycle(self) -> float:
        return float("inf") if self.ideal else float(self.bandwidth_bytes_per_cycle)


class EnergyTable(StrictSpec):
    """Per-action energies (pJ). None means: take the cited default from `simulator.energy`."""
    technology_nm: float = Field(default=45, gt=0)
    mac_pj: dict[Annotated[int, Field(ge=1, le=64)], Annotated[float, Field(ge=0)]] | None = Field(
        default=None, description="MAC energy by operand bits")
    gated_mac_fraction: float = Field(default=0.032, ge=0, le=1,
                                      description="energy of a zero-gated MAC relative to a full one")
    index_select_pj: float | None = Field(default=None, ge=0,
                                          description="per kept value: sparse index decode + operand mux")
    compute_leakage_mw: float | None = Field(default=None, ge=0)


class AreaTable(StrictSpec):
    """Area figures (mm^2); None means the cited default from `simulator.area`."""
    pe_mm2: float | None = Field(default=None, gt=0)
    sram_mm2_per_kib: float | None = Field(default=None, gt=0)
    fixed_mm2: float = Field(default=0.0, ge=0, description="controller, NoC, I/O not modelled otherwise")


class Arch(StrictSpec):
    """A whole accelerator: compute engine + memory hierarchy + tables."""
    model_config = ConfigDict(arbitrary_types_allowed=True)
    name: str = "arch"
    description: str | None = None
    sources: list[str] = Field(default_factory=list, description="citations for the numbers in this spec")
    clock_mhz: float = Field(gt=0)
    # Any registered engine's ComputeSpec; `arch_from_dict` picks the class from `kind` through
    # the engine registry (one clear error for a missing or unknown kind) before this model sees it.
    compute: SerializeAsAny[ComputeSpecBase]
    memory: dict[str, MemoryLevel] = Field(min_length=1)
    energy: EnergyTable = EnergyTable()
    area: AreaTable = AreaTable()

    @model_validator(mode="after")
    def _check_memory(self):
        names = list(self.memory)
        off = [n for n in names if self.memory[n].offchip]
        if len(off) != 1 or off[0] != names[-1]:
            raise ValueError("memory needs exactly one off-chip level (kind dram/hbm/ddr), listed last "
                             "(levels go from the innermost to DRAM)")
        top = self.memory[names[-1]]
        missing = {"activations", "weights", "outputs"} - set(top.holds)
        if missing:
            raise ValueError(f"the off-chip level '{names[-1]}' must hold every operand; add {sorted(missing)}")
        return self

    @property
    def clock_hz(self) -> float:
        return self.clock_mhz * 1e6

    @property
    def offchip_name(self) -> str:
        return list(self.memory)[-1]

    def buffer_for(self, operand: str) -> str | None:
        """The innermost on-chip level that holds `operand` (None: streamed straight from DRAM)."""
        for name, level in self.memory.items():
            if not level.offchip and operand in level.holds:
                return name
        return None

    def to_dict(self) -> dict:
        data = self.model_dump(mode="json", exclude_none=True)
        data["compute"] = self.compute.model_dump(mode="json", exclude_none=True)
        return data


# ----------------------------------------------------------------------------- loading

def _fields_of(model: type[BaseModel]) -> list[str]:
    return list(model.model_fields)


def _model_at(path: list[str], compute_model: type[BaseModel] | None) -> type[BaseModel] | None:
    """The pydantic model class that a dotted path inside an arch points into (for key hints)."""
    model: Any = Arch
    i = 0
    while i < len(path):
        key = path[i]
        if model is Arch and key == "compute":
            model = compute_model
        elif model is Arch and key == "memory":
            model = MemoryLevel
            i += 1  # skip the level name
        elif model is not None and key in getattr(model, "model_fields", {}):
            ann = model.model_fields[key].annotation
            model = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
        else:
            return None
        i += 1
    return model


def _compute_model(kind: Any, path) -> type[ComputeSpecBase]:
    from simulator.engines import ENGINE_KINDS, load_engine
    if kind is None:
        raise SparsimInputError("missing 'kind'", path=path, field="compute.kind",
                                hint="one of: " + ", ".join(ENGINE_KINDS))
    if not isinstance(kind, str) or kind not in ENGINE_KINDS:
        if not isinstance(kind, str):
            raise SparsimInputError(f"compute kind must be a name, got {str(kind)[:60]}", path=path,
                                    field="compute.kind", hint="one of: " + ", ".join(ENGINE_KINDS))
        guess = nearest(kind, ENGINE_KINDS)
        raise SparsimInputError(f"unknown compute kind '{kind}'", path=path, field="compute.kind",
                                hint=(f"did you mean '{guess}'? " if guess else "") + "allowed: " + ", ".join(ENGINE_KINDS))
    return load_engine(kind).ComputeSpec


def arch_from_dict(data: Any, *, path: str | Path | None = None) -> Arch:
    """Validate a raw mapping into an Arch; every failure is one located SparsimInputError."""
    if not isinstance(data, dict):
        raise SparsimInputError("an arch spec must be a YAML mapping", path=path,
                                hint="see arch_configs/*.yaml for examples")
    compute_raw = data.get("compute")
    if not isinstance(compute_raw, dict):
        raise SparsimInputError("missing or malformed 'compute' block", path=path, field="compute",
                                hint="add compute: {kind: systolic, rows: ..., cols: ..., dataflow: os}")
    compute_model = _compute_model(compute_raw.get("kind"), path)

    def hints_for(exc: ValidationError, prefix: list[str]) -> dict[str, list[str]]:
        loc = [str(x) for x in exc.errors()[0]["loc"]]
        parent = prefix + loc[:-1]
        model = _model_at(parent, compute_model)
        return {".".join(loc[:-1]): _fields_of(model)} if model else {}

    try:
        compute = compute_model.model_validate(compute_raw)
    except ValidationError as exc:
        raise from_validation_error(exc, path=path, field_prefix="compute",
                                    allowed_keys={"": _fields_of(compute_model), **hints_for(exc, ["compute"])}) from None
    try:
        arch = Arch.model_validate({**data, "compute": compute})
    except ValidationError as exc:
        raise from_validation_error(exc, path=path, allowed_keys={"": _fields_of(Arch), **hints_for(exc, [])}) from None
    from simulator.engines import load_engine
    try:
        load_engine(compute.kind).check_arch(arch)
    except SparsimInputError as exc:
        raise exc.located(path) from None
    return arch


def read_yaml(path: str | Path, what: str = "file") -> Any:
    """A YAML file through the input layer (kind, size, UTF-8, duplicate keys, aliases, depth, finite)."""
    from simulator.inputs import read_yaml_file
    return read_yaml_file(path, what)


def parse_override(text: str) -> tuple[str, Any]:
    """'compute.rows=64' -> ('compute.rows', 64); the value is read as YAML so types come out right."""
    if "=" not in text:
        raise SparsimInputError(f"override '{text}' is not of the form dotted.path=value", field="--set",
                                hint="e.g. --set compute.rows=64")
    key, _, raw = text.partition("=")
    key = key.strip()
    from simulator.inputs import load_yaml
    try:
        value = load_yaml(raw, "--set") if raw.strip() else None
    except SparsimInputError:
        value = raw
    return key, value


def apply_overrides(data: dict, overrides: dict[str, Any] | None, *, path=None) -> dict:
    """A deep copy of `data` with dotted-path values set; unknown paths fail on validation."""
    if not overrides:
        return data
    out = copy.deepcopy(data)
    for dotted, value in overrides.items():
        keys = dotted.split(".")
        node = out
        for depth, key in enumerate(keys[:-1]):
            nxt = node.get(key) if isinstance(node, dict) else None
            if nxt is None:
                here = ".".join(keys[:depth + 1])
                choices = list(node) if isinstance(node, dict) else []
                guess = nearest(key, choices)
                raise SparsimInputError(f"override path '{dotted}' does not exist (no '{here}')", path=path,
                                        field=dotted, hint=f"did you mean '{guess}'?" if guess else
                                        "valid here: " + ", ".join(map(str, choices)))
            if not isinstance(nxt, dict):
                raise SparsimInputError(f"override path '{dotted}': '{key}' is a value, not a section",
                                        path=path, field=dotted)
            node = nxt
        node[keys[-1]] = value
    return out


def load_arch(path: str | Path, overrides: dict[str, Any] | list[str] | None = None) -> Arch:
    """Load an arch (YAML path, SCALE-Sim .cfg, or shipped name), apply `{'compute.rows': 64}` or
    `['compute.rows=64']` overrides, validate."""
    from simulator.shipped import not_found_hint, resolve
    path = resolve(path, "specs")
    if not path.exists():
        raise SparsimInputError("arch spec not found", path=path, hint=not_found_hint("specs", path))
    if path.suffix.lower() == ".cfg":
        from simulator.scalesim_cfg import cfg_to_dict
        data = cfg_to_dict(path)
    else:
        data = read_yaml(path, "arch spec")
    if isinstance(overrides, (list, tuple)):
        overrides = dict(parse_override(o) for o in overrides)
    if isinstance(data, dict):
        data = apply_overrides(data, overrides, path=path)
    return arch_from_dict(data, path=path)


# The compute-spec model for an engine kind, for other packages' schema checks (analysis sweeps).
compute_model = _compute_model
