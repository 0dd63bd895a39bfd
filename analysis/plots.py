"""Plots for sweeps and single designs (matplotlib, Agg backend, PNG + SVG).

- `pareto_scatter`: every design as a point (x vs y, e.g. latency vs energy), coloured by
  a parameter, the Pareto front drawn as a step line and its points labelled;
- `parameter_effects`: one panel per (metric, parameter): all points plus the median;
- `op_breakdown`: per-op stacked latency (compute / stall) and energy (MACs, each memory
  level, leakage, other) of one design;
- `roofline`: per-op achieved MAC rate vs operational intensity under the compute and
  DRAM roofs of one design;
- `compare_bars`: dense vs sparse (or any labelled results) side by side, with ratios.

Every function returns the Figure (tests inspect its axes and artists) and `save(fig,
stem)` writes `stem.png` and `stem.svg` atomically. Units are scaled for reading (ms, mJ).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import LogNorm, Normalize  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from analysis import metrics as registry  # noqa: E402
from analysis.pareto import non_dominated  # noqa: E402
from analysis.plot_labels import axis_texts, overlapping_texts, place_labels  # noqa: E402
from simulator.outputs import atomic_path  # noqa: E402

# metric -> (label, unit, scale applied to the stored value)
# (label, unit, scale) of each displayed metric, from the registry (analysis.metrics)
LEAST_FONT = 9
LABEL_BOX = dict(boxstyle="square,pad=0.1", facecolor="white", edgecolor="none", alpha=0.75)
plt.rcParams.update({"font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10, "legend.fontsize": 9,
                     "svg.fonttype": "none"})


metric_label = registry.label
metric_scale = registry.scale


def short_name(path: str) -> str:
    """'memory.sram.capacity_kib' -> 'sram.capacity_kib' (enough to read, short enough to fit)."""
    parts = path.split(".")
    return ".".join(parts[-2:]) if len(parts) > 2 else path


def param_label(path: str) -> str:
    """'memory.sram.capacity_kib' -> 'sram.capacity_kib (KiB)': a short name with the unit its suffix names."""
    from simulator.docs_gen import field_unit
    unit = field_unit(path.rsplit(".", 1)[-1])
    return f"{short_name(path)} ({unit})" if unit else short_name(path)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def save(fig: Figure, stem: str | Path, formats: Sequence[str] = ("png", "svg")) -> list[Path]:
    """Write stem.png and stem.svg atomically; returns the paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for fmt in formats:
        path = stem.with_suffix(f".{fmt}")
        with atomic_path(path, suffix=f".tmp.{fmt}") as tmp:
            fig.savefig(tmp, format=fmt, dpi=130, bbox_inches="tight")
        out.append(path)
    plt.close(fig)
    return out


def _wide(values) -> bool:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return len(v) > 1 and v.min() > 0 and v.max() / v.min() >= 10


def _log_axis(ax, which: str) -> None:
    """Log scale with plain-number labels at 1, 2, 5 x 10^k (readable without exponent maths)."""
    from matplotlib import ticker
    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    axis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(ticker.NullFormatter())


def _designs(n: int) -> str:
    return f"{n} design" if n == 1 else f"{n} designs"


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


# ----------------------------------------------------------------------------- sweep plots

def _scatter_designs(fig: Figure, ax, df: pd.DataFrame, X, Y, feasible, color_by: str | None) -> None:
    """Every design as a point, coloured by a numeric parameter (with a colour bar) or one colour and
    marker per category; designs that violate a constraint drawn as crosses."""
    if color_by and color_by in df.columns and _is_numeric(df[color_by]):
        c = df[color_by].to_numpy(float)
        norm = LogNorm(c.min(), c.max()) if _wide(c) and c.min() > 0 else Normalize(np.nanmin(c), np.nanmax(c))
        sc = ax.scatter(X[feasible], Y[feasible], c=c[feasible], cmap="viridis", norm=norm, s=22, alpha=0.85,
                        label="designs", zorder=2)
        if (~feasible).any():
            ax.scatter(X[~feasible], Y[~feasible], c=c[~feasible], cmap="viridis", norm=norm, s=22, marker="x",
                       alpha=0.6, label="violates a constraint", zorder=2)
        cb = fig.colorbar(sc, ax=ax, location="right", pad=0.01)
        cb.set_label(param_label(color_by))
        if isinstance(norm, LogNorm):
            _log_axis(cb.ax, "y")
    elif color_by and color_by in df.columns:
        cats = list(dict.fromkeys(df[color_by].astype(str)))
        cmap = plt.get_cmap("tab10" if len(cats) <= 10 else "tab20")
        markers = "osD^vP*X"
        for i, cat in enumerate(cats):
            sel = (df[color_by].astype(str) == cat).to_numpy()
            # a distinct marker and shrinking size per category, so designs that coincide stay visible
            ax.scatter(X[sel & feasible], Y[sel & feasible], color=cmap(i % cmap.N), marker=markers[i % len(markers)],
                       s=max(8, 34 - 7 * i), alpha=0.85, label=f"{short_name(color_by)}={cat}", zorder=2)
            if (sel & ~feasible).any():
                ax.scatter(X[sel & ~feasible], Y[sel & ~feasible], color=cmap(i % cmap.N), s=22, marker="x",
                           alpha=0.6, zorder=2)
        if (~feasible).any():  # one legend entry for the crosses of every category
            ax.scatter([], [], color="gray", s=22, marker="x", label="violates a constraint")
    else:
        ax.scatter(X[feasible], Y[feasible], s=22, alpha=0.85, color="tab:blue", label="designs", zorder=2)
        if (~feasible).any():
            ax.scatter(X[~feasible], Y[~feasible], s=22, marker="x", color="tab:gray", alpha=0.6,
                       label="violates a constraint", zorder=2)


def pareto_scatter(df: pd.DataFrame, x: str = "latency_s", y: str = "energy_pj", color_by: str | None = None,
                   directions: tuple[str, str] = ("min", "min"), feasible_col: str | None = "feasible",
                   max_labels: int = 12, title: str | None = None, params: Sequence[str] | None = None,
                   sweep_front_col: str | None = None, sweep_objectives: Sequence[str] | None = None) -> Figure:
    """All designs (x vs y) coloured by `color_by`, with the Pareto front of the feasible ones drawn and labelled.

    With `sweep_front_col` (a boolean column: the sweep's Pareto set over all its objectives, e.g.
    latency, energy and area), those designs are also ringed, so a 3-objective pareto.csv can be
    found on a 2-D plot."""
    df = df[df[x].notna() & df[y].notna()].reset_index(drop=True)
    fig, (ax, side) = plt.subplots(1, 2, figsize=(11.5, 5.8), layout="constrained",
                                   gridspec_kw={"width_ratios": [3.2, 1.25]})
    side.axis("off")
    sx, sy = metric_scale(x), metric_scale(y)
    X, Y = df[x].to_numpy(float) * sx, df[y].to_numpy(float) * sy
    feasible = df[feasible_col].fillna(False).astype(bool).to_numpy() if feasible_col and feasible_col in df \
        else np.ones(len(df), dtype=bool)
    _scatter_designs(fig, ax, df, X, Y, feasible, color_by)
    front_idx = np.array([], dtype=int)
    if feasible.any():
        idx = np.flatnonzero(feasible)
        mask = non_dominated(np.column_stack([X[idx], Y[idx]]), [d == "max" for d in directions])
        front_idx = idx[mask]
        order = np.argsort(X[front_idx], kind="stable")
        front_idx = front_idx[order]
        ax.plot(X[front_idx], Y[front_idx], color="crimson", lw=1.6, drawstyle="steps-post", marker="o",
                mfc="none", ms=9, mew=1.5, label=f"Pareto front ({_designs(len(front_idx))})", zorder=3, gid="pareto")
        if sweep_front_col and sweep_front_col in df.columns:
            on = df[sweep_front_col].fillna(False).astype(bool).to_numpy() & feasible
            if on.any() and set(np.flatnonzero(on)) != set(front_idx.tolist()):
                names = ", ".join(sweep_objectives) if sweep_objectives else "all objectives"
                ax.scatter(X[on], Y[on], s=70, facecolors="none", edgecolors="black", linewidths=1.0, marker="D",
                           label=f"Pareto set over {names} ({_designs(int(on.sum()))})", zorder=3,
                           gid="pareto-set")
        if params is None:
            params = [c for c in df.columns if "." in c and "/" not in c]
        params = [p for p in params if p in df.columns]
        step = max(1, math.ceil(len(front_idx) / max_labels))
        lines = []
        tags = [f"P{n * step + 1}" for n in range(len(front_idx[::step]))]
        for n, i in enumerate(front_idx[::step]):
            tag = tags[n]
            kv = [f"{short_name(p).split('.')[-1]}={_fmt(df.loc[i, p])}" for p in params[:6]]
            desc = "".join(f"\n    {', '.join(kv[j:j + 2])}" for j in range(0, len(kv), 2))
            lines.append(f"{tag}: {_fmt(X[i])} / {_fmt(Y[i])}{desc}")
        if len(front_idx) > len(lines):
            lines.append(f"(every {step}th of {len(front_idx)} shown)")
        labelled = front_idx[::step]
        side.text(0.0, 1.0, f"Pareto designs\n({metric_label(x)} / {metric_label(y)})\n\n" + "\n".join(lines),
                  va="top", ha="left", fontsize=LEAST_FONT - 0.5, family="monospace", transform=side.transAxes,
                  gid="pareto-table")
    if _wide(X):
        _log_axis(ax, "x")
    if _wide(Y):
        _log_axis(ax, "y")
    ax.set_xlabel(metric_label(x))
    ax.set_ylabel(metric_label(y))
    ax.set_title(title or f"{registry.short_label(y)} vs {registry.short_label(x)}: "
                          f"{_designs(len(df))}, {len(front_idx)} on the Pareto front")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.11), ncol=2, framealpha=0.85)  # below: never on a label
    if len(front_idx):
        place_labels(ax, list(zip(X[labelled], Y[labelled])), tags, markers=list(zip(X, Y)), gid="pareto-label",
                     fontsize=LEAST_FONT, color="crimson", fontweight="bold", bbox=LABEL_BOX)
    fig._sparsim = {"kind": "pareto", "front_index": front_idx.tolist(), "x": x, "y": y,
                    "front_keys": df.loc[front_idx, "key"].tolist() if "key" in df.columns else []}
    return fig


def parameter_effects(df: pd.DataFrame, params: Sequence[str], metrics: Sequence[str]) -> Figure:
    """One panel per (metric, parameter): every design's metric against the parameter, and the median."""
    params, metrics = list(params), list(metrics)
    nr, nc = len(metrics), len(params)
    fig, axes = plt.subplots(nr, nc, figsize=(3.6 * nc + 0.6, 2.9 * nr + 0.6), squeeze=False, layout="constrained")
    rng = np.random.default_rng(0)
    for r, m in enumerate(metrics):
        s = metric_scale(m)
        for c, p in enumerate(params):
            ax = axes[r][c]
            sub = df[[p, m]].dropna()
            vals = list(dict.fromkeys(sub[p]))
            numeric = _is_numeric(sub[p])
            if numeric:
                vals = sorted(vals)
            if not numeric or len(vals) <= 12:
                pos = {v: i for i, v in enumerate(vals)}
                xs = sub[p].map(pos).to_numpy(float) + rng.uniform(-0.15, 0.15, len(sub))
                ax.scatter(xs, sub[m] * s, s=10, alpha=0.45, color="tab:blue")
                med = [sub.loc[sub[p] == v, m].median() * s for v in vals]
                ax.plot(range(len(vals)), med, color="crimson", marker="o", lw=1.5, label="median")
                ax.set_xticks(range(len(vals)))
                ax.set_xticklabels([_fmt(v) for v in vals], rotation=45 if len(vals) > 5 else 0,
                                   fontsize=LEAST_FONT)
            else:
                ax.scatter(sub[p], sub[m] * s, s=10, alpha=0.45, color="tab:blue")
                if _wide(sub[p]):
                    ax.set_xscale("log")
            if _wide(sub[m]):
                _log_axis(ax, "y")
            ax.set_xlabel(param_label(p))
            ax.set_ylabel(metric_label(m))
            ax.grid(True, alpha=0.3)
    fig.suptitle("effect of each parameter (every design; line: median)")
    fig._sparsim = {"kind": "effects", "params": params, "metrics": metrics}
    return fig


# ----------------------------------------------------------------------------- one design

def energy_groups(df: pd.DataFrame, levels: Sequence[str]) -> dict[str, np.ndarray]:
    cols = [c for c in df.columns if c.startswith("energy_") and c.endswith("_pj") and c != "energy_pj"]
    groups: dict[str, np.ndarray] = {}

    def add(name, col):
        v = df[col].fillna(0.0).to_numpy(float)
        groups[name] = groups.get(name, 0.0) + v

    for col in cols:
        comp = col[len("energy_"):-len("_pj")]
        if comp in ("mac", "gated_mac", "index_select"):
            add("compute (MACs)", col)
        elif comp == "leakage":
            add("leakage", col)
        else:
            level = next((lv for lv in levels if comp in (f"{lv}_read", f"{lv}_write")), None)
            add(level if level else comp, col)
    return groups


def op_breakdown(result, levels: Sequence[str] | None = None, max_ops: int = 60, design: str | None = None) -> Figure:
    """Per-op stacked latency (compute, stall) and energy (MACs, memory levels, leakage).

    `design` (e.g. 'rows=64, cols=64') names the chosen design point in the title."""
    df = result.to_pandas()
    if levels is None:
        levels = [c[:-len("_read_bytes")] for c in df.columns if c.endswith("_read_bytes")]
    all_ops = len(df)
    if len(df) > max_ops:  # keep the costliest ops, leave the rest out (the title says so)
        df = df.sort_values("latency_s", ascending=False).head(max_ops).sort_index()
    n = len(df)
    labels = df["op"].astype(str).tolist()
    fig, (ax_t, ax_e) = plt.subplots(1, 2, figsize=(13, max(3.5, 0.26 * n + 1.8)), sharey=True,
                                     layout="constrained")
    y = np.arange(n)
    cyc_to_ms = np.where(df["cycles"] > 0, df["latency_s"] / df["cycles"].replace(0, np.nan), 0.0) * 1e3
    compute_ms = df["compute_cycles"].to_numpy(float) * np.nan_to_num(cyc_to_ms)
    stall_ms = df["stall_cycles"].to_numpy(float) * np.nan_to_num(cyc_to_ms)
    ax_t.barh(y, compute_ms, color="tab:blue", label="compute")
    ax_t.barh(y, stall_ms, left=compute_ms, color="tab:orange", label="memory stall")
    ax_t.set_xlabel("latency (ms)")
    ax_t.set_title("latency per op")
    ax_t.legend(loc="lower right")
    groups = energy_groups(df, levels)
    left = np.zeros(n)
    cmap = plt.get_cmap("tab10")
    for i, (name, vals) in enumerate(groups.items()):
        vals = np.asarray(vals, float) * 1e-9 * np.ones(n)
        ax_e.barh(y, vals, left=left, color=cmap(i % 10), label=name)
        left += vals
    ax_e.set_xlabel("energy (mJ)")
    ax_e.set_title("energy per op")
    ax_e.legend(loc="lower right")
    ax_t.set_yticks(y)
    ax_t.set_yticklabels(labels, fontsize=LEAST_FONT if n <= 40 else 7)
    ax_t.set_ylabel("op")
    ax_t.invert_yaxis()
    for ax in (ax_t, ax_e):
        ax.grid(True, axis="x", alpha=0.3)
    t = result.totals
    shown = f"; the {n} slowest of {all_ops} ops shown" if n < all_ops else ""
    fig.suptitle(f"{result.workload} on {result.arch}{f' ({design})' if design else ''}: "
                 f"{t['latency_s'] * 1e3:.4g} ms, {t['energy_pj'] * 1e-9:.4g} mJ in total{shown}")
    fig._sparsim = {"kind": "breakdown", "ops": labels, "energy_groups": list(groups)}
    return fig


def _rate(v: float, unit: str) -> str:
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= scale:
            return f"{v / scale:.3g} {prefix}{unit}"
    return f"{v:.3g} {unit}"


def roofline(result, arch, design: str | None = None) -> Figure:
    """Per-op achieved MACs/s vs MACs per DRAM byte, under the compute roof and the DRAM-bandwidth roof."""
    df = result.to_pandas()
    df = df[df["latency_s"] > 0].reset_index(drop=True)
    dram = arch.offchip_name
    traffic = df.get(f"{dram}_read_bytes", 0.0) + df.get(f"{dram}_write_bytes", 0.0)
    macs = df["macs"].to_numpy(float)
    traffic = np.asarray(traffic, float)
    intensity = np.where(traffic > 0, macs / np.where(traffic > 0, traffic, 1), np.nan)
    rate = macs / df["latency_s"].to_numpy(float)
    peak_per_cycle = getattr(arch.compute, "peak_macs_per_cycle", None)
    if peak_per_cycle is None:  # from the rows: util = macs / (cycles x peak)
        u = df["utilization"].to_numpy(float)
        ok = (u > 0) & (df["cycles"] > 0)
        peak_per_cycle = float(np.median(macs[ok] / (df["cycles"].to_numpy(float)[ok] * u[ok]))) if ok.any() else 1.0
    peak = float(peak_per_cycle) * arch.clock_hz
    bw = arch.memory[dram].bytes_per_cycle * arch.clock_hz
    fig, ax = plt.subplots(figsize=(8, 5.6), layout="constrained")
    finite = np.isfinite(intensity) & (rate > 0)
    lo = np.nanmin(intensity[finite]) / 4 if finite.any() else 0.1
    hi = np.nanmax(intensity[finite]) * 4 if finite.any() else 1e4
    if math.isfinite(bw):
        lo = min(lo, peak / bw / 8)
        hi = max(hi, peak / bw * 8)
        xs = np.geomspace(lo, hi, 200)
        ax.plot(xs, np.minimum(peak, bw * xs), color="black", lw=2, label=f"roof: {_rate(peak, 'MAC/s')}, "
                f"{_rate(bw, 'B/s')} ({dram})", gid="roof")
        ax.axvline(peak / bw, color="gray", ls=":", lw=1)
    else:
        xs = np.geomspace(lo, hi, 2)
        ax.plot(xs, [peak, peak], color="black", lw=2, label=f"compute roof {_rate(peak, 'MAC/s')}", gid="roof")
    kinds = list(dict.fromkeys(df["kind"]))
    cmap = plt.get_cmap("tab10")
    for i, kind in enumerate(kinds):
        sel = (df["kind"] == kind).to_numpy() & finite
        if not sel.any():
            continue
        ax.scatter(intensity[sel], rate[sel], color=cmap(i % 10), s=28, label=f"{kind} ops", zorder=3)
    order = np.argsort(-df["latency_s"].to_numpy(float), kind="stable")
    labelled: list[int] = []
    for i in order:  # the 8 slowest ops, skipping any that sit on top of one already labelled
        if len(labelled) == 8:
            break
        pos = (math.log10(intensity[i]), math.log10(rate[i])) if finite[i] else None
        if pos is None or any(abs(pos[0] - math.log10(intensity[j])) < 0.08 and
                              abs(pos[1] - math.log10(rate[j])) < 0.06 for j in labelled):
            continue
        labelled.append(i)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"operational intensity (MACs performed per {dram} byte)")
    ax.set_ylabel("achieved MACs/s")
    ax.set_title(f"roofline: {result.workload} on {result.arch}{f' ({design})' if design else ''} "
                 f"({int(finite.sum())} ops)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2)  # below the axes: never on a label
    place_labels(ax, [(intensity[i], rate[i]) for i in labelled], [str(df.loc[i, "op"]) for i in labelled],
                 markers=list(zip(intensity[finite], rate[finite])), gid="op-label", fontsize=LEAST_FONT - 1,
                 bbox=LABEL_BOX)
    fig._sparsim = {"kind": "roofline", "peak_macs_per_s": peak, "bandwidth_bytes_per_s": bw,
                    "ops": df.loc[finite, "op"].tolist()}
    return fig


def compare_bars(results: dict, metrics: Sequence[str] = ("latency_s", "energy_pj", "edp_js", "utilization"),
                 title: str | None = None) -> Figure:
    """Side-by-side bars of totals for labelled results (e.g. dense vs 2:4), each annotated with its ratio
    to the first."""
    labels = list(results)
    metrics = list(metrics)
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.4 * len(metrics) + 0.8, 4.6), layout="constrained")
    axes = np.atleast_1d(axes)
    cmap = plt.get_cmap("tab10")
    for ax, m in zip(axes, metrics):
        vals = np.array([results[k].totals.get(m, np.nan) for k in labels], float) * metric_scale(m)
        bars = ax.bar(range(len(labels)), vals, color=[cmap(i % 10) for i in range(len(labels))])
        base = vals[0]
        for i, (b, v) in enumerate(zip(bars, vals)):
            ratio = f"\n{v / base:.2f}x" if i and base and np.isfinite(base) else ""
            ax.annotate(f"{v:.3g}{ratio}", (b.get_x() + b.get_width() / 2, v), ha="center", va="bottom",
                        fontsize=LEAST_FONT, xytext=(0, 2), textcoords="offset points")
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels, fontsize=LEAST_FONT)
        ax.set_ylabel(metric_label(m))
        ax.set_title(registry.short_label(m))
        ax.margins(y=0.2)
        ax.grid(True, axis="y", alpha=0.3)
    if overlapping_texts(fig, axes[0].get_xticklabels()):
        # names too long to sit side by side: number the bars and name them in one legend below
        for ax in axes:
            ax.set_xticklabels([str(i + 1) for i in range(len(labels))], fontsize=LEAST_FONT)
        handles = [plt.Rectangle((0, 0), 1, 1, color=cmap(i % 10)) for i in range(len(labels))]
        fig.legend(handles, [f"{i + 1}: {label}".replace("\n", " ") for i, label in enumerate(labels)],
                   loc="outside lower center", ncol=min(3, len(labels)), fontsize=LEAST_FONT)
    fig.suptitle(title or " vs ".join(labels).replace("\n", " ") + " (ratios to the first bar)")
    fig._sparsim = {"kind": "compare", "labels": labels, "metrics": metrics}
    return fig


__all__ = ["pareto_scatter", "parameter_effects", "op_breakdown", "roofline", "compare_bars", "save",
           "metric_label", "param_label", "energy_groups", "axis_texts", "overlapping_texts"]
