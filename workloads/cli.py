"""`sparsim extract hf-config | torch | onnx`: write a trace from a model source and print its summary.

Registered on the main app when `simulator.cli` imports its command modules. User mistakes
raise `SparsimInputError`, which the main entry point prints as one line with exit code 2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from rich.table import Table

from simulator.cli import app, console, si
from simulator.errors import SparsimInputError, install_hint

if TYPE_CHECKING:
    from simulator.trace import Trace

extract_app = typer.Typer(add_completion=False, no_args_is_help=True,
                          help="Extract a workload trace from a model (HF config.json, PyTorch module, ONNX).")
app.add_typer(extract_app, name="extract")


def print_summary(trace: Trace, out: Path | None, as_json: bool, quiet: bool) -> dict:
    from workloads.extract import trace_summary
    summary = trace_summary(trace)
    if as_json:
        print(json.dumps(summary | {"out": str(out) if out else None}, default=float))
        return summary
    if quiet:
        return summary
    table = Table(title=f"{trace.name}: {trace.description or ''}")
    for col in ("kind", "ops", "dense MACs", "eff. MACs", "weight bytes", "sparsity"):
        table.add_column(col, justify="left" if col in ("kind", "sparsity") else "right",
                         no_wrap=col not in ("weight bytes", "sparsity"))
    for kind, row in sorted(summary["kinds"].items(), key=lambda kv: -kv[1]["dense_macs"]):
        sparsity = "; ".join(f"{label} {', '.join(row[key])}" for key, label in
                             (("weights", "W"), ("kv", "KV"), ("activations", "A")) if row[key])
        ops = str(row["ops"]) if row["ops"] == row["instances"] else f"{row['ops']} (x{row['instances']})"
        wbytes = (f"{si(row['param_bytes'], 'B')} -> {si(row['param_bytes_compressed'], 'B')}"
                  if row["param_bytes"] else "-")
        table.add_row(kind, ops, si(row["dense_macs"]), si(row["effective_macs"]), wbytes, sparsity or "-")
    console.print(table)
    t = summary["totals"]
    ratio = t["effective_macs"] / t["dense_macs"] if t["dense_macs"] else 1.0
    console.print(f"[bold]total[/bold]: {t['ops']} ops ({t['instances']} with repeats), {si(t['dense_macs'])} dense MACs, "
                  f"{si(t['effective_macs'])} effective ({ratio:.1%}), GEMM weights {si(t['param_bytes'], 'B')} dense, "
                  f"{si(t['param_bytes_compressed'], 'B')} compressed")
    if out:
        console.print(f"wrote {out}")
    return summary


def _import_extra(module: str, extra: str):
    """Import an extractor that needs an optional extra, or say how to install it (exit code 2)."""
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing = getattr(exc, "name", None) or extra
        raise SparsimInputError(f"this extractor needs the '{extra}' extra ({missing} is not installed)",
                                field="extract", hint=install_hint(extra)
                                + (" or pip install torch==2.13.0 (the CPU build)" if extra == "torch" else "")) from None


def _density(text: Optional[str], flag: str) -> Optional[float]:
    """A density given as text (as `extract hf-config` takes it); measured extraction needs a plain number."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise SparsimInputError(f"'{text}' is not a density", field=flag,
                                hint="give the kept fraction, 0 < d <= 1 (e.g. 0.5); a measured trace thresholds "
                                     "real tensors, so N:M or block recipes do not apply here") from None
    if not 0.0 < value <= 1.0:
        raise SparsimInputError(f"density must be in (0, 1] (got {value})", field=flag, hint="e.g. 0.5")
    return value


def _write(trace: Trace, out: Optional[Path], as_json: bool, quiet: bool) -> None:
    if out is not None:
        from simulator.trace import save_trace
        save_trace(trace, out)
    print_summary(trace, out, as_json, quiet)


@extract_app.command("hf-config")
def hf_config_cmd(
    config: str = typer.Argument(..., help="config.json path, or a shipped name (llama2-7b, llama3-8b, mixtral-8x7b, "
                                           "opt-6.7b, bert-base-uncased, llama3.1-8b)"),
    phase: str = typer.Option("prefill", "--phase", help="prefill | decode | both | train"),
    seq_len: int = typer.Option(2048, "--seq-len", help="prompt tokens per sequence (prefill)"),
    kv_len: Optional[int] = typer.Option(None, "--kv-len", help="cached keys per sequence (decode; default seq-len)"),
    batch: int = typer.Option(1, "--batch", help="sequences"),
    weights: Optional[str] = typer.Option(None, "--weights", help="N:M (2:4), density (0.5 keeps half), or block:RxC:D"),
    activations: Optional[str] = typer.Option(None, "--activations", help="activation density at linear-layer inputs"),
    kv: Optional[str] = typer.Option(None, "--kv", help="KV-cache density (0.3 = 70% pruned)"),
    attention: Optional[str] = typer.Option(None, "--attention", help="block-sparse attention map density (64x64 blocks) "
                                                                      "or block:RxC:D"),
    skip_layers: float = typer.Option(0.0, "--skip-layers", help="fraction of block executions skipped"),
    routing: str = typer.Option("uniform", "--routing", help="MoE routing: uniform | zipf | file"),
    zipf_skew: float = typer.Option(1.0, "--zipf-skew", help="Zipf exponent for --routing zipf"),
    expert_counts: Optional[Path] = typer.Option(None, "--expert-counts", help="JSON/YAML per-expert token counts"),
    lm_head: Optional[bool] = typer.Option(None, "--lm-head/--no-lm-head", help="include the LM head (default: by model)"),
    logits: str = typer.Option("all", "--logits", help="LM head over all positions or only the last: all | last"),
    bits: Optional[int] = typer.Option(None, "--bits", help="operand precision (default: the config's torch_dtype)"),
    expand_layers: bool = typer.Option(False, "--expand-layers", help="one op per layer instead of `repeat`"),
    name: Optional[str] = typer.Option(None, "--name", help="trace name"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="write the trace (.yaml or .json)"),
    as_json: bool = typer.Option(False, "--json", help="print the summary as JSON"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="print nothing but errors"),
    micro_batches: int = typer.Option(1, "--micro-batches", help="train: gradient-accumulation steps"),
    recompute: str = typer.Option("selective", "--recompute", help="train: none | selective | full"),
    transposable: bool = typer.Option(False, "--transposable", help="train: N:M masks hold along both axes"),
):
    """Trace every GEMM of a Hugging Face model from its config.json (no weights needed)."""
    from workloads.extract.hf_config import trace_from_hf_config
    if routing == "file" and expert_counts is None:
        raise SparsimInputError("--routing file needs --expert-counts FILE", field="--expert-counts")
    if phase == "train":
        from simulator.training.recipe import TrainingRecipe
        from workloads.extract.training import hf_training_trace
        recipe = TrainingRecipe(micro_batches=micro_batches, recompute=recompute, transposable=transposable).check()
        tt, _ = hf_training_trace(config, seq_len=seq_len, batch=batch, recipe=recipe, name=name, weights=weights,
                                  activations=activations, kv=kv, attention=attention, skip_layers=skip_layers,
                                  routing=routing, zipf_skew=zipf_skew,
                                  expert_counts=expert_counts, bits=bits, repeat_layers=not expand_layers,
                                  lm_head=lm_head)
        return _write(tt.trace, out, as_json, quiet)
    trace = trace_from_hf_config(config, phase=phase, seq_len=seq_len, kv_len=kv_len, batch=batch, weights=weights,
                                 activations=activations, kv=kv, attention=attention, skip_layers=skip_layers,
                                 routing=routing, zipf_skew=zipf_skew, expert_counts=expert_counts, lm_head=lm_head,
                                 logits=logits, bits=bits, repeat_layers=not expand_layers, name=name)
    _write(trace, out, as_json, quiet)


@extract_app.command("torch")
def torch_cmd(
    model: str = typer.Argument("minilm", help="'minilm' (the packaged all-MiniLM-L6-v2) or module.path:factory "
                                                "returning (nn.Module, example inputs)"),
    text: Optional[str] = typer.Option(None, "--text", help="input sentence for minilm"),
    seq_len: int = typer.Option(128, "--seq-len", help="padded input length for minilm"),
    prune: Optional[str] = typer.Option(None, "--prune", help="weights: N:M (2:4), density (0.5) or block:RxC:D"),
    scope: str = typer.Option("layer", "--scope", help="magnitude pruning scope: layer | global"),
    act_density: Optional[str] = typer.Option(None, "--activations", help="activation density: keep this fraction "
                                              "of each linear input (TEAL-style thresholding)"),
    kv_density: Optional[str] = typer.Option(None, "--kv", help="KV-cache density: keep this fraction of K/V per "
                                             "token (0.3 = 70% pruned, by magnitude)"),
    attention: Optional[str] = typer.Option(None, "--attention", help="block-sparse attention mask density"),
    skip_layers: float = typer.Option(0.0, "--skip-layers", help="fraction of layers skipped (probability per block)"),
    bits: Optional[int] = typer.Option(None, "--bits", help="operand precision recorded in the trace "
                                                             "(default: each tensor's dtype)"),
    name: Optional[str] = typer.Option(None, "--name", help="trace name"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="write the trace (.yaml or .json)"),
    as_json: bool = typer.Option(False, "--json", help="print the summary as JSON"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="print nothing but errors"),
    train: bool = typer.Option(False, "--train", help="a training step: backward recorded from autograd"),
):
    """Run a real PyTorch forward pass, optionally sparsified, and trace it with measured sparsity."""
    act_density, kv_density, attention = (_density(v, flag) for v, flag in (
        (act_density, "--activations"), (kv_density, "--kv"), (attention, "--attention")))
    torch_trace = _import_extra("workloads.extract.torch_trace", "torch")
    if train:
        from workloads.extract.training import torch_training_trace
        for flag, value in (("--activations", act_density), ("--kv", kv_density), ("--attention", attention),
                            ("--skip-layers", skip_layers or None)):
            if value is not None:
                raise SparsimInputError(f"{flag} does not apply with --train", field=flag,
                                        hint="a training trace records the real backward; use --prune for weights")
        tt = torch_training_trace(model, seq_len=seq_len, prune=prune, scope=scope, text=text, bits=bits, name=name)
        return _write(tt.trace, out, as_json, quiet)
    trace = torch_trace.extract_cli(model, text=text, seq_len=seq_len, prune=prune, scope=scope,
                                    act_density=act_density, kv_density=kv_density, attention=attention,
                                    skip_layers=skip_layers, bits=bits, name=name)
    _write(trace, out, as_json, quiet)


@extract_app.command("onnx")
def onnx_cmd(
    model: Path = typer.Argument(..., help="ONNX file (external weights are not loaded)"),
    batch: int = typer.Option(1, "--batch", help="value for a symbolic batch dimension"),
    seq_len: int = typer.Option(128, "--seq-len", help="value for other symbolic dimensions"),
    bits: int = typer.Option(16, "--bits", help="operand precision recorded in the trace"),
    weights: Optional[str] = typer.Option(None, "--weights", help="declared weight sparsity (N:M, density, block)"),
    name: Optional[str] = typer.Option(None, "--name", help="trace name"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="write the trace (.yaml or .json)"),
    as_json: bool = typer.Option(False, "--json", help="print the summary as JSON"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="print nothing but errors"),
):
    """Trace an ONNX graph by shape inference: Conv/Gemm/MatMul/attention become ops, the rest zero-MAC ops."""
    trace = _import_extra("workloads.extract.onnx_trace", "onnx").trace_from_onnx(model, batch=batch, seq_len=seq_len, bits=bits, weights=weights, name=name)
    _write(trace, out, as_json, quiet)
