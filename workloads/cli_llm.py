"""`sparsim llm`: end-to-end LLM inference on a Hugging Face config from the command line.

Registered on the main app through its `sparsim.commands` entry point (pyproject.toml); it lives
in workloads because the trace of each pass comes from the HF config reader. A thin shell over
`workloads.llm.simulate_llm`; user mistakes raise `SparsimInputError` (one line, exit 2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from simulator.cli import QUIET_OPTION, app, console, si
from simulator.cli_system_args import target_from_flags, write_timelines
from simulator.outputs import finite_json


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
    stack: str = typer.Option("none", "--stack", help="serving-stack profile added to the kernels, e.g. nemo-trtllm "
                              "(sparsim list stacks; default none = kernels only)"),
    set_: list[str] = typer.Option([], "--set", help="override an arch field: dotted.path=value (with --arch)"),
    timeline: Optional[Path] = typer.Option(None, "--timeline", help="write a Chrome-trace JSON (prefill + one decode step)"),
    gantt: Optional[Path] = typer.Option(None, "--gantt", help="write a per-core Gantt chart (PNG/SVG/PDF)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    quiet: bool = QUIET_OPTION,
):
    """End-to-end LLM inference: prefill + decode with a growing KV cache; TTFT, TPOT, tokens/s, J/token."""
    from simulator.llm import Speculative
    from workloads.llm import simulate_llm
    target = target_from_flags(arch, system, cores, set_, policy, microbatches)
    spec = Speculative(draft_tokens, acceptance, draft_skip) if draft_tokens else None
    result = simulate_llm(model, target, prompt_len=prompt_len, output_len=output_len, batch=batch, weights=weights,
                          activations=activations, kv=kv, attention=attention, skip_layers=skip_layers,
                          routing=routing, zipf_skew=zipf_skew,
                          expert_counts=str(expert_counts) if expert_counts is not None else None, bits=bits,
                          speculative=spec, samples=samples, fusion=fusion)
    from simulator.serving_stack import apply_profile
    from simulator.system import System, replicate
    result = apply_profile(result, stack, [c.arch for c in (target if isinstance(target, System)
                                                             else replicate(target, cores)).cores])
    write_timelines(result.timeline(), result.prefill.cores, f"{result.model} on {result.system}", timeline, gantt,
                     None if quiet or as_json else console.print)
    if as_json:
        print(finite_json(result.to_dict()))
        return
    if quiet:
        return
    console.print(f"[bold]{result.model}[/bold] on {result.system}: prompt {prompt_len}, output {output_len}, "
                  f"batch {batch}; " + ("kernels only (--stack none)" if result.serving_stack == "none" else
                                         f"kernels + serving stack {result.serving_stack} ({si(result.stack_s, 's')})"))
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
