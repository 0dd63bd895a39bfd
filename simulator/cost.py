"""What an engine returns for one op: cycles split by cause, action counts, traffic per level.

Energy is not computed by engines; `simulator.energy` turns these counts into picojoules
with the arch's tables, so every engine is costed by the same rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class OpCost:
    """Cost of one execution of an op (not multiplied by `repeat`)."""
    engine: str
    model: str                      # which approximation produced the numbers, for the result's `model` column
    compute_cycles: float           # stall-free cycles, pipeline fill/drain included
    stall_cycles: float             # cycles waiting on memory bandwidth
    macs: float                     # multiply-accumulates actually performed (after skipping)
    dense_macs: float               # MACs of the dense op
    peak_macs_per_cycle: float      # the engine's peak, for utilisation
    gated_macs: float = 0.0         # MAC slots issued on a zero and clock-gated (cheap, still take cycles)
    index_selects: float = 0.0      # sparse index decode / operand-mux actions (one per kept value used)
    reads_bytes: dict[str, float] = field(default_factory=dict)   # per memory level
    writes_bytes: dict[str, float] = field(default_factory=dict)
    extra_energy_pj: dict[str, float] = field(default_factory=dict)  # engine-specific components, already in pJ
    notes: tuple[str, ...] = ()     # what the user must know (sparsity not exploited, ...), one string each
    mapping: str = ""               # the chosen mapping (tile sizes | loop order), engines with a mapping search

    @property
    def note_text(self) -> str:
        """The notes as one '; '-separated line (the result table's `notes` column)."""
        return "; ".join(self.notes)

    @property
    def cycles(self) -> float:
        return self.compute_cycles + self.stall_cycles

    @property
    def utilization(self) -> float:
        denominator = self.cycles * self.peak_macs_per_cycle
        return self.macs / denominator if denominator > 0 else 0.0
