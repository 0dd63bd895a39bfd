"""A sweep folder is owned by one sweep at a time; a killed driver takes its workers with it.

- `kill -9` of the driver alone (not its process group): every worker exits within seconds,
  and a rerun reuses every point that was committed;
- each finished point is committed on its own (the store grows one point at a time, never
  by a whole batch);
- a second sweep on a folder in use is refused with one line; a different sweep in a used
  folder is refused unless --overwrite.
"""

import os
import signal
import subprocess
import sys
import time

import pytest

from analysis.sweep import run_sweep
from analysis.sweep_folder import FolderLock
from simulator.errors import SparsimInputError
from test_sweep import _start_sweep, _stored, _wait_for_points
from test_sweep_spec import ROOT, make_sweep


@pytest.fixture(autouse=True)
def _pinned_code_version(monkeypatch):
    monkeypatch.setenv("SPARSIM_CODE_VERSION", "test-pinned")  # as the sweeps started by _start_sweep


def _group_alive(pgid: int) -> list[int]:
    """Pids (not zombies) in process group `pgid`, read from /proc."""
    alive = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(entry))
    return alive


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_kill_9_of_the_driver_alone_ends_its_workers_and_the_rerun_reuses_every_point(tmp_path):
    spec = make_sweep(tmp_path)
    out = tmp_path / "killed"
    proc = _start_sweep(spec, out, "local", via_cli=True, delay="0.05")
    try:
        _wait_for_points(proc, out / "results.sqlite", 6)
        assert len(_group_alive(proc.pid)) >= 3  # the driver and its two workers
        os.kill(proc.pid, signal.SIGKILL)  # the driver only: nobody tells the workers
        proc.wait()
        deadline = time.time() + 20
        while _group_alive(proc.pid) and time.time() < deadline:
            time.sleep(0.1)
        assert _group_alive(proc.pid) == []
    finally:
        if _group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
    before, rows = _stored(out / "results.sqlite")
    assert rows == len(before) >= 6
    r = run_sweep(spec, out, executor="serial", plots=False)
    assert r.summary["reused"] == len(before) and r.summary["evaluated"] == 64 - len(before)


def test_points_are_committed_one_at_a_time(tmp_path):
    import sqlite3
    spec = make_sweep(tmp_path)
    out = tmp_path / "stream"
    proc = _start_sweep(spec, out, "local", via_cli=True, delay="0.05")
    seen = set()
    try:
        deadline = time.time() + 60
        while time.time() < deadline and proc.poll() is None and len(seen) < 12:
            if (out / "results.sqlite").exists():
                try:
                    with sqlite3.connect(out / "results.sqlite") as con:
                        seen.add(con.execute("SELECT COUNT(*) FROM points").fetchone()[0])
                except sqlite3.OperationalError:
                    pass
            time.sleep(0.01)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    # with 2 workers at 0.05 s a point, commits land one by one: many distinct small counts were observed
    # (batched commits of 16 points would show only 0, 16, 32, ...)
    assert len([n for n in seen if 0 < n < 16]) >= 3, sorted(seen)


def test_a_second_sweep_on_a_folder_in_use_is_refused(tmp_path):
    spec = make_sweep(tmp_path)
    out = tmp_path / "busy"
    out.mkdir()
    with FolderLock(out):
        with pytest.raises(SparsimInputError, match="another sweep .* is running in this folder"):
            run_sweep(spec, out, executor="serial", plots=False)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with FolderLock(out):
        res = subprocess.run([sys.executable, "-c", "from simulator.cli import main; main()", "sweep", str(spec),
                              "--out", str(out), "--executor", "serial", "--no-plots", "-q"],
                             env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "is running in this folder" in res.stderr
    run_sweep(spec, out, executor="serial", plots=False)  # the lock is gone: the sweep runs


def test_a_different_sweep_is_refused_unless_overwrite(tmp_path):
    first = make_sweep(tmp_path)
    out = tmp_path / "owned"
    run_sweep(first, out, executor="serial", plots=False)
    other = tmp_path / "other"
    other.mkdir()
    second = make_sweep(other, name="another_sweep")
    with pytest.raises(SparsimInputError, match="holds a different sweep"):
        run_sweep(second, out, executor="serial", plots=False)
    r = run_sweep(first, out, executor="serial", plots=False)  # the same sweep resumes
    assert r.summary["evaluated"] == 0
    r = run_sweep(second, out, executor="serial", plots=False, overwrite=True)
    assert r.summary["reused"] == 0 and set(r.frame["sweep"]) == {"another_sweep"}
