"""Timelines of one simulated system run: a Chrome-trace JSON and a per-core Gantt chart.

Chrome trace (the Trace Event Format read by Perfetto and chrome://tracing): one process
for the system, one thread (track) per core, one complete event ("ph": "X") per interval
a core spent on an op shard (or receiving over the NoC), with timestamps in microseconds.
The Gantt chart is drawn with matplotlib's Agg backend (no display needed): one row per
core, one bar per interval, coloured by op kind or name.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from simulator.outputs import write_atomic
from simulator.system import Interval


def chrome_trace(intervals: Iterable[Interval], cores: list[str], *, name: str = "sparsim") -> dict:
    """The Trace Event Format object: metadata naming each core's track, then the intervals."""
    tid = {core: i for i, core in enumerate(cores)}
    events: list[dict] = [{"name": "process_name", "ph": "M", "pid": 0, "tid": 0, "args": {"name": name}}]
    for core, i in tid.items():
        events.append({"name": "thread_name", "ph": "M", "pid": 0, "tid": i, "args": {"name": core}})
        events.append({"name": "thread_sort_index", "ph": "M", "pid": 0, "tid": i, "args": {"sort_index": i}})
    for iv in sorted(intervals, key=lambda iv: (iv.start_s, tid.get(iv.core, 0))):
        events.append({"name": iv.name, "cat": iv.category, "ph": "X", "pid": 0, "tid": tid[iv.core],
                       "ts": iv.start_s * 1e6, "dur": max(iv.end_s - iv.start_s, 0.0) * 1e6,
                       "args": {"op": iv.op}})
    return {"traceEvents": events, "displayTimeUnit": "ns"}


def write_chrome_trace(path: str | Path, intervals: Iterable[Interval], cores: list[str], *,
                       name: str = "sparsim") -> Path:
    return write_atomic(Path(path), json.dumps(chrome_trace(intervals, cores, name=name)))


def write_gantt(path: str | Path, intervals: Iterable[Interval], cores: list[str], *, title: str = "",
                max_labels: int = 40) -> Path:
    """A per-core Gantt chart (PNG/SVG/PDF by suffix). Bars are labelled when there are few."""
    if Path(path).suffix.lower() not in (".png", ".svg", ".pdf"):
        from simulator.errors import SparsimInputError
        raise SparsimInputError(f"cannot write '{Path(path).suffix}' charts", path=path, field="--gantt",
                                hint="use .png, .svg or .pdf")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    intervals = list(intervals)
    span = max((iv.end_s for iv in intervals), default=0.0)
    unit, scale = next(((u, f) for u, f in (("s", 1.0), ("ms", 1e3), ("us", 1e6)) if span * f >= 1.0), ("ns", 1e9))
    names = sorted({iv.op.split("[")[0].split(".e")[0] for iv in intervals})
    cmap = plt.get_cmap("tab20")
    colour = {n: cmap(i % 20) for i, n in enumerate(names)}
    fig, ax = plt.subplots(figsize=(12, max(2.5, 1.0 + 0.5 * len(cores))))
    row = {core: i for i, core in enumerate(cores)}
    for iv in intervals:
        key = iv.op.split("[")[0].split(".e")[0]
        ax.broken_barh([(iv.start_s * scale, (iv.end_s - iv.start_s) * scale)], (row[iv.core] - 0.4, 0.8),
                       facecolors=colour[key] if iv.category == "op" else "lightgrey", edgecolor="black",
                       linewidth=0.2)
    if len(intervals) <= max_labels:
        for iv in intervals:
            ax.text((iv.start_s + iv.end_s) / 2 * scale, row[iv.core], iv.name, ha="center", va="center",
                    fontsize=6, clip_on=True)
    if 1 < len(names) <= 20:
        from matplotlib.patches import Patch
        ax.legend(handles=[Patch(facecolor=colour[n], label=n) for n in names], fontsize=6, loc="upper left",
                  bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.set_yticks(range(len(cores)), cores)
    ax.invert_yaxis()
    ax.set_xlabel(f"time ({unit})")
    ax.set_xlim(0, span * scale if span > 0 else 1)
    ax.set_title(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


__all__ = ["chrome_trace", "write_chrome_trace", "write_gantt"]
