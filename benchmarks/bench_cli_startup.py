"""Whole-process wall time of the sparsim CLI, as ratios to `python -c pass` and to SCALE-Sim.

Why: a user pays interpreter start-up and imports on every call; with lazy imports a short
command should cost little more than starting Python. Measured, each as the median of
`--repeats` fresh processes (so the OS file cache is warm, as it is for a user who just ran it):
- `python -c pass` (the floor);
- `sparsim --help`;
- `sparsim simulate` of one 512 x 512 x 512 GEMM (a SCALE-Sim topology CSV) on the
  SCALE-Sim-compatible 32x32 output-stationary spec, `--quiet`;
- SCALE-Sim v3's whole run of the same GEMM on a 32x32 OS array (`benchmarks/scalesim_runner.py`
  in its own venv: interpreter start, imports, simulation), when `--scalesim-python` is given.

    python benchmarks/bench_cli_startup.py --scalesim-python /work/venvs/scalesim/bin/python

Prints one line per measurement and the ratios; `--json FILE` also writes them. No thresholds:
the numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GEMM_CSV = "Layer, M, N, K,\ngemm512, 512, 512, 512,\n"


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wall(cmd: list[str], repeats: int, env: dict, cpu: dict | None = None, key: str = "") -> float:
    """Median wall seconds of `repeats` runs of `cmd` (each must exit 0); median CPU seconds into `cpu[key]`.

    CPU time (user + system of the child) is reported beside wall time because it barely depends
    on how busy the machine is, while wall time on a shared machine does."""
    times, cpus = [], []
    for _ in range(repeats):
        c0, t0 = _child_cpu(), time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=ROOT)
        times.append(time.perf_counter() - t0)
        cpus.append(_child_cpu() - c0)
    if cpu is not None:
        cpu[key] = statistics.median(cpus)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=7, help="fresh processes per sparsim measurement")
    ap.add_argument("--scalesim-python", help="python of a venv with scalesim==3.0.0 (see benchmarks/scalesim_reference)")
    ap.add_argument("--scalesim-repeats", type=int, default=1, help="SCALE-Sim runs (each takes tens of seconds)")
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    args = ap.parse_args(argv)
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        topo = Path(tmp) / "gemm512.csv"
        topo.write_text(GEMM_CSV)
        # As an installed package runs: with Python's bytecode cache (written by the first run, into
        # the temporary folder, not the checkout), even where PYTHONDONTWRITEBYTECODE is set.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        sparsim = [py, "-m", "simulator.cli"]
        cpu: dict[str, float] = {}
        results = {
            "python_pass_s": wall([py, "-c", "pass"], args.repeats, env, cpu, "python_pass_cpu_s"),
            "help_s": wall(sparsim + ["--help"], args.repeats, env, cpu, "help_cpu_s"),
            "simulate_gemm512_s": wall(sparsim + ["simulate", "-a", "scalesim_32x32_os", "-w", str(topo), "-q"],
                                       args.repeats, env, cpu, "simulate_gemm512_cpu_s"),
        }
        if args.scalesim_python:
            cmd = [args.scalesim_python, str(ROOT / "benchmarks" / "scalesim_runner.py"), "--layers", "gemm512",
                   "--dataflow", "os", "--rows", "32", "--cols", "32"]
            results["scalesim_gemm512_s"] = wall(cmd, args.scalesim_repeats, dict(os.environ), cpu,
                                                 "scalesim_gemm512_cpu_s")
        results.update(cpu)
    floor = results["python_pass_s"]
    print(f"python -c pass:                 {floor:8.3f} s (median of {args.repeats})")
    print(f"sparsim --help:                 {results['help_s']:8.3f} s = {results['help_s'] / floor:.1f}x python -c pass")
    sim = results["simulate_gemm512_s"]
    print(f"sparsim simulate (512^3 GEMM):  {sim:8.3f} s = {sim / floor:.1f}x python -c pass")
    if "scalesim_gemm512_s" in results:
        ss = results["scalesim_gemm512_s"]
        results["speedup_vs_scalesim"] = ss / sim
        results["cpu_speedup_vs_scalesim"] = cpu["scalesim_gemm512_cpu_s"] / cpu["simulate_gemm512_cpu_s"]
        print(f"SCALE-Sim whole run (512^3):    {ss:8.3f} s; sparsim is {ss / sim:.1f}x faster (whole process, wall)")
        print(f"CPU seconds: sparsim {cpu['simulate_gemm512_cpu_s']:.3f}, SCALE-Sim {cpu['scalesim_gemm512_cpu_s']:.3f} "
              f"({results['cpu_speedup_vs_scalesim']:.1f}x)")
    else:
        print("SCALE-Sim not timed (pass --scalesim-python)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return results


if __name__ == "__main__":
    main()
