"""The `compute:` block of the FPGA DSP-chain engine (`kind: dsp_chain`) and its cross-field checks.

The model it configures is described in `simulator.engines.dsp_chain`; the device budgets
(parts) are data files read by `simulator.fpga`.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, field_validator, model_validator

from simulator import fpga
from simulator.engines.base import ComputeSpecBase
from simulator.errors import SparsimInputError, nearest
from simulator.inputs import StrictSpec
from simulator.sparsity import NMPatternTexts, check_nm_texts, parse_pattern
from simulator.spec import DatapathPrecision


class DeviceSpec(StrictSpec):
    """The FPGA's budget: a known `part` (arch_configs/fpga_devices/, `simulator.fpga.DEVICES`) and/or explicit counts."""
    part: str | None = None
    dsp: int | None = Field(default=None, ge=0)
    bram36: int | None = Field(default=None, ge=0)
    uram: int | None = Field(default=None, ge=0)
    lut: int | None = Field(default=None, ge=0)
    ff: int | None = Field(default=None, ge=0)
    static_power_w: float | None = Field(default=None, ge=0)
    reserved: dict[Literal["dsp", "bram36", "uram", "lut", "ff"], int] = Field(
        default_factory=dict, description="taken by the platform shell / other logic")

    @field_validator("part")
    @classmethod
    def _known_part(cls, v):
        if v is not None and v not in fpga.DEVICES:
            guess = nearest(v, fpga.DEVICES)
            raise ValueError(f"unknown FPGA part '{v}'" + (f" (did you mean '{guess}'?)" if guess else "")
                             + "; known: " + ", ".join(fpga.DEVICES) + ", or give the resource counts")
        return v

    @model_validator(mode="after")
    def _complete(self):
        if self.part is None:
            missing = [k for k in ("dsp", "bram36", "uram", "lut", "ff") if getattr(self, k) is None]
            if missing:
                raise ValueError(f"without a known part, give the device's {', '.join(missing)} counts")
        return self

    def resolved(self) -> fpga.Device:
        """The part's figures with any explicit count overriding them (static power 0 if unknown)."""
        base = fpga.DEVICES.get(self.part) if self.part else None
        values = {}
        for key in ("dsp", "bram36", "uram", "lut", "ff", "static_power_w"):
            mine = getattr(self, key)
            values[key] = mine if mine is not None else (getattr(base, key) if base else 0.0)
        return fpga.Device(part=self.part or "custom", source=base.source if base else "user", **values)


ResidentOperand = Literal["activations", "weights", "outputs", "kv"]


class SparseChainSpec(StrictSpec):
    """Which weight sparsity the chains exploit (FlightLLM-style configurable sparse chain)."""
    nm_patterns: NMPatternTexts = Field(default_factory=list, description="supported N:M patterns, e.g. ['2:4', '1:4']")
    block: bool = Field(default=False, description="skip all-zero weight blocks")
    act_read_width: int | None = Field(default=None, ge=1,
                                       description="dense activations the buffer delivers per PE row per cycle "
                                                   "(default: 2 x slots)")
    reconfig_cycles: int = Field(default=0, ge=0, description="chain reconfiguration per sparse GEMM")
    overflow: Literal["split", "group_dense", "op_dense"] = Field(
        default="split", description="unstructured weights: a group with more than N nonzeros takes extra passes "
                                     "(split), runs that group dense (group_dense), or any overflow runs the op "
                                     "dense (op_dense) -- the N:M tensor core's policies")

    @field_validator("nm_patterns")
    @classmethod
    def _patterns(cls, v):
        return check_nm_texts(v)

    @property
    def patterns(self) -> list[tuple[int, int]]:
        return [parse_pattern(text, field="compute.sparse.nm_patterns") for text in self.nm_patterns]


class ComputeSpec(ComputeSpecBase):
    kind: Literal["dsp_chain"] = "dsp_chain"
    family: str = Field(default="dsp48e2", description="dsp48e2 (UltraScale+), dsp58 (Versal), dsp48e1 (7-series)")
    chain_length: int = Field(description="MAC positions (DSP slices) per cascade chain (L)")
    chains: int | None = Field(default=None, description="number of chains (or give dsp_budget)")
    dsp_budget: int | None = Field(default=None, ge=1, description="DSP slices to fill with chains")
    chains_per_pe: int = Field(default=1, ge=1, description="chains sharing one activation stream")
    mapping: Literal["auto", "n", "m"] = "auto"
    weight_stationary_rows: int = Field(default=1, ge=1, description="rows (tokens) streamed through a chain "
                                        "while its weights stay in the DSP input registers")
    int8_packing: bool = False
    pipeline_stages: int | None = Field(default=None, ge=0, description="default: the family's")
    pipeline_fill: Literal["per_gemm", "overlapped"] = Field(
        default="per_gemm", description="per_gemm: every GEMM pays the chain fill; overlapped: streaming dataflow "
                                        "(FINN-style), the fill hides behind the previous op and an op costs its "
                                        "issue cycles")
    precision: DatapathPrecision = DatapathPrecision()
    sparse: SparseChainSpec | None = None
    device: DeviceSpec
    onchip_resident: list[ResidentOperand] = Field(
        default_factory=list, description="operands kept on chip between ops when they fit; 'weights' and 'kv' "
                                          "must fit with all `repeat` instances (kv = the K/V operand of attention)")
    offchip_efficiency: float = Field(default=1.0, gt=0.0, le=1.0)
    offchip_channels: int | None = Field(default=None, ge=1, description="HBM pseudo-channels or DDR channels")
    offchip_gb_per_s_per_channel: float | None = Field(default=None, gt=0.0,
                                                       description="peak GB/s of one channel")
    vector_lanes: int | None = Field(default=None, ge=1)

    @field_validator("family")
    @classmethod
    def _family(cls, v):
        if v not in fpga.FAMILIES:
            guess = nearest(v, fpga.FAMILIES)
            raise ValueError(f"DSP family '{v}' does not exist ("
                             + (f"did you mean '{guess}'? " if guess else "") + "known: " + ", ".join(fpga.FAMILIES)
                             + ")")
        return v

    @field_validator("chain_length")
    @classmethod
    def _length(cls, v):
        if v < 1:
            raise ValueError(f"chain_length must be >= 1, got {v} (a chain needs at least one DSP slice)")
        return v

    @field_validator("chains")
    @classmethod
    def _chains(cls, v):
        if v is not None and v < 1:
            raise ValueError(f"chains must be >= 1, got {v} (or give dsp_budget instead)")
        return v

    @property
    def fam(self) -> fpga.DspFamily:
        return fpga.FAMILIES[self.family]

    @property
    def slices_per_mac(self) -> int:
        return fpga.slices_per_mac(self.fam, self.precision.activations, self.precision.weights)

    @property
    def n_chains(self) -> int:
        if self.chains is not None:
            return self.chains
        if self.dsp_budget is None:
            return 0
        return self.dsp_budget // (self.chain_length * self.slices_per_mac)

    @property
    def pack_n(self) -> int:
        return self.fam.pack_n if self.int8_packing else 1

    @property
    def pack_k(self) -> int:
        return self.fam.pack_k if self.int8_packing else 1

    @property
    def slots(self) -> int:
        """Dense K positions one chain reduces per issue."""
        return self.chain_length * self.pack_k

    @property
    def packed_limit(self) -> int | None:
        return fpga.packed_chain_limit(self.fam, self.precision.activations, self.precision.weights) \
            if self.int8_packing else None

    @property
    def segments(self) -> int:
        limit = self.packed_limit
        return 1 if limit is None else math.ceil(self.chain_length / limit)

    @property
    def fill_cycles(self) -> int:
        """Cycles from a chain's first issue to its first result: the cascade (the longest segment when
        packing cuts it: the segments run side by side) + the slice pipeline + fabric adder levels."""
        stages = self.pipeline_stages if self.pipeline_stages is not None else self.fam.pipeline_stages
        seg = self.segments
        cascade = math.ceil(self.chain_length / seg)
        extra = math.ceil(math.log2(seg)) if seg > 1 else 0
        return cascade + stages + extra

    @property
    def peak_macs_per_cycle(self) -> float:
        # L MAC positions per chain (a wide MAC spans slices_per_mac slices, see fpga.resources)
        return float(self.n_chains * self.chain_length * self.pack_n * self.pack_k)

    @property
    def datapath_precision(self) -> DatapathPrecision:
        return self.precision

    @property
    def board_tdp_w(self) -> float | None:
        """The card's maximum total power from its data sheet (`simulator.power.CARD_MAX_POWER_W`)."""
        from simulator.power import CARD_MAX_POWER_W
        limit = CARD_MAX_POWER_W.get(self.device.part)
        return limit[0] if limit else None

    @property
    def static_power_w(self) -> float:
        return self.device.resolved().static_power_w


def check_spec(spec: ComputeSpec) -> None:
    """Cross-field checks of a dsp_chain compute block: one located SparsimInputError each."""
    fam = spec.fam
    p = spec.precision
    if (spec.chains is None) == (spec.dsp_budget is None):
        raise SparsimInputError("give exactly one of chains or dsp_budget", field="compute.chains",
                                hint="chains: number of chains, or dsp_budget: DSP slices to fill with chains")
    if spec.n_chains < 1:
        raise SparsimInputError(f"dsp_budget {spec.dsp_budget} cannot hold one chain of {spec.chain_length} x "
                                f"{spec.slices_per_mac} slices", field="compute.dsp_budget",
                                hint=f"give at least {spec.chain_length * spec.slices_per_mac} or shorten chain_length")
    if spec.n_chains % spec.chains_per_pe:
        divisors = [d for d in range(1, min(spec.n_chains, 64) + 1) if spec.n_chains % d == 0]
        raise SparsimInputError(f"chains_per_pe={spec.chains_per_pe} does not divide the {spec.n_chains} chains",
                                field="compute.chains_per_pe", hint="use one of " + ", ".join(map(str, divisors)))
    if spec.int8_packing:
        if not fam.can_pack:
            packers = [f.name for f in fpga.FAMILIES.values() if f.can_pack]
            raise SparsimInputError(f"the {spec.family} cannot pack INT8 MACs: it has no shared-operand or "
                                    "dot-product mode", field="compute.int8_packing",
                                    hint=f"set int8_packing: false, or use family {' or '.join(packers)}")
        if p.activations > 8 or p.weights > 8:
            raise SparsimInputError(f"int8_packing needs activations and weights of at most 8 bits, but the "
                                    f"precision is {p.activations}x{p.weights}", field="compute.int8_packing",
                                    hint="set int8_packing: false, or compute.precision to 8 bits or fewer")
    if (spec.offchip_channels is None) != (spec.offchip_gb_per_s_per_channel is None):
        raise SparsimInputError("give offchip_channels and offchip_gb_per_s_per_channel together",
                                field="compute.offchip_channels",
                                hint="e.g. 32 HBM2 pseudo-channels x 14.375 GB/s on a U280")


__all__ = ["ComputeSpec", "DeviceSpec", "SparseChainSpec", "check_spec"]
