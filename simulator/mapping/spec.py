"""The `compute.mapping` block of an array engine's spec: search or fixed, objective, timing,
an optional explicit spatial unrolling and optional pinned tile sizes.

Dims use Timeloop's letters for a convolution: N batch, K output channels, C input channels
(per group), P/Q output height/width, R/S filter height/width, G groups. A GEMM (M x K) @ (K x N)
is the 1x1 convolution with P = M, K = N (output columns) and C = K (the reduction), the
convention ZigZag also uses for its GEMM layers.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DIMS = ("N", "K", "C", "P", "Q", "R", "S", "G")
TILED_DIMS = ("G", "N", "K", "C", "P", "Q")      # R and S stay whole in every tile

# The SCALE-Sim dataflows as spatial unrollings (rows, cols) of the im2col GEMM view.
PRESETS = {"os": (("N", "P", "Q"), ("K",)), "ws": (("C", "R", "S"), ("K",)), "is": (("C", "R", "S"), ("N", "P", "Q"))}


def _check_dims(value: list[str], what: str) -> list[str]:
    for dim in value:
        if dim not in DIMS:
            raise ValueError(f"unknown dim '{dim}' in {what}: use N K C P Q R S G "
                             "(a GEMM's M is P, its N is K, its reduction K is C)")
    if len(set(value)) != len(value):
        raise ValueError(f"{what} lists a dim twice")
    return value


class SpatialSpec(BaseModel):
    """Which dims the array's rows and columns unroll (a list is a flattened product, im2col-style)."""
    model_config = ConfigDict(extra="forbid", frozen=True)
    rows: list[str] = Field(min_length=1)
    cols: list[str] = Field(min_length=1)

    @field_validator("rows")
    @classmethod
    def _rows(cls, value):
        return _check_dims(value, "rows")

    @field_validator("cols")
    @classmethod
    def _cols(cls, value):
        return _check_dims(value, "cols")

    @model_validator(mode="after")
    def _disjoint(self):
        both = set(self.rows) & set(self.cols)
        if both:
            raise ValueError(f"dim {sorted(both)[0]} is unrolled on both rows and cols")
        return self


class MappingSpec(BaseModel):
    """How ops are mapped (docs/mapping.md). `fixed` keeps the fold-order memory model of
    `simulator.memory` exactly; `search` picks tile sizes and loop order per op."""
    model_config = ConfigDict(extra="forbid", frozen=True)
    mode: Literal["search", "fixed"] = "search"
    objective: Literal["latency", "energy", "edp"] = "latency"
    timing: Literal["scalesim", "pipelined"] = Field(
        default="scalesim", description="scalesim: fill and drain on every fold (SCALE-Sim v3, exact); "
        "pipelined: the next fold's fill overlaps the current drain (one fill+drain per op)")
    spatial: SpatialSpec | None = Field(default=None, description="explicit unrolling; default: the dataflow preset")
    tiles: dict[str, int] = Field(default_factory=dict, description="pinned on-chip tile sizes, e.g. {C: 64}")

    @field_validator("tiles")
    @classmethod
    def _tiles(cls, value: dict[str, int]):
        for dim, size in value.items():
            if dim not in TILED_DIMS:
                raise ValueError(f"unknown tiled dim '{dim}': use one of {' '.join(TILED_DIMS)} "
                                 "(R and S are never tiled)")
            if int(size) < 1:
                raise ValueError(f"tile of {dim} must be >= 1, got {size}")
        return value


def unrolling(dataflow: str, mapping: MappingSpec) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(rows dims, cols dims) of a spec: the explicit unrolling, else the dataflow's preset."""
    if mapping.spatial is not None:
        return tuple(mapping.spatial.rows), tuple(mapping.spatial.cols)
    return PRESETS[dataflow]
