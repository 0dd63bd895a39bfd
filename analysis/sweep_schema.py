"""The sweep spec as the user writes it (YAML schema), and reading it: ranges, workloads,
objectives, constraints (with their shorthands), strategy and executor fields. Resolution
(paths, files, metric names) is `analysis.sweep_resolve`; see `analysis.sweep_spec` for the format."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal, Union

import numpy as np
from pydantic import Field, ValidationError, field_validator, model_validator

from simulator.errors import SparsimInputError, from_validation_error
from simulator.inputs import StrictSpec



class RangeParam(StrictSpec):
    """A numeric range; see the module docstring for how each strategy reads it."""
    min: float
    max: float
    log: bool = False
    step: float | None = Field(default=None, gt=0)
    num: int | None = Field(default=None, ge=1)
    type: Literal["int", "float"] | None = None

    @model_validator(mode="before")
    @classmethod
    def _remember_types(cls, data):
        if isinstance(data, dict) and "type" not in data and "min" in data and "max" in data:
            ints = all(isinstance(data[k], int) and not isinstance(data[k], bool) for k in ("min", "max"))
            step = data.get("step")
            if ints and (step is None or isinstance(step, int) or data.get("log")):
                data = {**data, "type": "int"}
        return data

    @model_validator(mode="after")
    def _check(self):
        if self.min > self.max:
            raise ValueError(f"range has min {self.min:g} > max {self.max:g}")
        if self.log and self.min <= 0:
            raise ValueError(f"a log range needs min > 0, got {self.min:g}")
        if self.log and self.step is not None and self.step <= 1:
            raise ValueError(f"with log: true, step is the ratio between values and must be > 1, got {self.step:g}")
        if self.step is not None and self.num is not None:
            raise ValueError("give step or num, not both")
        return self

    @property
    def is_int(self) -> bool:
        return self.type == "int"

    @property
    def discrete(self) -> bool:
        return self.step is not None or self.num is not None

    def grid_count(self) -> int:
        """How many values `grid_values` builds (an upper bound before de-duplication), without building them."""
        lo, hi = self.min, self.max
        if self.num is not None:
            return self.num
        if self.log:
            return int(math.floor(math.log(hi / lo) / math.log(self.step or 2.0) + 1e-9)) + 1
        if self.step is not None:
            return int(math.floor((hi - lo) / self.step + 1e-9)) + 1
        if self.is_int and hi - lo <= 64:
            return int(hi) - int(lo) + 1
        raise ValueError("a grid needs 'step' or 'num' for this range (or log: true for x2 steps)")

    def grid_values(self) -> list:
        """The values a grid visits (ascending, unique)."""
        from simulator.bounds import MAX_GRID_POINTS
        lo, hi = self.min, self.max
        if self.grid_count() > MAX_GRID_POINTS:
            raise ValueError(f"this range has {self.grid_count():,} values, over the limit of {MAX_GRID_POINTS:,}; "
                             "use a larger step, num, or log: true")
        if self.num is not None:
            vals = np.geomspace(lo, hi, self.num) if self.log else np.linspace(lo, hi, self.num)
        elif self.log:
            ratio = self.step or 2.0
            n = int(math.floor(math.log(hi / lo) / math.log(ratio) + 1e-9)) + 1
            vals = lo * ratio ** np.arange(n)
        elif self.step is not None:
            n = int(math.floor((hi - lo) / self.step + 1e-9)) + 1
            vals = lo + self.step * np.arange(n)
        elif self.is_int and hi - lo <= 64:
            vals = np.arange(int(lo), int(hi) + 1)
        else:
            raise ValueError("a grid needs 'step' or 'num' for this range (or log: true for x2 steps)")
        return unique_in_order([self.cast(v) for v in vals])

    def cast(self, v: float):
        if self.is_int:
            return int(round(float(v)))
        v = float(v)
        return float(f"{v:.12g}")  # strip float noise so hashes and labels are stable


def unique_in_order(values: list) -> list:
    """The values without repeats, first occurrence first (values may be unhashable)."""
    out = []
    for v in values:
        if v not in out:
            out.append(v)
    return out


class WorkloadEntry(StrictSpec):
    path: str
    weight: float = Field(default=1.0, gt=0)
    name: str | None = None


class ObjectiveEntry(StrictSpec):
    metric: str
    direction: Literal["min", "max"] | None = None


class SweepSpec(StrictSpec):
    """The YAML sweep spec as written by the user (paths not yet resolved)."""
    name: str = "sweep"
    description: str | None = None
    base_arch: str
    workloads: list[WorkloadEntry] = Field(min_length=1)
    parameters: dict[str, Union[RangeParam, list, str, int, float, bool]] = Field(min_length=1)
    objectives: list[Union[str, ObjectiveEntry]] = Field(min_length=1)
    constraints: list[str] = Field(default_factory=list)
    strategy: Union[str, dict[str, int]] = "grid"
    seed: int = 0
    executor: str = "local"
    jobs: int | None = Field(default=None, ge=1)
    color_by: str | None = Field(default=None, description="parameter colouring the Pareto plot")

    @field_validator("workloads", mode="before")
    @classmethod
    def _workload_shorthand(cls, v):
        if isinstance(v, (str, dict)):
            v = [v]
        if isinstance(v, list):
            v = [{"path": w} if isinstance(w, str) else w for w in v]
        return v

    @field_validator("executor", mode="before")
    @classmethod
    def _executor_mapping(cls, v):
        # `executor: {dask: tcp://host:8786}` (YAML reads `dask: tcp://...` as a mapping)
        if isinstance(v, dict) and len(v) == 1 and "dask" in v:
            return f"dask://{v['dask']}"
        return v

    @field_validator("constraints", mode="before")
    @classmethod
    def _constraint_shorthand(cls, v):
        if isinstance(v, str):
            return [v]
        if isinstance(v, dict):  # {area_mm2: "<= 4"} or {area_mm2: {max: 4}}
            out = []
            for k, c in v.items():
                if isinstance(c, dict):
                    if "max" in c:
                        out.append(f"{k} <= {c['max']}")
                    if "min" in c:
                        out.append(f"{k} >= {c['min']}")
                else:
                    out.append(f"{k} {c}")
            return out
        return v


def load_sweep_spec(source: str | Path | dict | SweepSpec) -> tuple[SweepSpec, Path | None, dict]:
    """Read and schema-check a sweep spec; returns (spec, its path or None, the raw dict)."""
    spec_path: Path | None = None
    if isinstance(source, SweepSpec):
        return source, None, source.model_dump(mode="json")
    if isinstance(source, dict):
        data = source
    else:
        from simulator.spec import read_yaml
        spec_path = Path(source).resolve()
        data = read_yaml(spec_path, "sweep spec")
    if not isinstance(data, dict):
        raise SparsimInputError("a sweep spec must be a YAML mapping", path=spec_path,
                                hint="see analysis/sweeps/*.yaml")
    params = data.get("parameters")
    if isinstance(params, dict):  # ranges first, so a range's errors name its own fields
        checked = {}
        for k, v in params.items():
            if isinstance(v, dict):
                lo, hi = v.get("min"), v.get("max")
                nums = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (lo, hi))
                if nums and lo > hi:
                    raise SparsimInputError(f"range has min {lo:g} > max {hi:g}", path=spec_path,
                                            field=f"parameters.{k}",
                                            hint=f"swap them: {{min: {hi:g}, max: {lo:g}}}")
                if nums and v.get("log") is True and lo <= 0:
                    raise SparsimInputError(f"a log range needs min > 0, got {lo:g}", path=spec_path,
                                            field=f"parameters.{k}.min", hint="use log: false, or a positive min")
                try:
                    v = RangeParam.model_validate(v)
                except ValidationError as exc:
                    raise from_validation_error(exc, path=spec_path, field_prefix=f"parameters.{k}",
                                                allowed_keys={"": list(RangeParam.model_fields)}) from None
            checked[k] = v
    else:
        checked = params
    try:
        spec = SweepSpec.model_validate({**data, "parameters": checked} if params is not None else data)
    except ValidationError as exc:
        raise from_validation_error(exc, path=spec_path, allowed_keys={"": list(SweepSpec.model_fields)}) from None
    return spec, spec_path, data



__all__ = ["SweepSpec", "RangeParam", "WorkloadEntry", "ObjectiveEntry", "load_sweep_spec"]
