"""`sparsim sweep` and `sparsim plot ...`: design-space exploration from the command line.

    sparsim sweep analysis/sweeps/edge_npu_resnet50.yaml --out out/edge --jobs 2
    sparsim plot pareto out/edge --color-by compute.dataflow
    sparsim plot breakdown --sweep out/edge --point best:latency
    sparsim plot roofline --arch arch_configs/edge_npu_32x32_os.yaml --workload workloads/traces/resnet50.yaml
    sparsim plot compare --arch arch_configs/edge_npu_32x32_os.yaml --workload sparse_trace.yaml

Registered on the main `app` when `simulator.cli` imports its command modules. User
mistakes are `SparsimInputError`s (one line, exit 2); Ctrl-C on a sweep keeps every
finished point and says how to resume (exit 130).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from simulator.cli import QUIET_OPTION, app, console, err_console, si
from simulator.errors import SparsimInputError, nearest

plot_app = typer.Typer(no_args_is_help=True, add_completion=False,
                       help="Plots: Pareto front of a sweep, per-op breakdown, roofline, dense vs sparse.")
app.add_typer(plot_app, name="plot")


@app.command()
def sweep(
    spec: Path = typer.Argument(..., help="sweep spec YAML, or a shipped name (sparsim list sweeps)"),
    out: Path = typer.Option(..., "--out", "-o", help="output folder (results are kept there; rerun to resume)"),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", help="worker processes (default: all cores)"),
    max_points: Optional[int] = typer.Option(None, "--max-points", "-n",
                                             help="cap the number of points (grid: evenly spread subset)"),
    executor: Optional[str] = typer.Option(None, "--executor", "-e",
                                           help="local | serial | dask://HOST:PORT (default: the spec's)"),
    no_plots: bool = typer.Option(False, "--no-plots", help="skip the Pareto and parameter-effect plots"),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="re-evaluate points that failed last time"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar or report (errors only)"),
    as_json: bool = typer.Option(False, "--json", help="print summary.json to stdout"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace the results of a different sweep in --out"),
):
    """Explore a design space: evaluate points, keep every result, write the Pareto set, summary and plots."""
    from analysis.sweep import run_sweep
    from simulator.shipped import resolve
    spec = resolve(spec, "sweeps")  # a shipped sweep by name (sparsim list sweeps)

    try:
        result = run_sweep(spec, out, jobs=jobs, max_points=max_points, executor=executor, progress=not quiet,
                           plots=not no_plots, retry_failed=retry_failed, overwrite=overwrite)
    except KeyboardInterrupt:
        err_console.print(f"interrupted: every finished point is saved in {out}/results.sqlite; "
                          f"rerun the same command to resume", markup=False, highlight=False, soft_wrap=True)
        sys.exit(130)
    s = result.summary
    if as_json:
        from simulator.outputs import finite_json
        print(finite_json(s, indent=1))
        return
    if quiet:
        return
    console.print(f"[bold]{s['name']}[/bold]: {s['points']} points ({s['strategy']}, {s['executor']}): "
                  f"{s['evaluated']} evaluated, {s['reused']} reused, {s['failed']} failed, "
                  f"{s['infeasible']} infeasible, {s['pareto_size']} on the Pareto front"
                  + (f"; {s['points_per_second']:,.0f} points/s" if s.get("points_per_second") else ""))
    if s["best"]:
        table = Table(title="best design per objective")
        table.add_column("objective")
        table.add_column("value", justify="right")
        table.add_column("parameters")
        table.add_column("key")
        for name, b in s["best"].items():
            table.add_row(name, _value(b["metric"], b["value"]), ", ".join(f"{k.split('.')[-1]}={v}" for k, v in b["params"].items()), b["key"])
        console.print(table)
    console.print(f"wrote {out}/pareto.csv, summary.json, results.sqlite, results.parquet"
                  + (f" and {len(s['plots'])} plot files in {out}/plots" if s.get("plots") else ""))


def _value(metric: str, v) -> str:
    from analysis.metrics import METRICS
    if v is None:
        return "-"
    m = METRICS.get(metric)
    return f"{v * m.scale:.4g} {m.unit}".strip() if m is not None and m.unit else si(v)


# ----------------------------------------------------------------------------- plot helpers

def _metric(name: str, columns) -> str:
    from analysis.metrics import ALIASES, metric_key
    key = metric_key(name)
    if key not in columns:
        guess = nearest(name, list(ALIASES) + [c for c in columns if "." not in c])
        raise SparsimInputError(f"'{name}' is not a metric of this sweep", field="--x/--y",
                                hint=f"did you mean '{guess}'?" if guess else None)
    return key


def _read_sweep(sweep_dir: Path) -> dict:
    path = sweep_dir / "sweep.json"
    if not path.exists():
        raise SparsimInputError("not a sweep folder (no sweep.json)", path=sweep_dir,
                                hint="run `sparsim sweep SPEC --out DIR` first")
    from simulator.inputs import read_json_file
    rec = read_json_file(path, "sweep record", finite=False)
    for key, kind in (("base_raw", dict), ("base_arch", str), ("objectives", list)):
        if not isinstance(rec, dict) or not isinstance(rec.get(key), kind) or not rec.get(key):
            raise SparsimInputError(f"'{key}' is missing or malformed", path=path,
                                    hint="the sweep.json was not written by `sparsim sweep`; rerun the sweep")
    return rec


def _design(arch: Optional[Path], workload: Optional[Path], set_: list[str], sweep_dir: Optional[Path],
            point: Optional[str]):
    """(arch, trace, label) from --arch/--workload/--set, or from a sweep folder's point."""
    from analysis.sweep_spec import apply_point
    from simulator.spec import apply_overrides, arch_from_dict, load_arch, parse_override
    from simulator.trace import load_trace

    if sweep_dir is not None:
        rec = _read_sweep(sweep_dir)
        params, label = _point_params(sweep_dir, point or "best:" + rec["objectives"][0]["name"])
        raw = apply_point(rec["base_raw"], params)
        if set_:
            raw = apply_overrides(raw, dict(parse_override(s) for s in set_))
        spec = arch_from_dict(raw, path=rec["base_arch"])
        trace = load_trace(workload or rec["workloads"][0]["path"])
        return spec, trace, label
    if arch is None or workload is None:
        raise SparsimInputError("give --arch and --workload, or --sweep DIR [--point KEY|best:OBJECTIVE]",
                                field="--arch")
    spec = load_arch(arch, list(set_))
    trace = load_trace(workload)
    return spec, trace, spec.name


def _point_params(sweep_dir: Path, point: str) -> tuple[dict, str]:
    from analysis.results_store import ResultsStore
    if point.startswith("best:"):
        summary_path = sweep_dir / "summary.json"
        if not summary_path.exists():
            raise SparsimInputError("no summary.json in the sweep folder", path=sweep_dir,
                                    hint="let the sweep finish, or name a point by key")
        from simulator.inputs import read_json_file
        summary = read_json_file(summary_path, "sweep summary", finite=False)
        best = summary.get("best", {}) if isinstance(summary, dict) else {}
        name = point.split(":", 1)[1]
        if name not in best:
            guess = nearest(name, list(best))
            raise SparsimInputError(f"no best point for objective '{name}'", field="--point",
                                    hint=f"did you mean 'best:{guess}'?" if guess else
                                    "objectives: " + ", ".join(best))
        point = best[name]["key"]
    with ResultsStore(sweep_dir) as store:
        recs = store.finished()
    matches = [k for k in recs if k.startswith(point)]
    if len(matches) != 1:
        raise SparsimInputError(f"point '{point}' " + ("matches several keys" if matches else "is not in this sweep"),
                                field="--point", hint="use a key from pareto.csv or best:OBJECTIVE")
    rec = recs[matches[0]]
    return rec["params"], ", ".join(f"{k.split('.')[-1]}={v}" for k, v in rec["params"].items())


def _out_stem(out: Optional[Path], default_dir: Path, name: str) -> Path:
    from simulator.outputs import safe_stem
    name = safe_stem(name)  # built from trace/arch names: never a path out of the folder
    if out is None:
        return default_dir / name
    if out.suffix.lower() in (".png", ".svg"):
        return out.with_suffix("")
    return out / name


def _report(paths, quiet: bool):
    if not quiet:
        console.print("wrote " + ", ".join(str(p) for p in paths))


# ----------------------------------------------------------------------------- plot commands

@plot_app.command("pareto")
def plot_pareto(
    sweep_dir: Path = typer.Argument(..., help="a sweep output folder"),
    x: str = typer.Option("latency", "--x", help="x metric (latency, energy, edp, area, power or a totals key)"),
    y: str = typer.Option("energy", "--y", help="y metric"),
    color_by: Optional[str] = typer.Option(None, "--color-by", "-c", help="parameter colouring the points"),
    effects: bool = typer.Option(True, "--effects/--no-effects", help="also plot per-parameter effects"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="folder (default: SWEEP_DIR/plots)"),
    quiet: bool = QUIET_OPTION,
):
    """Energy vs latency (or any two metrics) of every design, Pareto front drawn and labelled."""
    from analysis import plots as P
    from analysis.results_store import ResultsStore
    from analysis.metrics import direction

    rec = _read_sweep(sweep_dir)
    with ResultsStore(sweep_dir) as store:
        df = store.frame()
    params = [p for p in rec["parameters"] if p in df.columns]
    if df.empty or not (df["status"] == "ok").any():
        raise SparsimInputError("the sweep has no successful points to plot", path=sweep_dir)
    ok = df[(df["status"] == "ok") & df["key"].notna()]
    # feasibility per the sweep's constraints was stored with each point
    xk, yk = _metric(x, ok.columns), _metric(y, ok.columns)
    if color_by is not None and color_by not in params:
        guess = nearest(color_by, params)
        raise SparsimInputError(f"'{color_by}' is not a parameter of this sweep", field="--color-by",
                                hint=f"did you mean '{guess}'?" if guess else "parameters: " + ", ".join(params))
    color = color_by or rec.get("color_by") or (params[0] if params else None)
    dirs = (direction(x), direction(y))
    # the sweep's Pareto set over all its objectives (as in pareto.csv), ringed on the 2-D plot
    import pandas as pd

    from analysis.pareto import non_dominated
    objs = [(o["key"], o["direction"]) for o in rec["objectives"] if o["key"] in ok.columns]
    feas = ok["feasible"].fillna(False).astype(bool) if "feasible" in ok.columns else pd.Series(True, index=ok.index)
    ok = ok.assign(pareto=False)
    if objs and feas.any():
        sub = ok[feas]
        mask = non_dominated(sub[[k for k, _ in objs]].to_numpy(dtype=float), [d == "max" for _, d in objs])
        ok.loc[sub.index[mask], "pareto"] = True
    fig = P.pareto_scatter(ok, x=xk, y=yk, color_by=color, directions=dirs, params=params, sweep_front_col="pareto",
                           sweep_objectives=[o["name"] for o in rec["objectives"]])
    stem = "pareto_energy_latency" if (xk, yk) == ("latency_s", "energy_pj") else f"pareto_{y}_vs_{x}"
    paths = P.save(fig, _out_stem(out, sweep_dir / "plots", stem))
    if effects and params:
        objs = [o["key"] for o in rec["objectives"]]
        searched = [p for p in params if ok[p].nunique() > 1]
        if searched:
            effects_stem = _out_stem(out, sweep_dir / "plots", "parameter_effects")
            if effects_stem == paths[0].with_suffix(""):  # --out FILE.png: keep the Pareto plot, add FILE_effects
                effects_stem = effects_stem.with_name(effects_stem.name + "_effects")
            paths += P.save(P.parameter_effects(ok, searched, objs), effects_stem)
    _report(paths, quiet)


_ARCH = typer.Option(None, "--arch", "-a", help="accelerator spec YAML")
_WORKLOAD = typer.Option(None, "--workload", "-w", help="trace YAML/JSON or SCALE-Sim CSV")
_SET = typer.Option([], "--set", help="override: dotted.path=value (repeatable)")
_SWEEP = typer.Option(None, "--sweep", help="take the design from this sweep folder")
_POINT = typer.Option(None, "--point", help="point key (prefix) or best:OBJECTIVE (default: best of the first)")
_OUT = typer.Option(None, "--out", "-o", help="folder or FILE.png (default: ./plots)")


@plot_app.command("breakdown")
def plot_breakdown(arch: Optional[Path] = _ARCH, workload: Optional[Path] = _WORKLOAD, set_: list[str] = _SET,
                   sweep_dir: Optional[Path] = _SWEEP, point: Optional[str] = _POINT, out: Optional[Path] = _OUT,
                   quiet: bool = QUIET_OPTION):
    """Per-op stacked latency (compute, stall) and energy (MACs, memory levels, leakage) of one design."""
    from analysis import plots as P
    from simulator.simulate import simulate

    spec, trace, label = _design(arch, workload, set_, sweep_dir, point)
    result = simulate(trace, spec)
    fig = P.op_breakdown(result, levels=list(spec.memory), design=label if sweep_dir is not None else None)
    _report(P.save(fig, _out_stem(out, Path("plots"), f"breakdown_{trace.name}_{spec.name}")), quiet)


@plot_app.command("roofline")
def plot_roofline(arch: Optional[Path] = _ARCH, workload: Optional[Path] = _WORKLOAD, set_: list[str] = _SET,
                  sweep_dir: Optional[Path] = _SWEEP, point: Optional[str] = _POINT, out: Optional[Path] = _OUT,
                  quiet: bool = QUIET_OPTION):
    """Per-op roofline of one design: achieved MACs/s vs MACs per DRAM byte under its roofs."""
    from analysis import plots as P
    from simulator.simulate import simulate

    spec, trace, label = _design(arch, workload, set_, sweep_dir, point)
    fig = P.roofline(simulate(trace, spec), spec, design=label if sweep_dir is not None else None)
    _report(P.save(fig, _out_stem(out, Path("plots"), f"roofline_{trace.name}_{spec.name}")), quiet)


def densify(trace):
    """The same trace with every operand dense (the baseline of a sparse model)."""
    from simulator.trace import OperandSparsity
    ops = [op.model_copy(update={"sparsity": OperandSparsity()}) for op in trace.ops]
    return trace.model_copy(update={"ops": ops, "name": f"{trace.name} (dense)"})


@plot_app.command("compare")
def plot_compare(
    arch: list[Path] = typer.Option(..., "--arch", "-a", help="accelerator spec(s); repeat to compare designs"),
    workload: Path = typer.Option(..., "--workload", "-w", help="the (sparse) trace"),
    dense_workload: Optional[Path] = typer.Option(None, "--dense-workload",
                                                  help="the dense trace (default: the workload with sparsity removed)"),
    out: Optional[Path] = _OUT, quiet: bool = QUIET_OPTION,
):
    """Dense vs sparse side by side: latency, energy, EDP and utilisation on each arch, with ratios."""
    from analysis import plots as P
    from simulator.simulate import simulate
    from simulator.spec import load_arch
    from simulator.trace import load_trace

    sparse = load_trace(workload)
    dense = load_trace(dense_workload) if dense_workload else densify(sparse)
    results = {}
    for a in arch:
        spec = load_arch(a)
        results[f"{spec.name}\ndense"] = simulate(dense, spec)
        results[f"{spec.name}\nsparse"] = simulate(sparse, spec)
    fig = P.compare_bars(results, title=f"dense vs sparse: {sparse.name}")
    _report(P.save(fig, _out_stem(out, Path("plots"), f"compare_{sparse.name}")), quiet)
