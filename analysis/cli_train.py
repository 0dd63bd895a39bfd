"""`sparsim train`: one training step of a model on a device or system, data parallel.

Registered on the main app through its `sparsim.commands` entry point (pyproject.toml). The model is a Hugging Face
config (shipped name or path; backward derived, activation memory by formula) or a forward
trace file (`--workload`; activation memory then left out). `--patterns dense,2:4,1:4,2:8`
runs the same step once per weight pattern and prints one row each (a training N:M sweep).
User mistakes print one line and exit 2.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from simulator.cli import app, console, si
from simulator.errors import SparsimInputError


def _recipe(micro_batches, recompute, optimizer, transposable, grad_density, masked_dw, update_every, sparse_state):
    from simulator.training.recipe import TrainingRecipe
    return TrainingRecipe(micro_batches=micro_batches, recompute=recompute, optimizer=optimizer,
                          transposable=transposable, grad_density=grad_density, masked_weight_grad=masked_dw,
                          update_every=update_every, sparse_state=sparse_state).check()


def _vector_kernels(mode: str, target) -> str:
    """`auto`: PyTorch eager kernels on a GPU (what the framework runs), one fused pass elsewhere
    (an accelerator design runs the trace's ops as they are)."""
    if mode not in ("auto", "eager", "fused"):
        raise SparsimInputError(f"unknown vector-kernel mode '{mode}'", field="--vector-kernels",
                                hint="auto, eager (PyTorch eager) or fused (torch.compile / fused kernels)")
    if mode != "auto":
        return mode
    return "eager" if all(core.arch.compute.kind == "gpu" for core in target.cores) else "fused"


def _check_inputs(model, workload, seq_len, batch, link_gb_s) -> None:
    """One located error for a missing/duplicate model, a non-positive size or link bandwidth."""
    if (model is None) == (workload is None):
        raise SparsimInputError("give a model config or --workload, not both or neither", field="model",
                                hint="e.g. sparsim train llama2-7b -a arch_configs/gpu_a100_sxm4_80gb.yaml")
    for label, v in (("--seq-len", seq_len), ("--batch", batch)):
        if v < 1:
            raise SparsimInputError(f"{label.lstrip('-')} must be a positive integer (got {v})", field=label)
    if link_gb_s is not None and link_gb_s <= 0:
        raise SparsimInputError(f"link bandwidth must be > 0 GB/s (got {link_gb_s})", field="--link-gb-s")


def _check_numbers(link_gb_s, link_latency_us, capacity_gib, zipf_skew, patterns) -> None:
    """Finite, in-range float flags and a non-empty --patterns list (one located error each)."""
    from simulator.inputs import MAX_FLOAT
    for label, v, positive in (("--link-gb-s", link_gb_s, True), ("--link-latency-us", link_latency_us, False),
                               ("--capacity-gib", capacity_gib, True), ("--zipf-skew", zipf_skew, False)):
        if v is not None and not (0.0 < v <= MAX_FLOAT if positive else 0.0 <= v <= MAX_FLOAT):
            raise SparsimInputError(f"{v} is out of range", field=label,
                                    hint=f"give a finite number {'> 0' if positive else '>= 0'} (at most {MAX_FLOAT:g})")
    if patterns is not None and not any(p.strip() for p in patterns.split(",")):
        raise SparsimInputError("no weight pattern given", field="--patterns", hint="e.g. --patterns dense,2:4,1:4")


NCCL_RING_CHANNELS_HGX_A100 = 24   # NCCL's ring channels on an 8-GPU HGX A100 NVSwitch board (nccl-tests issue 100)


def _comm_sms(given, target) -> int:
    """SMs a collective holds: as given, else NCCL's channel count of an 8-GPU NVSwitch board on a GPU
    (one CTA per channel), else 0 (an accelerator design's collectives do not take its PEs)."""
    if given is not None:
        return given
    return NCCL_RING_CHANNELS_HGX_A100 if all(core.arch.compute.kind == "gpu" for core in target.cores) else 0


def _run_one(model, workload, target, recipe, dp, weights, seq_len, batch, capacity, forward_recipe):
    from simulator.training.build import training_trace
    from simulator.training.step import simulate_training
    if workload is not None:
        from simulator.trace import load_trace
        forward = load_trace(workload)
        try:
            tt = training_trace(forward, recipe, tokens_per_micro_batch=seq_len * batch)
        except SparsimInputError as exc:
            raise exc.located(workload) from None
        shape = None
    else:
        from workloads.extract.training import hf_training_trace
        tt, shape = hf_training_trace(model, seq_len=seq_len, batch=batch, recipe=recipe, weights=weights,
                                      **forward_recipe)
    return simulate_training(tt, target, dp=dp, shape=shape, capacity_bytes=capacity)


def _located(spec_path, run, *args):
    """`run(*args)`, with an engine's complaint about the hardware pinned to the spec file."""
    from simulator.simulate import is_arch_error
    try:
        return run(*args)
    except SparsimInputError as exc:
        if is_arch_error(exc) and exc.path is None:
            raise exc.located(spec_path) from None
        raise


def _print(result) -> None:
    t = Table(title=f"training step: {result.workload} on {result.system}")
    t.add_column("quantity")
    t.add_column("value", justify="right")
    dp = result.data_parallel
    for k, v in (("step time", si(result.step_s, "s")), ("tokens / step", f"{result.tokens_per_step:,}"),
                 ("tokens/s (all ranks)", f"{result.tokens_per_s:,.0f}"),
                 ("tokens/s per device", f"{result.tokens_per_s_per_device:,.0f}"), ("MFU", f"{result.mfu:.1%}"),
                 ("energy / step", si(result.energy_per_step_j, "J")),
                 ("energy / token", si(result.energy_per_token_j, "J")),
                 ("data parallel", f"{dp['ranks']} ranks, ZeRO-{dp['zero']}, {dp['collective']} all-reduce")):
        t.add_row(k, v)
    for phase, s in result.split_s.items():
        t.add_row(f"  {phase}", f"{si(s, 's')} ({s / result.step_s:.1%})" if result.step_s else "-")
    console.print(t)
    fp = result.footprint
    if fp is not None:
        m = Table(title="memory per device")
        m.add_column("component")
        m.add_column("GiB", justify="right")
        for k, v in fp.components.items():
            m.add_row(k, f"{v / 2**30:.3g}")
        cap = f" of {fp.capacity_bytes / 2**30:.4g}" if fp.capacity_bytes else " (capacity unknown)"
        m.add_row("[bold]total[/bold]", f"{fp.total / 2**30:.4g}{cap}")
        console.print(m)
        if fp.over_capacity_line():
            console.print(f"[red]{fp.over_capacity_line()}[/red]")
    console.print(f"[dim]model: {result.model}[/dim]")
    for n in result.notes:
        console.print(f"[yellow]note[/yellow]: {n}")


@app.command()
def train(
    model: Optional[str] = typer.Argument(None, help="Hugging Face config.json or shipped name (llama2-7b, ...)"),
    workload: Optional[Path] = typer.Option(None, "--workload", "-w", help="a forward trace instead of a config"),
    arch: Optional[Path] = typer.Option(None, "--arch", "-a", help="device spec YAML (one per data-parallel rank)"),
    system: Optional[Path] = typer.Option(None, "--system", "-s", help="system spec YAML (one per rank)"),
    set_: list[str] = typer.Option([], "--set", help="override an arch field: dotted.path=value"),
    seq_len: int = typer.Option(2048, "--seq-len", help="tokens per sequence"),
    batch: int = typer.Option(1, "--batch", help="sequences per micro-batch per rank"),
    micro_batches: int = typer.Option(1, "--micro-batches", help="gradient-accumulation steps per optimizer step"),
    recompute: str = typer.Option("selective", "--recompute", help="none | selective | full"),
    optimizer: str = typer.Option("adamw", "--optimizer", help="adamw | adam | sgd_momentum | sgd"),
    weights: Optional[str] = typer.Option(None, "--weights", help="forward weight sparsity: N:M, density, block:RxC:D"),
    activations: Optional[str] = typer.Option(None, "--activations", help="activation density at linear inputs"),
    patterns: Optional[str] = typer.Option(None, "--patterns", help="sweep: comma-separated weight patterns "
                                                                     "(dense,2:4,1:4,2:8)"),
    transposable: bool = typer.Option(False, "--transposable/--no-transposable",
                                      help="the N:M mask holds along both axes, so backward-data can use it"),
    grad_density: Optional[float] = typer.Option(None, "--grad-density", help="density of output gradients dY"),
    masked_dw: bool = typer.Option(False, "--masked-dw", help="compute dW only at kept weights"),
    update_every: Optional[int] = typer.Option(None, "--update-every", help="dynamic sparse training: dense-gradient "
                                                                            "step and mask update every N steps"),
    sparse_state: bool = typer.Option(False, "--sparse-state", help="gradients and optimizer state only for kept "
                                                                    "weights (sharded sparse)"),
    routing: str = typer.Option("uniform", "--routing", help="MoE routing: uniform | zipf | file"),
    zipf_skew: float = typer.Option(1.0, "--zipf-skew", help="Zipf exponent for --routing zipf"),
    expert_counts: Optional[Path] = typer.Option(None, "--expert-counts", help="measured per-expert token counts"),
    bits: Optional[int] = typer.Option(None, "--bits", help="operand precision (default: the config's dtype)"),
    lm_head: bool = typer.Option(True, "--lm-head/--no-lm-head", help="train with the LM/MLM head"),
    vector_kernels: str = typer.Option("auto", "--vector-kernels",
                                       help="auto (eager on a GPU, else fused) | eager (PyTorch eager: RMSNorm, "
                                            "rotary, SwiGLU as their kernels) | fused (one pass each)"),
    dp: int = typer.Option(1, "--dp", help="data-parallel ranks"),
    zero: int = typer.Option(0, "--zero", help="ZeRO stage 0-3 (3 = FSDP full sharding)"),
    collective: str = typer.Option("ring", "--collective", help="gradient all-reduce: ring | tree"),
    link_gb_s: Optional[float] = typer.Option(None, "--link-gb-s", help="per-rank interconnect bandwidth, GB/s"),
    link_latency_us: float = typer.Option(5.0, "--link-latency-us", help="per-message latency, microseconds"),
    comm_sms: Optional[int] = typer.Option(None, "--comm-sms", help="SMs a collective kernel holds while it overlaps "
                                                                  "backward (default: 24 on a GPU, NCCL's ring "
                                                                  "channels on an 8-GPU NVSwitch board; 0 elsewhere)"),
    capacity_gib: Optional[float] = typer.Option(None, "--capacity-gib", help="device memory (default: the spec's)"),
    as_json: bool = typer.Option(False, "--json", help="print the result as one JSON object"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="write per-op rows (.csv, .parquet, .json)"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="print nothing but errors"),
):
    """Simulate one training step: step time, tokens/s, MFU, energy, memory per device, phase split."""
    from simulator.cli_system_args import target_from_flags
    from simulator.training.step import DataParallel
    _check_inputs(model, workload, seq_len, batch, link_gb_s)
    _check_numbers(link_gb_s, link_latency_us, capacity_gib, zipf_skew, patterns)
    recipe = _recipe(micro_batches, recompute, optimizer, transposable, grad_density, masked_dw, update_every,
                     sparse_state)
    target = target_from_flags(arch, system, 1, list(set_), None)
    recipe = dataclasses.replace(recipe, vector_kernels=_vector_kernels(vector_kernels, target))
    par = DataParallel(ranks=dp, zero=zero, collective=collective,
                       link_bytes_per_s=link_gb_s * 1e9 if link_gb_s else target.noc_bytes_per_s or None,
                       latency_s=link_latency_us * 1e-6, comm_sms=_comm_sms(comm_sms, target)).check()
    capacity = capacity_gib * 2**30 if capacity_gib else None
    fwd = dict(routing=routing, zipf_skew=zipf_skew, expert_counts=expert_counts, bits=bits, lm_head=lm_head,
               activations=activations) if model else {}
    runs = [p.strip() for p in patterns.split(",") if p.strip()] if patterns else [weights]
    results = [(p, _located(arch or system, _run_one, model, workload, target, recipe, par,
                            None if p in (None, "dense") else p, seq_len, batch, capacity, fwd)) for p in runs]
    if out:
        from simulator.simulate import write_table
        import pandas as pd
        rows = [{**r, "pattern": p or "dense"} for p, res in results for r in res.rows]
        write_table(pd.DataFrame(rows), out, {"results": [res.to_dict() for _, res in results]})
    if as_json:
        data = [{"pattern": p or "dense", **res.to_dict()} for p, res in results]
        print(json.dumps(data if patterns else data[0], default=float))
        return
    if quiet:
        return
    if patterns:
        _print_sweep(results)
    else:
        _print(results[0][1])


def _print_sweep(results) -> None:
    t = Table(title=f"training N:M sweep: {results[0][1].workload} on {results[0][1].system}")
    for c in ("weights", "step", "tokens/s/device", "speedup", "MFU", "energy/token", "memory GiB"):
        t.add_column(c, justify="left" if c == "weights" else "right")
    base = results[0][1].step_s
    for p, r in results:
        mem = f"{r.footprint.total / 2**30:.3g}" if r.footprint else "-"
        t.add_row(p or "dense", si(r.step_s, "s"), f"{r.tokens_per_s_per_device:,.0f}", f"{base / r.step_s:.2f}x",
                  f"{r.mfu:.1%}", si(r.energy_per_token_j, "J"), mem)
    console.print(t)
    for n in sorted({n for _, r in results for n in r.notes}):
        console.print(f"[yellow]note[/yellow]: {n}")
