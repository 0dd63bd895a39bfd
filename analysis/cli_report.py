"""`sparsim report OUT_DIR`: a self-contained interactive HTML page for a sweep or crosscheck output.

Registered on the main app through its `sparsim.commands` entry point (pyproject.toml); plotly is an optional extra
(`sparsim[report]`), imported only when the command runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from simulator.cli import JSON_RESULT_OPTION, QUIET_OPTION, app, console


@app.command()
def report(
    target: Path = typer.Argument(..., help="a sweep output folder, a crosscheck report CSV, or a folder of them"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="HTML file to write (default: TARGET/report.html)"),
    breakdowns: int = typer.Option(300, "--breakdowns", help="designs whose per-op breakdown is embedded "
                                   "(Pareto set and best designs first)"),
    as_json: bool = JSON_RESULT_OPTION,
    quiet: bool = QUIET_OPTION,
):
    """Write one HTML file (opens offline) with an interactive Pareto chart and per-design breakdowns."""
    from analysis.report import write_report
    path, facts = write_report(target, out, max(1, breakdowns))
    if as_json:
        print(json.dumps({"out": str(path), **facts}))
    elif not quiet:
        console.print(f"wrote {path} (open it in a browser; no network needed)", highlight=False, soft_wrap=True)
