"""Timelines: Chrome-trace JSON (one track per core, loads in Perfetto) and the Gantt chart."""

from __future__ import annotations

import json

import pytest

from simulator import load_arch, load_trace
from simulator.system import Interval, replicate, simulate_system
from simulator.timeline import chrome_trace, write_chrome_trace, write_gantt

from conftest import ARCH_DIR, TRACE_DIR


@pytest.fixture(scope="module")
def run():
    arch = load_arch(ARCH_DIR / "edge_npu_32x32_os.yaml")
    return simulate_system(load_trace(TRACE_DIR / "resnet18.yaml"), replicate(arch, 4))


def test_chrome_trace_is_valid_json_with_one_track_per_core(run, tmp_path):
    path = write_chrome_trace(tmp_path / "run.json", run.intervals, run.cores, name="resnet18")
    data = json.loads(path.read_text())
    events = data["traceEvents"]
    names = {e["tid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert names == {0: "core0", 1: "core1", 2: "core2", 3: "core3"}
    spans = [e for e in events if e["ph"] == "X"]
    assert {e["tid"] for e in spans} == {0, 1, 2, 3}
    assert all(e["dur"] >= 0 and e["ts"] >= 0 and e["pid"] == 0 for e in spans)
    # each op shows up once per core it runs on (layer by layer: all four, except where one core is faster,
    # as for the DRAM-bound fc layer whose split parts share the DRAM channel)
    assert len(spans) == sum(o["cores_used"] for o in run.ops)
    assert sum(o["cores_used"] == 4 for o in run.ops) >= len(run.ops) - 1
    end_us = max(e["ts"] + e["dur"] for e in spans)
    assert end_us == pytest.approx(run.makespan_s * 1e6, rel=1e-9)


def test_events_on_one_track_do_not_overlap(run):
    events = [e for e in chrome_trace(run.intervals, run.cores)["traceEvents"] if e["ph"] == "X"]
    for tid in range(4):
        track = sorted((e["ts"], e["ts"] + e["dur"]) for e in events if e["tid"] == tid)
        assert all(a_end <= b_start + 1e-6 for (_, a_end), (b_start, _) in zip(track, track[1:]))


def test_hand_built_intervals_map_to_microseconds():
    ivs = [Interval("npu0", "gemm", "gemm", 0.0, 2e-6), Interval("npu1", "add", "add", 1e-6, 1.5e-6)]
    events = [e for e in chrome_trace(ivs, ["npu0", "npu1"])["traceEvents"] if e["ph"] == "X"]
    assert [(e["name"], e["tid"], e["ts"], e["dur"]) for e in events] == [("gemm", 0, 0.0, 2.0),
                                                                         ("add", 1, 1.0, pytest.approx(0.5))]


def test_gantt_chart_is_written(run, tmp_path):
    path = write_gantt(tmp_path / "gantt.png", run.intervals, run.cores, title="resnet18 on 4 cores")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 5_000
    small = write_gantt(tmp_path / "small.svg", run.intervals[:8], run.cores)
    assert "<svg" in small.read_text()
