"""The public entry: `simulate(trace, arch) -> Result`, one row per op plus totals.

Per op: the arch's engine estimates one execution (`OpCost`), which is multiplied by the
expected number of executions (`repeat x (1 - skip_probability)`) and costed in energy.
Ops run one after another (layer by layer); concurrency lives in `simulator.system`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from simulator.area import area_breakdown_mm2
from simulator.engines import load_engine
from simulator.energy import op_energy_pj
from simulator.errors import SparsimInputError
from simulator.power import board_tdp_w, summary as power_summary, trace_tokens
from simulator.spec import Arch
from simulator.totals import Totals
from simulator.trace import Op, Trace

if TYPE_CHECKING:
    import pandas as pd

    from simulator.cost import OpCost



@dataclass
class Result:
    """Per-op rows and totals of one simulation. `model` columns say which approximation ran."""
    arch: str
    workload: str
    rows: list[dict]
    totals: Totals   # a dict: keys as written to JSON; core keys typed as attributes
    area_mm2: dict[str, float] = field(default_factory=dict)
    resources: dict = field(default_factory=dict)   # engine-specific budgets (FPGA: DSP/BRAM/URAM/LUT/FF)
    memory_bound: dict = field(default_factory=dict)  # engine's whole-trace memory-bound limit, when it has one

    def to_pandas(self) -> "pd.DataFrame":
        import pandas as pd  # deferred: pandas costs ~0.3 s at CLI start-up
        return pd.DataFrame(self.rows)

    def save(self, path: str | Path) -> Path:
        """Write the per-op table as .csv, .parquet or .json (rows + totals)."""
        return write_table(self.to_pandas(), path, {
            "arch": self.arch, "workload": self.workload, "totals": self.totals, "area_mm2": self.area_mm2,
            "resources": self.resources, "memory_bound": self.memory_bound})


def write_table(df: "pd.DataFrame", path: str | Path, header: dict) -> Path:
    """Per-op rows as .csv or .parquet; as .json, `header` plus the rows under `ops`."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet", ".json"):
        raise SparsimInputError(f"cannot write '{suffix}' files", path=path, field="--out",
                                hint="use .csv, .parquet or .json")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        df.to_csv(path, index=False)
    elif suffix == ".parquet":
        df.to_parquet(path, index=False)
    else:
        from simulator.outputs import finite_json
        path.write_text(finite_json({**header, "ops": df.to_dict(orient="records")}, indent=1))
    return path


def _mac_bits(arch: Arch, op: Op) -> int:
    precision = arch.compute.datapath_precision
    if precision is not None:
        return max(precision.activations, precision.weights)
    return max(op.precision.activations, op.precision.weights)


def op_row(op: Op, arch: Arch, estimate) -> tuple[dict, float]:
    """One op's row of the result table, and the peak MACs per cycle it ran against."""
    cost = estimate(op, arch)
    executions = op.executions
    cycles = cost.cycles * executions
    latency_s = cycles / arch.clock_hz
    energy = op_energy_pj(cost, arch, _mac_bits(arch, op), executions, latency_s)
    row = {
        "op": op.name, "kind": op.kind, "layer": op.layer, "phase": op.phase, "engine": cost.engine,
        "model": cost.model, "repeat": op.repeat, "executions": executions,
        "cycles": cycles, "compute_cycles": cost.compute_cycles * executions,
        "stall_cycles": cost.stall_cycles * executions,
        "macs": cost.macs * executions, "dense_macs": float(op.dense_macs * op.repeat),
        "gated_macs": cost.gated_macs * executions, "utilization": cost.utilization,
        "energy_pj": sum(energy.values()), "latency_s": latency_s,
        "weights_sparsity": op.sparsity.weights.label, "activations_sparsity": op.sparsity.activations.label,
        "notes": cost.note_text,
    }
    if cost.mapping:
        row["mapping"] = cost.mapping
    for name in arch.memory:
        row[f"{name}_read_bytes"] = cost.reads_bytes.get(name, 0.0) * executions
        row[f"{name}_write_bytes"] = cost.writes_bytes.get(name, 0.0) * executions
    for name, value in energy.items():
        row[f"energy_{name}_pj"] = value
    return row, cost.peak_macs_per_cycle


ARCH_SECTIONS = ("compute", "memory", "energy", "area", "clock_mhz")


def locate_op_error(exc: SparsimInputError, op_name: str) -> SparsimInputError:
    """An engine's error about one op, located: a trace field becomes `ops[NAME].field`; a field
    of the arch (the op needs something the hardware lacks) keeps its path and names the op."""
    if exc.field and exc.field.split(".")[0] in ARCH_SECTIONS:
        return SparsimInputError(f"op {op_name}: {exc.message}", path=exc.path, field=exc.field, hint=exc.hint)
    return exc.located(field_prefix=f"ops[{op_name}]")


def is_arch_error(exc: SparsimInputError) -> bool:
    return bool(exc.field) and exc.field.split(".")[0] in ARCH_SECTIONS


def simulate(trace: Trace, arch: Arch, *, estimate: Callable[[Op, Arch], OpCost] | None = None) -> Result:
    """Simulate every op of `trace` on `arch`, layer by layer. `estimate(op, arch) -> OpCost` is the
    engine's own unless given (`simulator.system.jobs.op_cost` shares costs with a system run)."""
    engine = load_engine(arch.compute.kind)
    estimate = estimate or engine.estimate
    rows, peaks = [], []
    for op in trace.ops:
        try:
            row, peak = op_row(op, arch, estimate)
        except SparsimInputError as exc:
            raise locate_op_error(exc, op.name) from None
        rows.append(row)
        peaks.append(peak)
    totals = Totals.of_rows(rows, peaks)
    area = area_breakdown_mm2(arch)
    totals["area_mm2"] = sum(area.values())
    totals["ops"] = len(rows)
    totals["edp_js"] = totals["energy_pj"] * 1e-12 * totals["latency_s"]
    totals["power_w"] = totals["energy_pj"] * 1e-12 / totals["latency_s"] if totals["latency_s"] > 0 else 0.0
    power = power_summary(totals["energy_pj"] * 1e-12, totals["latency_s"], board_tdp_w(arch), trace_tokens(trace))
    totals.update({k: v for k, v in power.items() if k != "average_power_w"})
    resources = engine.resources_report(arch)
    bound = engine.memory_bound(trace, arch)
    if bound and totals["latency_s"] > 0:
        totals["tokens_per_s"] = bound["tokens"] / totals["latency_s"]
        if math.isfinite(bound["bound_tokens_per_s"]):
            totals["memory_bound_tokens_per_s"] = bound["bound_tokens_per_s"]
    if bound and not math.isfinite(bound.get("bound_tokens_per_s", 0.0)):
        # ideal (unlimited) off-chip bandwidth: there is no memory-bound limit to state as a number
        bound = {k: v for k, v in bound.items() if not (isinstance(v, float) and math.isinf(v))}
        bound["note"] = "no memory-bound limit: the off-chip memory is ideal (unlimited bandwidth)"
    return Result(arch=arch.name, workload=trace.name, rows=rows, totals=totals, area_mm2=area,
                  resources=resources, memory_bound=bound)
