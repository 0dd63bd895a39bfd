"""`sparsim report`: one self-contained, interactive HTML page for a sweep or a crosscheck.

For a sweep folder (`sparsim sweep ... --out DIR`):
- a Pareto chart (plotly) of the first two objectives with one mark per evaluated design,
  grouped as Pareto set / feasible / violates a constraint; hovering shows every parameter
  and metric of a design, clicking selects it;
- the selected design's parameters and metrics, and its per-op breakdown (latency split into
  compute and memory stall, energy by component), re-simulated from the sweep's base arch
  and the design's parameters (the first workload of a multi-workload sweep);
- the sweep's parameters, constraints and best design per objective.
For crosscheck reports (`sparsim crosscheck --out X.csv`, or a folder of `*_report.csv`
such as `analysis/measured/validation/`): a log-log measured-vs-simulated scatter per file.

The page embeds plotly.js, so it opens without a network. The only script written here is
the glue that swaps the selected design's precomputed breakdown into place on a click.
"""

from __future__ import annotations

import html
import io
import json
from pathlib import Path

from simulator.errors import SparsimInputError, missing_extra
from simulator.inputs import read_json_file, read_text

MAX_BREAKDOWNS = 300


def _plotly():
    try:
        import plotly.graph_objects as go
        import plotly.io as pio
        import plotly.offline
    except ImportError:
        raise missing_extra("report", "plotly", "sparsim report") from None
    return go, pio, plotly.offline


# ----------------------------------------------------------------------------- sweep data

def _load_sweep(sweep_dir: Path) -> tuple[dict, dict, list[dict], set[str]]:
    """(sweep.json, summary.json, finished ok records, keys of the sweep's Pareto set)."""
    from analysis.results_store import ResultsStore
    rec = _sweep_record(sweep_dir / "sweep.json")
    summary_path = sweep_dir / "summary.json"
    summary = read_json_file(summary_path, "sweep summary", finite=False) if summary_path.exists() else {}
    if not isinstance(summary, dict):
        raise SparsimInputError("not a JSON object", path=summary_path, hint="rerun the sweep to rewrite it")
    with ResultsStore(sweep_dir) as store:
        records = [r for r in store.finished().values() if r.get("status") == "ok" and r.get("metrics")]
    if not records:
        raise SparsimInputError("the sweep has no evaluated design yet", path=sweep_dir,
                                hint="run `sparsim sweep SPEC --out DIR` to completion first")
    pareto = set()
    pareto_csv = sweep_dir / "pareto.csv"
    if pareto_csv.exists():
        import csv
        rows = csv.DictReader(io.StringIO(read_text(pareto_csv, "Pareto set CSV"), newline=""))
        if "key" not in (rows.fieldnames or []):
            raise SparsimInputError("no 'key' column", path=pareto_csv, hint="rerun the sweep to rewrite it")
        pareto = {row["key"] for row in rows}
    return rec, summary, records, pareto


def _sweep_record(path: Path) -> dict:
    """sweep.json read through the input layer, with the fields the report uses checked."""
    rec = read_json_file(path, "sweep record", finite=False)
    for key, kind in (("name", str), ("objectives", list), ("spec", dict), ("workloads", list)):
        if not isinstance(rec, dict) or not isinstance(rec.get(key), kind) or not rec.get(key) and key != "spec":
            raise SparsimInputError(f"'{key}' is missing or malformed", path=path, field=key,
                                    hint="the sweep.json was not written by `sparsim sweep`; rerun the sweep")
    if not all(isinstance(o, dict) and {"name", "direction"} <= set(o) for o in rec["objectives"]) or \
            not isinstance(rec["workloads"][0], dict) or not isinstance(rec["workloads"][0].get("name"), str):
        raise SparsimInputError("objectives or workloads are malformed", path=path,
                                hint="the sweep.json was not written by `sparsim sweep`; rerun the sweep")
    return rec


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _metric_text(key: str, value) -> str:
    from analysis.metrics import displayed, label, scale
    if displayed(key) and isinstance(value, (int, float)):
        return f"{label(key)}: {value * scale(key):.4g}"
    return f"{key}: {_fmt(value)}"


def _hover(r: dict, objectives: list[str]) -> str:
    params = "<br>".join(f"{html.escape(k)} = {html.escape(_fmt(v))}" for k, v in r["params"].items())
    metrics = r["metrics"]
    shown = objectives + [k for k in ("power_w", "utilization", "cycles", "stall_cycles", "edp_js")
                          if k in metrics and k not in objectives]
    values = "<br>".join(html.escape(_metric_text(k, metrics[k])) for k in shown if k in metrics)
    state = "feasible" if r.get("feasible", True) else f"violates a constraint (by {r.get('violation', 0):.3g})"
    return f"<b>design {r['key']}</b> ({state})<br>{params}<br>{values}"


def pareto_figure(rec: dict, records: list[dict], pareto: set[str]):
    """Scatter of the first two objectives: one mark per record, in three legend groups."""
    from analysis.metrics import label as metric_label, scale as metric_scale
    go, _, _ = _plotly()
    objectives = [o["key"] for o in rec["objectives"]]
    x, y = (objectives + ["cycles", "energy_pj"])[:2] if len(objectives) >= 2 else (objectives[0], "energy_pj")
    groups = (("Pareto set (all objectives)", lambda r: r["key"] in pareto and r.get("feasible", True),
               dict(color="crimson", size=11, symbol="diamond")),
              ("feasible", lambda r: r["key"] not in pareto and r.get("feasible", True),
               dict(color="#1f77b4", size=8, symbol="circle")),
              ("violates a constraint", lambda r: not r.get("feasible", True),
               dict(color="gray", size=8, symbol="x")))
    fig = go.Figure()
    for name, member, marker in groups:
        sel = [r for r in records if member(r)]
        fig.add_trace(go.Scatter(
            x=[r["metrics"].get(x, float("nan")) * metric_scale(x) for r in sel],
            y=[r["metrics"].get(y, float("nan")) * metric_scale(y) for r in sel],
            mode="markers", name=f"{name} ({len(sel)})", marker=marker, customdata=[r["key"] for r in sel],
            hovertext=[_hover(r, objectives) for r in sel], hoverinfo="text"))
    fig.update_layout(title=f"{rec['name']}: {len(records)} evaluated designs (click one to select it)",
                      xaxis_title=metric_label(x), yaxis_title=metric_label(y), height=560,
                      legend=dict(orientation="h", y=-0.18), clickmode="event+select", margin=dict(t=60, r=20))
    for axis, key in (("xaxis", x), ("yaxis", y)):
        vals = [r["metrics"].get(key) for r in records if r["metrics"].get(key)]
        if vals and min(vals) > 0 and max(vals) / min(vals) >= 10:
            fig.update_layout(**{axis: dict(type="log")})
    return fig


# ----------------------------------------------------------------------------- per-op breakdowns

def _chosen_for_breakdown(records: list[dict], pareto: set[str], summary: dict, limit: int) -> list[dict]:
    best = {b.get("key") for b in summary.get("best", {}).values()}
    ranked = sorted(records, key=lambda r: (r["key"] not in pareto, r["key"] not in best))
    return ranked[:limit]


def breakdown_figure(result, levels: list[str]):
    """Per-op horizontal stacked bars: latency (compute, stall) and energy by component."""
    from plotly.subplots import make_subplots

    from analysis.plots import energy_groups
    go, _, _ = _plotly()
    df = result.to_pandas()
    ops = df["op"].astype(str).tolist()
    per_cycle_ms = (df["latency_s"] / df["cycles"].where(df["cycles"] > 0)).fillna(0.0) * 1e3
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.03,
                        subplot_titles=("latency per op (ms)", "energy per op (mJ)"))
    for name, col, color in (("compute", "compute_cycles", "#1f77b4"), ("memory stall", "stall_cycles", "#ff7f0e")):
        fig.add_trace(go.Bar(y=ops, x=(df[col] * per_cycle_ms).tolist(), name=name, orientation="h",
                             marker_color=color, legendgroup="latency"), row=1, col=1)
    for name, values in energy_groups(df, levels).items():
        fig.add_trace(go.Bar(y=ops, x=[float(v) * 1e-9 for v in values], name=name, orientation="h",
                             legendgroup="energy"), row=1, col=2)
    fig.update_layout(barmode="stack", height=max(360, 18 * len(ops) + 120), margin=dict(t=40, l=10, r=10),
                      yaxis=dict(autorange="reversed"))
    fig.update_xaxes(title_text="latency (ms)", row=1, col=1)
    fig.update_xaxes(title_text="energy (mJ)", row=1, col=2)
    return fig


def breakdowns(rec: dict, chosen: list[dict]) -> dict[str, str]:
    """Design key -> plotly figure JSON of its per-op breakdown (re-simulated)."""
    from analysis.sweep_spec import apply_point
    from simulator.simulate import simulate
    from simulator.spec import arch_from_dict
    from simulator.trace import load_trace
    _, pio, _ = _plotly()
    trace = load_trace(rec["workloads"][0]["path"])
    out = {}
    for r in chosen:
        arch = arch_from_dict(apply_point(rec["base_raw"], r["params"]), path=rec["base_arch"])
        levels = list(arch.memory)
        out[r["key"]] = pio.to_json(breakdown_figure(simulate(trace, arch), levels), validate=False)
    return out


# ----------------------------------------------------------------------------- crosscheck

def crosscheck_figure(path: Path):
    """Log-log measured vs simulated time of every kernel in a crosscheck report CSV, with y = x."""
    import numpy as np
    import pandas as pd
    go, _, _ = _plotly()
    try:
        df = pd.read_csv(io.StringIO(read_text(path, "crosscheck report")))
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise SparsimInputError(f"not a readable CSV ({str(exc).splitlines()[0][:80]})", path=path,
                                hint="write one with `sparsim crosscheck ... --out report.csv`") from None
    missing = {"measured_ms", "predicted_ms"} - set(df.columns)
    if missing:
        raise SparsimInputError(f"not a crosscheck report (no {', '.join(sorted(missing))} column)", path=path,
                                hint="write one with `sparsim crosscheck ... --out report.csv`")
    times = df[["measured_ms", "predicted_ms"]].apply(pd.to_numeric, errors="coerce")
    if len(df) == 0 or not (times > 0).all().all() or not np.isfinite(times.to_numpy()).all():
        raise SparsimInputError("measured_ms and predicted_ms must be positive finite numbers on every row",
                                path=path, hint="write one with `sparsim crosscheck ... --out report.csv`")
    df[["measured_ms", "predicted_ms"]] = times
    label = df.get("kernel", pd.Series(["kernel"] * len(df))).astype(str) + " " + df.get("shape", "").astype(str)
    fig = go.Figure()
    for kernel, sub in df.groupby(df.get("kernel", pd.Series(["kernels"] * len(df)))):
        fig.add_trace(go.Scatter(x=sub["measured_ms"], y=sub["predicted_ms"], mode="markers", name=str(kernel),
                                 hovertext=[f"{label[i]}<br>measured {m:.4g} ms<br>simulated {p:.4g} ms"
                                            for i, m, p in zip(sub.index, sub["measured_ms"], sub["predicted_ms"])],
                                 hoverinfo="text"))
    lo = float(min(df["measured_ms"].min(), df["predicted_ms"].min())) * 0.7
    hi = float(max(df["measured_ms"].max(), df["predicted_ms"].max())) * 1.4
    fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="simulated = measured",
                             line=dict(color="black", dash="dot"), hoverinfo="skip"))
    mape = float((df["predicted_ms"] / df["measured_ms"] - 1).abs().mean() * 100)
    fig.update_layout(title=f"{path.name}: {len(df)} kernels, MAPE {mape:.1f}%", height=520,
                      xaxis=dict(type="log", title="measured time (ms)"),
                      yaxis=dict(type="log", title="simulated time (ms)"))
    return fig


# ----------------------------------------------------------------------------- HTML

def _table(headers: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _design_html(r: dict) -> str:
    from analysis.metrics import displayed, label, scale
    rows = [[k, v] for k, v in r["params"].items()]
    rows += [[label(k), v * scale(k)] if displayed(k) and isinstance(v, (int, float))
             else [k, v] for k, v in sorted(r["metrics"].items())]
    state = "feasible" if r.get("feasible", True) else "violates a constraint"
    return f"<p>design <code>{r['key']}</code> ({state})</p>" + _table(["parameter / metric", "value"], rows)


STYLE = """body{font-family:system-ui,sans-serif;margin:24px;max-width:1300px;color:#222}
table{border-collapse:collapse;margin:8px 0 16px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;
font-size:13px}th{background:#f3f3f3}h2{margin-top:28px}code{background:#f3f3f3;padding:0 3px}
#selected{display:flex;gap:24px;align-items:flex-start}#design{min-width:330px}#breakdown{flex:1}"""

# Glue only: on a click, show the clicked design's precomputed table and breakdown figure.
CLICK_JS = """
var chart = document.getElementById('pareto');
function selectDesign(key) {
  document.getElementById('design').innerHTML = SPARSIM_DESIGNS[key] || '';
  var fig = SPARSIM_BREAKDOWNS[key];
  var box = document.getElementById('breakdown');
  if (fig) { fig = JSON.parse(fig); Plotly.react(box, fig.data, fig.layout, {responsive: true}); }
  else { Plotly.purge(box); box.innerHTML = '<p>No per-op breakdown stored for this design ' +
         '(raise sparsim report --breakdowns).</p>'; }
}
chart.on('plotly_click', function (ev) { selectDesign(ev.points[0].customdata); });
selectDesign(SPARSIM_FIRST);
"""


def _page(title: str, body: str, plotly_js: str, script: str = "") -> str:
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style><script type='text/javascript'>{plotly_js}</script></head><body>"
            f"{body}<script type='text/javascript'>{script}</script></body></html>")


def _json_script(value) -> str:
    return json.dumps(value).replace("</", "<\\/")  # keep '</script>' out of embedded strings


def sweep_report(sweep_dir: Path, max_breakdowns: int = MAX_BREAKDOWNS) -> tuple[str, dict]:
    """(HTML page, facts about it) for a sweep folder."""
    _, pio, offline = _plotly()
    rec, summary, records, pareto = _load_sweep(sweep_dir)
    fig = pareto_figure(rec, records, pareto)
    chosen = _chosen_for_breakdown(records, pareto, summary, max_breakdowns)
    figs = breakdowns(rec, chosen)
    first = chosen[0]["key"]
    params = [[k, v if isinstance(v, str) else json.dumps(v)] for k, v in rec["spec"].get("parameters", {}).items()]
    best = [[name, b.get("metric", ""), _fmt(b.get("value")), b.get("key", ""),
             ", ".join(f"{k}={_fmt(v)}" for k, v in b.get("params", {}).items())]
            for name, b in summary.get("best", {}).items()]
    counts = (f"{len(records)} evaluated designs, {sum(1 for r in records if r.get('feasible', True))} feasible, "
              f"{len(pareto)} in the Pareto set; objectives: "
              + ", ".join(f"{o['name']} ({o['direction']})" for o in rec["objectives"]))
    body = (f"<h1>sweep {html.escape(rec['name'])}</h1><p>{html.escape(counts)}</p>"
            + pio.to_html(fig, include_plotlyjs=False, full_html=False, div_id="pareto")
            + "<h2>selected design</h2><div id='selected'><div id='design'></div><div id='breakdown'></div></div>"
            + f"<p>Per-op breakdown of workload <code>{html.escape(rec['workloads'][0]['name'])}</code>, "
              f"re-simulated for {len(figs)} of {len(records)} designs (Pareto set and best first).</p>"
            + "<h2>parameters</h2>" + _table(["parameter", "values"], params)
            + "<h2>constraints</h2>" + _table(["constraint"], [[c] for c in rec.get("constraints", [])])
            + "<h2>best design per objective</h2>"
            + _table(["objective", "metric", "value", "design", "parameters"], best))
    script = (f"var SPARSIM_BREAKDOWNS = {_json_script(figs)};\n"
              f"var SPARSIM_DESIGNS = {_json_script({r['key']: _design_html(r) for r in records})};\n"
              f"var SPARSIM_FIRST = {_json_script(first)};\n" + CLICK_JS)
    page = _page(f"sparsim sweep {rec['name']}", body, offline.get_plotlyjs(), script)
    return page, {"kind": "sweep", "designs": len(records), "breakdowns": len(figs)}


def crosscheck_report(paths: list[Path]) -> tuple[str, dict]:
    _, pio, offline = _plotly()
    parts = [f"<h1>crosscheck: measured vs simulated</h1><p>{len(paths)} report(s)</p>"]
    for i, path in enumerate(paths):
        parts.append(pio.to_html(crosscheck_figure(path), include_plotlyjs=False, full_html=False,
                                 div_id=f"crosscheck{i}"))
    return _page("sparsim crosscheck", "".join(parts), offline.get_plotlyjs()), {"kind": "crosscheck",
                                                                                 "reports": len(paths)}


def write_report(target: Path, out: Path | None = None, max_breakdowns: int = MAX_BREAKDOWNS) -> tuple[Path, dict]:
    """Write the report of a sweep folder, a crosscheck CSV, or a folder of crosscheck CSVs."""
    target = Path(target)
    if not target.exists():
        raise SparsimInputError("not found", path=target, hint="give a sweep output folder or a crosscheck CSV")
    if target.is_dir() and (target / "sweep.json").exists():
        page, facts = sweep_report(target, max_breakdowns)
    else:
        csvs = [target] if target.is_file() else sorted(target.glob("*_report.csv")) or sorted(target.glob("*.csv"))
        if not csvs:
            raise SparsimInputError("neither a sweep folder (no sweep.json) nor crosscheck reports (no CSV)",
                                    path=target, hint="run `sparsim sweep SPEC --out DIR` or `sparsim crosscheck "
                                    "... --out report.csv` first")
        page, facts = crosscheck_report(csvs)
    out = Path(out) if out else (target if target.is_dir() else target.parent) / "report.html"
    if out.suffix.lower() not in (".html", ".htm"):
        raise SparsimInputError(f"cannot write '{out.suffix}' reports", path=out, field="--out", hint="use .html")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out, facts


__all__ = ["write_report", "sweep_report", "crosscheck_report", "pareto_figure", "breakdown_figure",
           "crosscheck_figure", "MAX_BREAKDOWNS"]
