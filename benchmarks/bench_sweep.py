"""Sweep throughput: design points per second on ResNet-50 and LLaMA-2-7B decode, vs ZigZag.

    python benchmarks/bench_sweep.py                 # 600 ResNet-50 points + 300 LLaMA points, 2 jobs
    python benchmarks/bench_sweep.py --points 2000 --jobs 2 --profile --json bench.json
    python benchmarks/bench_sweep.py --zigzag-python /tmp/zzvenv/bin/python   # time ZigZag here too

What is measured: `run_sweep` end to end into a fresh folder (spec validation, worker
start-up, every point evaluated and committed to the results store, Pareto/summary;
plots off), reported as points per minute of wall time, and the evaluation phase alone.
A single-point figure (arch validation + `simulate()` of a whole network in one process)
gives the comparison with ZigZag: ZigZag (zigzag-dse 3.9.1) took
48.6 s (docs/references.md#zigzag-timing) for ResNet-18 on its tpu_like example (a weight-stationary systolic design); we
time ResNet-18 on a 32x32 weight-stationary array. The two tools do different work
(ZigZag searches temporal mappings; sparsim evaluates a fixed SCALE-Sim-style mapping),
so the ratio is per network evaluation, as a user of a sweep experiences it.
`--profile` prints where a point's time goes (cProfile, by own time).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ZIGZAG_RESNET18_S = 48.6  # docs/references.md#zigzag-timing: ZigZag 3.9.1, ResNet-18 on its tpu_like example
TARGET_PER_MIN = 1000


def resnet50_spec(trace: Path) -> dict:
    return {
        "name": "bench_resnet50", "base_arch": str(ROOT / "arch_configs" / "edge_npu_32x32_os.yaml"),
        "workloads": [{"path": str(trace)}],
        "parameters": {
            "compute.rows": [8, 16, 32, 64, 128],
            "compute.cols": [8, 16, 32, 64, 128],
            "compute.dataflow": ["os", "ws", "is"],
            "memory.sram.capacity_kib": {"min": 64, "max": 4096, "log": True},
            "memory.lpddr4.bandwidth_bytes_per_cycle": [8, 16, 32],
        },
        "objectives": ["latency", "energy", "area"], "strategy": "grid", "executor": "local",
    }


def llama_spec(trace: Path) -> dict:
    return {
        "name": "bench_llama2_decode", "base_arch": str(ROOT / "arch_configs" / "tpu_v1_256x256_ws.yaml"),
        "workloads": [{"path": str(trace)}],
        "parameters": {
            "compute.rows": [32, 64, 128, 256],
            "compute.cols": [32, 64, 128, 256],
            "compute.dataflow": ["os", "ws", "is"],
            "memory.unified_buffer.capacity_kib": {"min": 2048, "max": 32768, "log": True},
            "memory.ddr3.bandwidth_bytes_per_cycle": [21.43, 42.86, 85.71],
        },
        "objectives": ["latency", "energy"], "strategy": "grid", "executor": "local",
    }


def bench_sweep(name: str, spec: dict, points: int, jobs: int) -> dict:
    from analysis.sweep import run_sweep
    os.environ["SPARSIM_CODE_VERSION"] = f"bench-{time.time_ns()}"  # never reuse: measure real evaluations
    with tempfile.TemporaryDirectory(prefix="sparsim_bench_") as tmp:
        t0 = time.perf_counter()
        result = run_sweep(spec, tmp, jobs=jobs, max_points=points, plots=False)
        wall = time.perf_counter() - t0
    s = result.summary
    out = {"workload": name, "points": s["points"], "evaluated": s["evaluated"], "failed": s["failed"],
           "jobs": s["jobs"], "wall_s": round(wall, 3), "points_per_s_wall": round(s["evaluated"] / wall, 2),
           "points_per_min_wall": round(s["evaluated"] / wall * 60, 1),
           "evaluation_s": s["evaluation_seconds"],
           "points_per_min_evaluation": round(s["evaluated"] / s["evaluation_seconds"] * 60, 1)
           if s["evaluation_seconds"] else None,
           "mean_point_ms_in_worker": round(float(result.frame["elapsed_s"].mean()) * 1e3, 3)}
    os.environ.pop("SPARSIM_CODE_VERSION", None)
    if out["failed"]:  # a failed point is cheap: it must not pass for throughput unnoticed
        print(f"warning: {out['failed']} of {out['evaluated']} {name} points failed", file=sys.stderr)
    return out


def single_point_seconds(trace_path: Path, arch_path: Path, overrides: dict, repeats: int = 15) -> float:
    """Median time of one point in one process: arch validation + simulate() of the whole network."""
    from analysis.sweep_spec import apply_point
    from simulator.kernels import jit_now
    from simulator.simulate import simulate
    from simulator.spec import arch_from_dict, read_yaml
    from simulator.trace import load_trace
    trace = load_trace(trace_path)
    raw = read_yaml(arch_path)
    jit_now()   # a long run: compiled kernels (short runs start interpreted, see simulator.kernels)
    simulate(trace, arch_from_dict(apply_point(raw, overrides)))  # JIT warm
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        simulate(trace, arch_from_dict(apply_point(raw, overrides)))
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


ZIGZAG_SCRIPT = """
import logging, os, sys, time
logging.disable(logging.CRITICAL)
from zigzag.api import get_hardware_performance_zigzag
z = os.path.join(os.path.dirname(__import__("zigzag").__file__), "inputs")
t0 = time.perf_counter()
get_hardware_performance_zigzag(f"{z}/workload/resnet18.onnx", f"{z}/hardware/tpu_like.yaml",
                                f"{z}/mapping/tpu_like.yaml", opt="latency", dump_folder=sys.argv[1],
                                loma_show_progress_bar=False)
print(time.perf_counter() - t0)
"""


def run_zigzag(python: str) -> float:
    """ZigZag's own ResNet-18 / tpu_like run, timed, in a separate interpreter (its own venv)."""
    import subprocess
    with tempfile.TemporaryDirectory(prefix="zigzag_") as tmp:
        out = subprocess.run([python, "-c", ZIGZAG_SCRIPT, tmp], capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(f"zigzag failed: {out.stderr.strip().splitlines()[-1:]}")
    return float(out.stdout.strip().splitlines()[-1])


def profile_point(trace_path: Path, arch_path: Path, n: int = 20, top: int = 14) -> str:
    from simulator.simulate import simulate
    from simulator.spec import load_arch
    from simulator.trace import load_trace
    trace, arch = load_trace(trace_path), load_arch(arch_path)
    simulate(trace, arch)
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(n):
        simulate(trace, arch)
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(top)
    return buf.getvalue()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--points", type=int, default=600, help="ResNet-50 design points (LLaMA: half)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--profile", action="store_true", help="print a cProfile of simulate() on ResNet-50")
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    ap.add_argument("--zigzag-python", help="python of a venv with zigzag-dse==3.9.1 (and six): time ZigZag "
                                            "on ResNet-18 / tpu_like here instead of the 48.6 s in docs/references.md")
    args = ap.parse_args(argv)

    traces = ROOT / "workloads" / "traces"
    report: dict = {"cpu_count": os.cpu_count(), "jobs": args.jobs}
    if args.jobs > (os.cpu_count() or 1):
        print(f"note: --jobs {args.jobs} > {os.cpu_count()} cores here", file=sys.stderr)
    try:
        report["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    r50 = traces / "resnet50.yaml"
    if r50.exists():
        res = bench_sweep("resnet50", resnet50_spec(r50), args.points, args.jobs)
        res["meets_target_1000_per_min"] = res["points_per_min_wall"] >= TARGET_PER_MIN
        report["resnet50"] = res
        print(f"ResNet-50: {res['evaluated']} points in {res['wall_s']:.2f} s wall with {res['jobs']} jobs -> "
              f"{res['points_per_s_wall']:,.1f} points/s = {res['points_per_min_wall']:,.0f} points/min end to end "
              f"({res['points_per_min_evaluation']:,.0f}/min in the evaluation phase; "
              f"{res['mean_point_ms_in_worker']:.1f} ms per point in a worker); target {TARGET_PER_MIN}/min: "
              f"{'met' if res['meets_target_1000_per_min'] else 'NOT met'}")
    else:
        print(f"skip ResNet-50: {r50} not found")
    llama = traces / "llama2_7b_decode_kv2048.yaml"
    if llama.exists():
        res = bench_sweep("llama2_7b_decode_kv2048", llama_spec(llama), max(1, args.points // 2), args.jobs)
        report["llama2_7b_decode"] = res
        print(f"LLaMA-2-7B decode (KV 2048): {res['evaluated']} points in {res['wall_s']:.2f} s -> "
              f"{res['points_per_s_wall']:,.1f} points/s = {res['points_per_min_wall']:,.0f} points/min end to end "
              f"({res['mean_point_ms_in_worker']:.1f} ms per point in a worker)")
    else:
        print(f"skip LLaMA-2-7B decode: {llama} not found (produced by the workloads work)")

    zigzag_s, zigzag_src = ZIGZAG_RESNET18_S, "docs/references.md#zigzag-timing"
    if args.zigzag_python:
        zigzag_s, zigzag_src = run_zigzag(args.zigzag_python), "measured here"
        print(f"ZigZag 3.9.1, ResNet-18 on tpu_like (measured here): {zigzag_s:.1f} s")
    ZIGZAG = zigzag_s
    r18 = traces / "resnet18.yaml"
    if r18.exists():
        t = single_point_seconds(r18, ROOT / "arch_configs" / "edge_npu_32x32_os.yaml", {"compute.dataflow": "ws"})
        report["resnet18_single_point_s"] = round(t, 5)
        report["zigzag_resnet18_s"] = round(ZIGZAG, 2)
        report["zigzag_source"] = zigzag_src
        report["speedup_vs_zigzag_single_point"] = round(ZIGZAG / t, 1)
        print(f"ResNet-18 on a 32x32 WS array: {t * 1e3:.2f} ms per network in one process; ZigZag "
              f"{ZIGZAG:.1f} s ({zigzag_src}) -> {ZIGZAG / t:,.0f}x faster per network")
        if "resnet50" in report:
            per_point = 60.0 / report["resnet50"]["points_per_min_wall"]
            report["speedup_vs_zigzag_sweep_amortised"] = round(ZIGZAG / per_point, 1)
            print(f"  in a sweep ({args.jobs} jobs, ResNet-50, amortised {per_point * 1e3:.1f} ms/point): "
                  f"{ZIGZAG / per_point:,.0f}x ZigZag's per-network time (on the larger network)")
    if args.profile and r50.exists():
        text = profile_point(r50, ROOT / "arch_configs" / "edge_npu_32x32_os.yaml")
        report["profile_resnet50"] = text
        print("\nWhere a ResNet-50 point's time goes (20 x simulate, by own time):\n" + text)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
