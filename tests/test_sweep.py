"""Sweeps finish, write their outputs, resume after a kill losing nothing, and agree across executors."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pandas as pd
import pytest

from analysis.sweep import TEST_DELAY_ENV, combine_totals, run_sweep
from test_sweep_spec import ROOT, make_sweep


@pytest.fixture(autouse=True)
def pinned_code_version(monkeypatch):
    # Other work edits simulator/ concurrently; pin the code hash so reruns within a test match.
    monkeypatch.setenv("SPARSIM_CODE_VERSION", "test-pinned")


def _metrics(result):
    cols = ["key", "latency_s", "energy_pj", "edp_js", "area_mm2", "cycles"]
    return result.frame[cols].sort_values("key").reset_index(drop=True)


def test_grid_sweep_writes_everything_and_rerun_reuses_all(tmp_path):
    spec = make_sweep(tmp_path)
    out = tmp_path / "out"
    r = run_sweep(spec, out, jobs=2, executor="local")
    s = r.summary
    assert s["points"] == 64 and s["evaluated"] == 64 and s["reused"] == 0 and s["failed"] == 0
    for name in ("results.sqlite", "results.parquet", "pareto.csv", "summary.json", "sweep.json"):
        assert (out / name).exists(), name
    assert json.loads((out / "summary.json").read_text())["evaluated"] == 64
    pareto = pd.read_csv(out / "pareto.csv")
    assert len(pareto) == s["pareto_size"] >= 1
    assert {"compute.rows", "compute.cols", "latency_s", "energy_pj"} <= set(pareto.columns)
    assert (pareto["compute.rows"] == pareto["compute.cols"]).all()  # the tied parameter
    assert set(s["best"]) == {"latency", "energy"}
    feasible = r.frame[r.frame["feasible"] == True]  # noqa: E712
    assert s["best"]["latency"]["value"] == pytest.approx(feasible["latency_s"].min())
    assert s["best"]["energy"]["value"] == pytest.approx(feasible["energy_pj"].min())
    for b in s["best"].values():  # ties are broken by the other objective: the best is never dominated
        assert b["key"] in set(pareto["key"])
    assert pd.read_parquet(out / "results.parquet").shape[0] == 64
    pngs = sorted(p.name for p in (out / "plots").glob("*.png"))
    assert "pareto_energy_latency.png" in pngs and "parameter_effects.png" in pngs
    assert all((out / "plots" / p).stat().st_size > 1000 for p in pngs)
    (tmp_path / "plain.txt").write_text("x")  # outputs get the mode of an ordinary file, not mkstemp's 0600
    mode = (tmp_path / "plain.txt").stat().st_mode & 0o777
    for f in ("pareto.csv", "summary.json", "results.parquet", "plots/pareto_energy_latency.png"):
        assert (out / f).stat().st_mode & 0o777 == mode, f
    svg = (out / "plots" / "pareto_energy_latency.svg").read_text()
    assert 'id="pareto"' in svg and "latency (ms)" in svg and "energy (mJ)" in svg
    assert f"Pareto front ({s['pareto_size']} design" in svg and ">P1<" in svg

    again = run_sweep(spec, out, jobs=2, executor="local", plots=False)
    assert again.summary["evaluated"] == 0 and again.summary["reused"] == 64
    assert json.loads((out / "summary.json").read_text())["reused"] == 64
    pd.testing.assert_frame_equal(_metrics(r), _metrics(again))
    with sqlite3.connect(out / "results.sqlite") as con:
        assert con.execute("SELECT COUNT(*), COUNT(DISTINCT key) FROM points").fetchone() == (64, 64)


@pytest.mark.parametrize("strategy", ["grid", {"random": 24}], ids=["grid", "random"])
def test_serial_local_and_dask_give_identical_metrics(tmp_path, strategy):
    distributed = pytest.importorskip("distributed")
    spec = make_sweep(tmp_path, strategy=strategy, seed=3)
    serial = run_sweep(spec, tmp_path / "serial", executor="serial", plots=False)
    local = run_sweep(spec, tmp_path / "local", executor="local", jobs=2, plots=False)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, protocol="tcp", host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        dask = run_sweep(spec, tmp_path / "dask", executor=f"dask://{cluster.scheduler_address}", plots=False)
    assert dask.summary["executor"].startswith("dask:")
    for other in (local, dask):
        assert other.summary["evaluated"] == serial.summary["evaluated"] > 0
        pd.testing.assert_frame_equal(_metrics(serial), _metrics(other))


def test_same_seed_same_results(tmp_path):
    for strategy in ({"random": 16}, {"nsga2": 16, "population": 8}):
        spec = make_sweep(tmp_path, strategy=strategy, seed=7)
        a = run_sweep(spec, tmp_path / f"a{len(strategy)}", plots=False)
        b = run_sweep(spec, tmp_path / f"b{len(strategy)}", plots=False)
        assert a.frame["key"].tolist() == b.frame["key"].tolist()
        pd.testing.assert_frame_equal(_metrics(a), _metrics(b))
        assert a.summary["pareto_size"] == b.summary["pareto_size"]
        other = tmp_path / f"seed8_{len(strategy)}"
        other.mkdir()
        c = run_sweep(make_sweep(other, strategy=strategy, seed=8), other / "out", plots=False)
        assert c.frame["key"].tolist() != a.frame["key"].tolist()
        # rerunning into the same folder replays the same points: all reused
        again = run_sweep(spec, tmp_path / f"a{len(strategy)}", plots=False)
        assert again.summary["evaluated"] == 0 and again.summary["reused"] == a.summary["points"]


def _start_sweep(spec, out, executor, via_cli, delay="0.04", sigint_default=False):
    env = {**os.environ, TEST_DELAY_ENV: delay, "SPARSIM_CODE_VERSION": "test-pinned",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    if via_cli:
        # what the `sparsim` console script runs (python -m simulator.cli would register commands on a copy)
        cmd = [sys.executable, "-c", "from simulator.cli import main; main()", "sweep", str(spec), "--out", str(out),
               "--executor", executor, "--jobs", "2", "--no-plots"]
    else:
        cmd = [sys.executable, "-c", f"from analysis.sweep import run_sweep; "
               f"run_sweep({str(spec)!r}, {str(out)!r}, executor={executor!r}, jobs=2, plots=False)"]

    def preexec():  # a new process group (killed as a whole); Ctrl-C behaves as in a terminal
        os.setsid()
        if sigint_default:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
    return subprocess.Popen(cmd, env=env, cwd=ROOT, preexec_fn=preexec, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def _wait_for_points(proc, db, n, timeout_s=60):
    deadline = time.time() + timeout_s
    stored = 0
    while time.time() < deadline and stored < n:
        time.sleep(0.05)
        if db.exists():
            try:
                with sqlite3.connect(db) as con:
                    stored = con.execute("SELECT COUNT(DISTINCT key) FROM points").fetchone()[0]
            except sqlite3.OperationalError:
                pass
        if proc.poll() is not None:
            break
    assert proc.poll() is None, proc.stderr.read().decode()
    return stored


def _stored(db):
    with sqlite3.connect(db) as con:
        keys = {k for (k,) in con.execute("SELECT DISTINCT key FROM points WHERE status = 'ok'")}
        rows = con.execute("SELECT COUNT(*) FROM points").fetchone()[0]
    return keys, rows


def test_random_and_nsga2_budgets_count_distinct_designs(tmp_path):
    # the tiny space has 64 designs: NSGA-II re-proposes some, yet N means N distinct evaluated designs
    for strategy in ({"random": 40}, {"nsga2": 40, "population": 8}):
        r = run_sweep(make_sweep(tmp_path, strategy=strategy, parameters={
            "compute.rows": [8, 16, 32, 64], "compute.dataflow": ["os", "ws"],
            "memory.sram.capacity_kib": [64, 128, 256, 512], "memory.lpddr4.bandwidth_bytes_per_cycle": [8, 16]}),
            tmp_path / f"out{len(strategy)}", plots=False)
        assert r.summary["points"] == r.summary["evaluated"] == 40 and r.frame["key"].is_unique
    small = {"compute.rows": [8, 16], "compute.dataflow": ["os", "ws"]}  # 4 designs: all of them, once
    r = run_sweep(make_sweep(tmp_path, strategy={"random": 100}, parameters=small), tmp_path / "small", plots=False)
    assert r.summary["points"] == 4


@pytest.mark.parametrize("executor, via_cli", [("serial", False), ("local", False), ("local", True)],
                         ids=["serial", "local", "cli-local"])
def test_sigkill_midway_loses_nothing_that_finished(tmp_path, executor, via_cli):
    spec = make_sweep(tmp_path)
    out = tmp_path / "killed"
    proc = _start_sweep(spec, out, executor, via_cli)
    try:
        _wait_for_points(proc, out / "results.sqlite", 12)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and its pool workers, no chance to clean up
        proc.wait()
    before, rows = _stored(out / "results.sqlite")
    assert 12 <= len(before) < 64 and rows == len(before)
    r = run_sweep(spec, out, executor="serial", plots=False)
    assert r.summary["reused"] == len(before)
    assert r.summary["evaluated"] == 64 - len(before)
    assert set(r.frame["key"]) >= before and len(r.frame) == 64
    after, rows = _stored(out / "results.sqlite")
    assert len(after) == 64 and rows == 64  # no finished point was evaluated a second time


def test_ctrl_c_keeps_finished_points_and_says_how_to_resume(tmp_path):
    spec = make_sweep(tmp_path)
    out = tmp_path / "interrupted"
    proc = _start_sweep(spec, out, "local", via_cli=True, delay="0.1", sigint_default=True)
    try:
        _wait_for_points(proc, out / "results.sqlite", 8)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    err = err.decode()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert [ln for ln in err.splitlines() if ln.startswith("interrupted:")][0].endswith("to resume")
    before, rows = _stored(out / "results.sqlite")
    assert 8 <= len(before) < 64 and rows == len(before)
    r = run_sweep(spec, out, executor="serial", plots=False)
    assert r.summary["reused"] == len(before) and r.summary["evaluated"] == 64 - len(before)


def test_failing_points_are_recorded_and_the_sweep_goes_on(tmp_path):
    params = {"compute.rows": [16, 32], "memory.lpddr4.kind": ["dram", "sram"]}  # an on-chip 'DRAM' has no capacity
    spec = make_sweep(tmp_path, parameters=params)
    r = run_sweep(spec, tmp_path / "out", plots=False)
    assert r.summary["points"] == 4 and r.summary["failed"] == 2 and r.summary["evaluated"] == 4
    failed = r.frame[r.frame["status"] == "failed"]
    assert failed["error"].str.contains("capacity").all()
    again = run_sweep(spec, tmp_path / "out", plots=False)
    assert again.summary["evaluated"] == 0 and again.summary["failed"] == 2


def test_constraints_and_parameter_only_constraints(tmp_path):
    spec = make_sweep(tmp_path, constraints=["area_mm2 <= 0.5", "compute.rows * compute.cols <= 1024"])
    r = run_sweep(spec, tmp_path / "out", plots=False)
    s = r.summary
    assert s["skipped_by_parameter_constraints"] == 16          # rows = 64
    assert s["points"] == 48
    ok = r.frame[r.frame["status"] == "ok"]
    assert ((ok["area_mm2"] <= 0.5) == ok["feasible"]).all()
    assert s["infeasible"] == int((ok["area_mm2"] > 0.5).sum()) > 0
    assert (r.pareto["area_mm2"] <= 0.5).all()


def test_max_points_and_weighted_workloads(tmp_path):
    spec = make_sweep(tmp_path, workloads=[{"path": "tiny.yaml", "weight": 2.0, "name": "a"},
                                           {"path": "tiny.yaml", "weight": 0.5, "name": "b"}])
    r = run_sweep(spec, tmp_path / "out", max_points=10, plots=False)
    assert r.summary["points"] == 10
    row = r.frame.iloc[0]
    assert row["latency_s"] == pytest.approx(2.5 * row["a/latency_s"])
    assert row["edp_js"] == pytest.approx(row["energy_pj"] * 1e-12 * row["latency_s"])


def test_best_point_of_an_objective_breaks_ties_by_the_others(tmp_path):
    # the tiny trace fits either SRAM: same latency, but the big SRAM leaks more. Listed first, it must
    # still not be reported as the best-latency design (it is dominated).
    spec = make_sweep(tmp_path, parameters={"compute.rows": [16], "memory.sram.capacity_kib": [4096, 512]},
                      constraints=[])
    r = run_sweep(spec, tmp_path / "out", plots=False)
    big, small = r.frame.sort_values("memory.sram.capacity_kib", ascending=False).to_dict("records")
    assert big["latency_s"] == small["latency_s"] and big["energy_pj"] > small["energy_pj"]
    assert r.summary["pareto_size"] == 1
    assert r.summary["best"]["latency"]["key"] == r.summary["best"]["energy"]["key"] == small["key"]


def test_combine_totals_single_workload_is_identity():
    t = {"latency_s": 2.0, "energy_pj": 4e12, "dense_macs": 8.0, "area_mm2": 1.0, "utilization": 0.5}
    m = combine_totals([("w", 1.0, t)])
    assert m["latency_s"] == 2.0 and m["macs_per_j"] == pytest.approx(2.0)
    assert m["throughput_macs_per_s"] == pytest.approx(4.0)


def test_cli_sweep_and_rerun(tmp_path, capsys):
    from cli_helpers import run_cli
    spec = make_sweep(tmp_path, strategy={"random": 8})
    code, out, err = run_cli(capsys, "sweep", spec, "--out", tmp_path / "o", "--executor", "serial", "--no-plots")
    assert code == 0, err
    assert "8 evaluated" in out and "Pareto" in out
    code, out, _ = run_cli(capsys, "sweep", spec, "--out", tmp_path / "o", "--quiet", "--json", "--no-plots")
    assert code == 0 and json.loads(out)["reused"] == 8


@pytest.mark.slow
def test_dask_points_of_killed_workers_are_retried(tmp_path, monkeypatch):
    distributed = pytest.importorskip("distributed")
    psutil = pytest.importorskip("psutil")
    import threading
    monkeypatch.setenv(TEST_DELAY_ENV, "0.1")
    spec = make_sweep(tmp_path)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        def kill_workers():
            db = tmp_path / "out" / "results.sqlite"
            while True:  # once some points are stored, kill every worker mid-sweep
                time.sleep(0.05)
                try:
                    with sqlite3.connect(db) as con:
                        if con.execute("SELECT COUNT(*) FROM points").fetchone()[0] >= 8:
                            break
                except sqlite3.Error:
                    pass
            for p in psutil.Process().children(recursive=True):
                cmd = " ".join(p.cmdline())
                if "spawn_main" in cmd and "tracker_fd" in cmd:  # the worker processes (nannies restart them)
                    p.send_signal(signal.SIGKILL)
        threading.Thread(target=kill_workers, daemon=True).start()
        r = run_sweep(spec, tmp_path / "out", executor=f"dask://{cluster.scheduler_address}", plots=False)
    assert r.summary["points"] == 64 and r.summary["failed"] == 0 and r.summary["crashed"] == 0
    assert (r.frame["status"] == "ok").all()
    assert r.frame["worker"].nunique() > 2  # restarted workers finished the killed workers' batches


def test_fpga_resource_metrics_as_constraints(tmp_path):
    spec = make_sweep(tmp_path, base_arch=str(ROOT / "arch_configs" / "fpga_u280_llm_sparse.yaml"),
                      parameters={"compute.chain_length": [8, 14], "compute.chains": [64, 256, 704]},
                      constraints=["dsp_utilization <= 0.5"], objectives=["latency", "energy"])
    r = run_sweep(spec, tmp_path / "out", plots=False)
    ok = r.frame[r.frame["status"] == "ok"]
    assert len(ok) >= 4 and "dsp_used" in ok.columns
    assert ((ok["dsp_utilization"] <= 0.5) == ok["feasible"]).all()
    failed = r.frame[r.frame["status"] == "failed"]  # 14 x 704 slices exceed the card: recorded, not fatal
    assert failed["error"].str.contains("DSP").all() and len(failed) == 1
