"""`sparsim system` and `sparsim graph`: system-level runs from the command line (and the flags
that pick a system, shared with `sparsim llm` in `workloads.cli_llm`).

Registered on the main app through its `sparsim.commands` entry point (pyproject.toml). A thin
shell over `simulator.system.simulate_system` and `simulator.graph.analyze`; user mistakes raise
`SparsimInputError`, which the main entry point prints as one line with exit status 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from simulator.cli import JSON_RESULT_OPTION, OUT_OPTION, QUIET_OPTION, app, console, si
from simulator.cli_system_args import target_from_flags, write_timelines
from simulator.outputs import finite_json


@app.command("system")
def system_cmd(
    workload: Path = typer.Option(..., "--workload", "-w", help="trace YAML/JSON or SCALE-Sim topology CSV"),
    arch: Optional[Path] = typer.Option(None, "--arch", "-a", help="arch spec YAML (with --cores)"),
    system: Optional[Path] = typer.Option(None, "--system", "-s", help="system spec YAML"),
    cores: int = typer.Option(1, "--cores", help="copies of --arch sharing its DRAM"),
    policy: Optional[str] = typer.Option(None, "--policy", help="layer_by_layer | pipeline | expert_parallel | graph"),
    microbatches: Optional[int] = typer.Option(None, "--microbatches", help="inputs streamed through a pipeline"),
    set_: list[str] = typer.Option([], "--set", help="override an arch field (with --arch)"),
    fusion: bool = typer.Option(False, "--fusion", help="keep fusable outputs on chip (one-core systems)"),
    out: Optional[Path] = OUT_OPTION,
    timeline: Optional[Path] = typer.Option(None, "--timeline", help="write a Chrome-trace JSON"),
    gantt: Optional[Path] = typer.Option(None, "--gantt", help="write a per-core Gantt chart"),
    as_json: bool = typer.Option(False, "--json", help="print totals as one JSON object"),
    quiet: bool = QUIET_OPTION,
):
    """Run a workload on a multi-core system (SimPy: shared DRAM, DMA, scheduling policies)."""
    from simulator.system import simulate_system
    from simulator.trace import load_trace
    target = target_from_flags(arch, system, cores, set_, policy, microbatches)
    result = simulate_system(load_trace(workload), target, fusion=fusion)
    if out:
        _save_rows(out, result)
    write_timelines(result.intervals, result.cores, f"{result.workload} on {result.system}", timeline, gantt,
                     None if quiet or as_json else console.print)
    totals = result.totals()
    if as_json:
        print(finite_json(totals))
        return
    if quiet:
        return
    console.print(f"[bold]{result.workload}[/bold] on {result.system} ({result.policy}, {len(result.cores)} cores)")
    table = Table()
    for col in ("core", "busy", "utilization"):
        table.add_column(col, justify="left" if col == "core" else "right")
    for core, util in totals["core_utilization"].items():
        table.add_row(core, si(result.core_busy_s[core], "s"), f"{util:.1%}")
    console.print(table)
    console.print(f"latency {si(result.makespan_s, 's')} (one core, analytic: {si(result.analytic_serial_s, 's')}), "
                  f"energy {si(result.energy_pj * 1e-12, 'J')}, DRAM {si(result.dram_bytes, 'B')} "
                  f"at {result.dram_utilization:.1%} busy")
    if "global_buffer_edges" in totals:
        console.print(f"global buffer: {totals['global_buffer_edges']} tensors kept on chip, "
                      f"{si(totals['global_buffer_bytes'], 'B')} moved at {totals['global_buffer_utilization']:.1%} busy")


def _save_rows(path: Path, result) -> None:
    """Per-op rows in the formats `simulate --out` takes (.csv, .parquet, .json with the totals)."""
    import pandas as pd

    from simulator.simulate import write_table
    write_table(pd.DataFrame(result.ops), path, {"totals": result.totals()})


@app.command()
def graph(
    workload: Path = typer.Option(..., "--workload", "-w", help="trace YAML/JSON"),
    arch: Path = typer.Option(..., "--arch", "-a", help="arch spec YAML"),
    fusion: bool = typer.Option(False, "--fusion", help="keep fusable outputs on chip (no DRAM round trip)"),
    set_: list[str] = typer.Option([], "--set", help="override an arch field"),
    as_json: bool = JSON_RESULT_OPTION,
    quiet: bool = QUIET_OPTION,
):
    """Op-graph analysis: critical-path latency with unlimited parallel hardware, and fusion savings."""
    from simulator.graph import analyze
    from simulator.spec import load_arch
    from simulator.trace import load_trace
    sched = analyze(load_trace(workload), load_arch(arch, list(set_)), fusion=fusion)
    data = {"critical_path_latency_s": sched.latency_s, "serial_latency_s": sched.serial_latency_s,
            "parallelism": sched.parallelism, "critical_path": sched.critical_path,
            "fused_edges": len(sched.fused_edges), "saved_dram_bytes": sched.saved_dram_bytes}
    if as_json:
        print(finite_json(data))
        return
    if quiet:
        return
    console.print(f"critical path {si(sched.latency_s, 's')} vs serial {si(sched.serial_latency_s, 's')} "
                  f"(parallelism {sched.parallelism:.2f}) over {len(sched.critical_path)} ops")
    if fusion:
        console.print(f"fusion: {len(sched.fused_edges)} edges, {si(sched.saved_dram_bytes, 'B')} of DRAM traffic saved")
