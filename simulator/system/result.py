"""What a system run returns: per-core intervals, each policy's `ScheduleOutcome`, the `SystemResult`."""

from __future__ import annotations

from dataclasses import dataclass, field


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


@dataclass
class ScheduleOutcome:
    """What a scheduling policy returns: its makespan, per-op (or per-stage) rows, per-core
    intervals, the DRAM and global-buffer busy time and bytes, dynamic energy, and
    policy-specific totals (`extra`, e.g. the pipeline's stages and micro-batch timing)."""
    makespan_s: float
    rows: list[dict]
    intervals: list[Interval]
    dram_busy_s: float
    dynamic_energy_pj: float
    dram_bytes: float
    gb_busy_s: float = 0.0
    gb_bytes: float = 0.0
    extra: dict = field(default_factory=dict)
