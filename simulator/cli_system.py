"""`sparsim llm`, `sparsim system` and `sparsim graph`: system-level runs from the command line.

Registered on the main app by `simulator.cli` (COMMAND_MODULES). User mistakes raise
`SparsimInputError`, which the main entry point prints as one line with exit status 2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from simulator.cli import JSON_RESULT_OPTION, OUT_OPTION, QUIET_OPTION, app, console, si
from simulator.errors import SparsimInputError, nearest


def _target(arch: Optional[Path], system: Optional[Path], cores: int, set_: list[str], policy: Optional[str],
            microbatches: Optional[int] = None):
    """A System from --system, or --cores copies of --arch."""
    from simulator.spec import load_arch
    from simulator.system import POLICIES, load_system, replicate
    if microbatches is not None and microbatches < 1:
        raise SparsimInputError(f"microbatches must be >= 1 (got {microbatches})", field="--microbatches")
    if (arch is None) == (system is None):
        raise SparsimInputError("give exactly one of --arch and --system", field="--arch",
                                hint="--arch A.yaml [--cores N] or --system S.yaml")
    if policy is not None and policy not in POLICIES:
        guess = nearest(policy, POLICIES)
        raise SparsimInputError(f"unknown policy '{policy}'", field="--policy",
                                hint=(f"did you mean '{guess}'? " if guess else "") + "allowed: " + ", ".join(POLICIES))
    if system is not None:
        if cores != 1 or set_:
            raise SparsimInputError(f"{'--cores' if cores != 1 else '--set'} applies to --arch, not --system",
                                    field="--cores" if cores != 1 else "--set",
                                    hint="set core counts and arch overrides in the system file (cores[].count, "
                                         "cores[].overrides)")
        target = load_system(system)
        changes = {}
        if policy:
            changes["policy"] = policy
        if microbatches:
            changes["microbatches"] = microbatches
        return target.with_(**changes) if changes else target
    if cores < 1:
        raise SparsimInputError(f"core count must be at least 1 (got {cores})", field="--cores",
                                hint="use --cores N with N >= 1")
    return replicate(load_arch(arch, list(set_)), cores, policy=policy or "layer_by_layer",
                     microbatches=microbatches or 1)


def _write_timelines(intervals, cores, name, timeline: Optional[Path], gantt: Optional[Path], quiet: bool) -> None:
    from simulator.timeline import write_chrome_trace, write_gantt
    if timeline:
        write_chrome_trace(timeline, intervals, cores, name=name)
        if not quiet:
            console.print(f"wrote {timeline} (open in https://ui.perfetto.dev)")
    if gantt:
        write_gantt(gantt, intervals, cores, title=name)
        if not quiet:
            console.print(f"wrote {gantt}")


@app.command()
def llm(
    model: str = typer.Option(..., "--model", "-m", help="Hugging Face config.json (or a shipped name, e.g. llama2-7b)"),
    arch: Optional[Path] = typer.Option(None, "--arch", "-a", help="accelerator or GPU spec YAML (one core each)"),
    system: Optional[Path] = typer.Option(None, "--system", "-s", help="system spec YAML (arch_configs/systems/)"),
    cores: int = typer.Option(1, "--cores", help="copies of --arch sharing its DRAM"),
    prompt_len: int = typer.Option(..., "--prompt-len", "-p", help="prompt tokens per sequence"),
    output_len: int = typer.Option(..., "--output-len", "-t", help="output tokens per sequence"),
    batch: int = typer.Option(1, "--batch", "-b", help="sequences per batch"),
    weights: Optional[str] = typer.Option(None, "--weights", help="weight sparsity: N:M, density, or block:RxC:D"),
    activations: Optional[str] = typer.Option(None, "--activations", help="activation density"),
    kv: Optional[str] = typer.Option(None, "--kv", help="KV-cache density (e.g. 0.3 = 70% pruned)"),
    attention: Optional[str] = typer.Option(None, "--attention", help="block-sparse attention density"),
    skip_layers: float = typer.Option(0.0, "--skip-layers", help="fraction of block executions skipped (every pass)"),
    routing: str = typer.Option("uniform", "--routing", help="MoE routing: uniform | zipf | file"),
    zipf_skew: float = typer.Option(1.0, "--zipf-skew", help="Zipf exponent for --routing zipf"),
    expert_counts: Optional[Path] = typer.Option(None, "--expert-counts",
                                                 help="JSON/YAML per-expert token counts (a routing distribution)"),
    bits: Optional[int] = typer.Option(None, "--bits", help="operand precision (default: the config's torch_dtype)"),
    policy: Optional[str] = typer.Option(None, "--policy", help="layer_by_layer | pipeline | expert_parallel | graph"),
    microbatches: Optional[int] = typer.Option(None, "--microbatches", help="pipeline: split the batch this many ways"),
    draft_tokens: int = typer.Option(0, "--draft-tokens", help="self-speculative decoding: draft k tokens (0 = off)"),
    acceptance: float = typer.Option(0.8, "--acceptance", help="per-token acceptance rate of the draft"),
    draft_skip: float = typer.Option(0.5, "--draft-skip", help="fraction of blocks the draft skips"),
    samples: int = typer.Option(5, "--samples", help="KV lengths at which a decode step is simulated"),
    fusion: bool = typer.Option(False, "--fusion", help="keep fusable outputs on chip (one-core systems)"),
    set_: list[str] = typer.Option([], "--set", help="override an arch field: dotted.path=value (with --arch)"),
    timeline: Optional[Path] = typer.Option(None, "--timeline", help="write a Chrome-trace JSON (prefill + one decode step)"),
    gantt: Optional[Path] = typer.Option(None, "--gantt", help="write a per-core Gantt chart (PNG/SVG/PDF)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    quiet: bool = QUIET_OPTION,
):
    """End-to-end LLM inference: prefill + decode with a growing KV cache; TTFT, TPOT, tokens/s, J/token."""
    from simulator.llm import Speculative, simulate_llm
    target = _target(arch, system, cores, set_, policy, microbatches)
    spec = Speculative(draft_tokens, acceptance, draft_skip) if draft_tokens else None
    result = simulate_llm(model, target, prompt_len=prompt_len, output_len=output_len, batch=batch, weights=weights,
                          activations=activations, kv=kv, attention=attention, skip_layers=skip_layers,
                          routing=routing, zipf_skew=zipf_skew,
                          expert_counts=str(expert_counts) if expert_counts is not None else None, bits=bits,
                          speculative=spec, samples=samples, fusion=fusion)
    _write_timelines(result.timeline(), result.prefill.cores, f"{result.model} on {result.system}", timeline, gantt,
                     quiet or as_json)
    if as_json:
        print(json.dumps(result.to_dict(), default=float))
        return
    if quiet:
        return
    console.print(f"[bold]{result.model}[/bold] on {result.system}: prompt {prompt_len}, output {output_len}, "
                  f"batch {batch}")
    table = Table(show_header=True)
    for col in ("TTFT", "TPOT", "total", "tokens/s", "energy/token", "avg power"):
        table.add_column(col, justify="right")
    table.add_row(si(result.ttft_s, "s"), si(result.tpot_s, "s"), si(result.total_s, "s"),
                  f"{result.tokens_per_s:.4g}", si(result.energy_per_token_j, "J"),
                  si(result.power["average_power_w"], "W"))
    console.print(table)
    if result.power.get("power_note"):
        console.print(f"[yellow]note[/yellow]: {result.power['power_note']}")
    if result.speculative:
        s = result.speculative
        be = s["breakeven_acceptance"]
        console.print(f"speculative: k={s['draft_tokens']}, skip {s['skip_fraction']:.0%} of blocks, acceptance "
                      f"{s['acceptance_rate']:.2f} -> {s['tokens_per_cycle']:.2f} tokens/cycle, speedup "
                      f"{s['speedup']:.2f}x; break-even acceptance "
                      + (f"{be:.3f}" if be is not None else "none (cannot pay off)"))


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
    target = _target(arch, system, cores, set_, policy, microbatches)
    result = simulate_system(load_trace(workload), target, fusion=fusion)
    if out:
        _save_rows(out, result)
    _write_timelines(result.intervals, result.cores, f"{result.workload} on {result.system}", timeline, gantt,
                     quiet or as_json)
    totals = result.totals()
    if as_json:
        print(json.dumps(totals, default=float))
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
        print(json.dumps(data, default=float))
        return
    if quiet:
        return
    console.print(f"critical path {si(sched.latency_s, 's')} vs serial {si(sched.serial_latency_s, 's')} "
                  f"(parallelism {sched.parallelism:.2f}) over {len(sched.critical_path)} ops")
    if fusion:
        console.print(f"fusion: {len(sched.fused_edges)} edges, {si(sched.saved_dram_bytes, 'B')} of DRAM traffic saved")
