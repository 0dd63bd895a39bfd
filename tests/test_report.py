"""`sparsim report`: one self-contained HTML page per sweep or crosscheck, checked in headless Chromium."""

import json
import re
import shutil
import subprocess
import sys

import pytest

from cli_helpers import run_cli
from conftest import ROOT

pytest.importorskip("plotly")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    from analysis.sweep import run_sweep
    from simulator import shipped
    out = tmp_path_factory.mktemp("sweep")
    # a shipped example sweep, cut to 8 evenly spread grid points to keep the test short
    run_sweep(shipped.find("sweeps", "edge_npu_resnet50"), out, max_points=8, executor="serial", plots=False)
    return out


@pytest.fixture(scope="module")
def report(sweep_dir):
    from analysis.report import write_report
    path, facts = write_report(sweep_dir)
    return path, facts


def _designs(sweep_dir):
    from analysis.results_store import ResultsStore
    with ResultsStore(sweep_dir) as store:
        return {k: r for k, r in store.finished().items() if r["status"] == "ok"}


def test_report_is_one_offline_file_with_every_design(sweep_dir, report):
    path, facts = report
    text = path.read_text()
    designs = _designs(sweep_dir)
    assert facts["designs"] == len(designs) == 8
    assert not re.search(r"<script[^>]+src=", text)          # plotly.js is inlined, nothing is fetched
    assert "Plotly" in text and all(key in text for key in designs)
    assert facts["breakdowns"] == len(designs)


def test_breakdowns_follow_the_limit_pareto_first(sweep_dir, tmp_path):
    from analysis.report import write_report
    _, facts = write_report(sweep_dir, tmp_path / "r.html", max_breakdowns=2)
    assert facts["breakdowns"] == 2


def test_cli_writes_report_and_json(capsys, sweep_dir, tmp_path):
    code, out, _ = run_cli(capsys, "report", sweep_dir, "--out", tmp_path / "x.html", "--json")
    assert code == 0 and json.loads(out)["designs"] == 8 and (tmp_path / "x.html").exists()


def test_crosscheck_report_has_one_mark_per_kernel(tmp_path):
    import pandas as pd

    from analysis.report import crosscheck_figure
    csv = ROOT / "analysis" / "measured" / "validation" / "published_a100_fp16_report.csv"
    fig = crosscheck_figure(csv)
    marks = sum(len(t.x) for t in fig.data if t.mode == "markers")
    assert marks == len(pd.read_csv(csv))


@pytest.mark.parametrize("target,message", [("missing", "not found"), ("empty", "neither a sweep folder")])
def test_bad_target_is_one_error_line(capsys, tmp_path, target, message):
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(capsys, "report", tmp_path / target)
    assert code == 2 and err.startswith("error:") and message in err and len(err.strip().splitlines()) == 1


def test_missing_plotly_gives_the_install_hint(capsys, sweep_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "plotly", None)
    monkeypatch.setitem(sys.modules, "plotly.graph_objects", None)
    code, _, err = run_cli(capsys, "report", sweep_dir)
    assert code == 2 and "pip install 'sparsim[report]'" in err


def _chromium(args, url, tmp_path):
    cmd = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
           f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=8000", *args, url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")
def test_page_loads_clicks_and_renders_in_chromium(sweep_dir, report, tmp_path):
    path, _ = report
    designs = _designs(sweep_dir)
    other = sorted(designs)[-1]
    # Emulate a click on one design through plotly's own event, then read the rendered DOM.
    page = path.read_text().replace(
        "</body>", f"<script>document.getElementById('pareto').emit('plotly_click', "
                   f"{{points: [{{customdata: '{other}'}}]}});</script></body>")
    clicked = tmp_path / "clicked.html"
    clicked.write_text(page)
    run = _chromium(["--dump-dom"], clicked.as_uri(), tmp_path)
    assert run.returncode == 0
    console = [line for line in run.stderr.splitlines() if ":CONSOLE" in line]
    assert not console, console
    dom = run.stdout
    chart = dom[dom.index('id="pareto"'):dom.index('id="design"')]
    assert chart.count('<path class="point') == len(designs)            # one mark per evaluated design
    selected = dom[dom.index('id="design"'):dom.index('id="breakdown"')]
    assert other in selected                                            # the click selected that design
    breakdown = dom[dom.index('id="breakdown"'):]
    assert "latency per op" in breakdown and 'class="point"' in breakdown
    shot = tmp_path / "shot.png"
    run = _chromium(["--window-size=1280,1400", f"--screenshot={shot}"], path.as_uri(), tmp_path)
    assert run.returncode == 0 and shot.exists()
    import matplotlib.image
    pixels = matplotlib.image.imread(shot)[..., :3]
    assert (pixels.min(axis=2) < 0.9).mean() > 0.02 and pixels.std() > 0.05   # not a blank page
