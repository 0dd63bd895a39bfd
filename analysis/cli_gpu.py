"""`sparsim crosscheck` and `sparsim measure`: the GPU model beside real kernel timings.

Registered on the main app through its `sparsim.commands` entry point (pyproject.toml). User mistakes raise
`SparsimInputError`, which the CLI prints as one line and exits 2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from simulator.cli import JSON_RESULT_OPTION, QUIET_OPTION, app, console
from simulator.errors import SparsimInputError


@app.command()
def crosscheck(
    arch: Path = typer.Option(..., "--arch", "-a", help="GPU spec YAML (arch_configs/gpu_*.yaml)"),
    measured: Path = typer.Option(..., "--measured", help="measured kernels: harness CSV, M,N,K,latency_ms "
                                  "CSV, ncu --csv, nsys stats CSV or torch.profiler table"),
    dtype: str = typer.Option("fp16", "--dtype", help="dtype of rows in a file without a dtype column"),
    set_: list[str] = typer.Option([], "--set", help="override a spec field: dotted.path=value (repeatable)"),
    timing: Optional[str] = typer.Option(None, "--timing", help="how the set was timed: kernel, events_sync, "
                                         "events_queued or host_sync (default: the file's own, else its format's)"),
    per_call_us: Optional[float] = typer.Option(None, "--per-call-us", help="host time per timed call (us) "
                                                "the timing method adds (default: measured floor or the method's)"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="write the per-kernel report (.csv, .parquet or "
                                       ".json)"),
    plot: Optional[Path] = typer.Option(None, "--plot", help="write a log-log scatter (.png/.pdf/.svg)"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="print only the MAPE line (and warnings)"),
    as_json: bool = JSON_RESULT_OPTION,
):
    """Simulate every measured kernel on a GPU spec; print errors and `MAPE: X.X% over N kernels`."""
    from analysis.crosscheck import crosscheck as run_check, write_scatter
    from analysis.importers import load_measured
    from simulator.spec import load_arch

    from analysis.timing import TimingMethod

    spec = load_arch(arch, list(set_))
    data = load_measured(measured, default_dtype=dtype.lower())
    method = None
    if timing is not None or per_call_us is not None:
        base = data.timing or TimingMethod("events_sync")
        method = TimingMethod(timing or base.method, per_call_us, None if per_call_us is not None else base.floor_us)
    result = run_check(spec, data, method)
    for w in result.warnings:
        console.print(f"[yellow]warning[/yellow]: {escape(w)}", markup=True, highlight=False, soft_wrap=True)
    if result.n == 0:
        raise SparsimInputError("no measured kernel could be simulated on this spec", path=measured,
                                hint="see the warnings above")
    summary = {"arch": spec.name, "measured": str(measured), "kernels": result.n, "mape_pct": result.mape_pct,
               "log_correlation": result.log_correlation, "warnings": list(result.warnings)}
    if out:
        from simulator.simulate import write_table
        write_table(result.rows, out, summary)
    if plot:
        if plot.suffix.lower() not in (".png", ".pdf", ".svg"):
            raise SparsimInputError(f"cannot write '{plot.suffix}' plots", path=plot, field="--plot",
                                    hint="use .png, .pdf or .svg")
        write_scatter(result, plot, f"{spec.name} vs {measured.name}")
    if as_json:
        print(json.dumps(summary, default=float))
        return
    if not quiet:
        table = Table(title=f"{measured.name} ({data.format}) on {spec.name}")
        for col, justify in (("kernel", "left"), ("dtype", "left"), ("shape", "left"), ("measured ms", "right"),
                             ("predicted ms", "right"), ("error %", "right")):
            table.add_column(col, justify=justify)
        for r in result.rows.itertuples():
            table.add_row(r.kernel, r.dtype, r.shape, f"{r.measured_ms:.4g}", f"{r.predicted_ms:.4g}",
                          f"{r.error_pct:+.1f}")
        console.print(table)
        groups = result.by_kernel()
        if len(groups) > 1:
            for g in groups.itertuples():
                console.print(f"  {g.kernel} {g.dtype}: MAPE {g.mape_pct:.1f}% over {g.kernels}")
        console.print(f"log-log correlation: {result.log_correlation:.3f}")
        console.print(f"timing: {result.timing}", highlight=False)
        for path in (out, plot):
            if path:
                console.print(f"wrote {path}")
    console.print(f"MAPE: {result.mape_pct:.1f}% over {result.n} kernels", highlight=False)


@app.command()
def measure(
    out: Path = typer.Option(..., "--out", "-o", help="file to write, one row per measured kernel (.csv, .parquet "
                             "or .json)"),
    suite: list[str] = typer.Option([], "--suite", help="gemm, gemm_2to4, gemv, sdpa, moe_gemm (repeatable; "
                                    "default all)"),
    dtype: list[str] = typer.Option([], "--dtype", help="fp16, bf16, int8 (repeatable; default all)"),
    quick: bool = typer.Option(False, "--quick", help="a small grid (a few minutes)"),
    warmup: int = typer.Option(10, "--warmup", help="untimed calls before timing"),
    repeats: int = typer.Option(50, "--repeats", help="timed calls; the median is reported"),
    flush_l2: bool = typer.Option(False, "--flush-l2", help="overwrite a 256 MiB buffer between repeats"),
    dry_run: bool = typer.Option(False, "--dry-run", help="list the cases without a GPU and exit"),
    as_json: bool = JSON_RESULT_OPTION,
    quiet: bool = QUIET_OPTION,
):
    """Time real kernels on this machine's CUDA GPU with PyTorch and write one tidy CSV."""
    from analysis.measure.harness import SUITES, Grid, build_cases, run

    grid = Grid.quick() if quick else Grid()
    suites = tuple(suite) or SUITES
    cases = build_cases(grid, suites, tuple(dtype) or None)
    if dry_run:
        if as_json:
            print(json.dumps({"cases": [c.label for c in cases]}))
        elif not quiet:
            for c in cases:
                console.print(c.label, highlight=False)
            console.print(f"{len(cases)} cases")
        return
    if out.suffix.lower() not in (".csv", ".parquet", ".json"):
        raise SparsimInputError(f"cannot write '{out.suffix}' files", path=out, field="--out",
                                hint="use .csv, .parquet or .json")
    csv_out = out if out.suffix.lower() == ".csv" else out.with_suffix(".csv")
    import contextlib
    with (contextlib.nullcontext() if quiet or as_json else console.status("measuring")) as status:
        def progress(i: int, n: int, case) -> None:
            if status is not None:
                status.update(f"[{i + 1}/{n}] {case.label}")
        rows = run(csv_out, grid=grid, suites=suites, dtypes=tuple(dtype) or None, warmup=warmup, repeats=repeats,
                   flush_l2=flush_l2, progress=progress)
    if csv_out != out:  # the harness writes CSV; convert, as `simulate --out` would
        import pandas as pd

        from simulator.simulate import write_table
        write_table(pd.read_csv(csv_out), out, {"cases": len(cases)})
        csv_out.unlink()
    device = rows[0]["device"] if rows else "?"
    if as_json:
        print(json.dumps({"measured": len(rows), "cases": len(cases), "device": device, "out": str(out)}))
    elif not quiet:
        console.print(f"measured {len(rows)} of {len(cases)} cases on {device}; wrote {out}")


@app.command("validate-gpu")
def validate_gpu(
    manifest: Optional[Path] = typer.Option(None, "--manifest",
                                            help="measured sets to check (default: the shipped "
                                            "analysis/measured/sets.yaml)"),
    out_dir: Optional[Path] = typer.Option(None, "--out-dir",
                                           help="where the per-set reports, scatter plots and validation.md go "
                                           "(default: analysis/measured/validation in a source checkout, "
                                           "else ./gpu_validation)"),
    docs: Optional[Path] = typer.Option(None, "--docs", help="docs page whose generated validation block is "
                                        "rewritten (default: docs/gpu.md of a source checkout)"),
    no_docs: bool = typer.Option(False, "--no-docs", help="leave the docs page alone"),
    quiet: bool = QUIET_OPTION,
    as_json: bool = JSON_RESULT_OPTION,
):
    """Regenerate the GPU validation (error tables and plots of every shipped measured set) in one command."""
    from analysis.crosscheck import regenerate_validation
    from simulator.shipped import ROOT

    checkout = (ROOT / "pyproject.toml").exists()  # running from the source tree, not an installed wheel
    manifest = manifest or ROOT / "analysis" / "measured" / "sets.yaml"
    out_dir = out_dir or (ROOT / "analysis" / "measured" / "validation" if checkout else Path("gpu_validation"))
    if docs is None and not no_docs:
        docs = ROOT / "docs" / "gpu.md" if checkout else None
    if no_docs:
        docs = None
    from analysis.loso import leave_one_set_out
    loso = leave_one_set_out(manifest)  # one search, for validation.md and the lines below
    outcomes = regenerate_validation(manifest, out_dir, docs, loso)
    if as_json:
        print(json.dumps([{"set": o.set.name, "role": o.set.role, "kernels": o.result.n if o.result else 0,
                           "mape_pct": o.result.mape_pct if o.result else None} for o in outcomes], default=float))
        return
    if quiet:
        return
    for o in outcomes:
        if o.result is None:
            console.print(f"[yellow]skipped[/yellow] {o.set.name}: {escape(str(o.set.measured))} not found",
                          highlight=False, soft_wrap=True)
            continue
        for w in o.result.warnings:
            console.print(f"[yellow]warning[/yellow]: {escape(w)}", highlight=False, soft_wrap=True)
        console.print(f"{o.set.name} ({o.set.role}): MAPE: {o.result.mape_pct:.1f}% over {o.result.n} kernels",
                      highlight=False)
    for r in loso:
        console.print(f"{r.set} (leave-one-set-out): MAPE: {r.loso_mape_pct:.1f}% with the shared factors set on "
                      f"the other sets (fit: {r.fit_mape_pct:.1f}%)", highlight=False, soft_wrap=True)
    console.print(f"wrote {out_dir}" + (f" and {docs}" if docs else ""), highlight=False)
