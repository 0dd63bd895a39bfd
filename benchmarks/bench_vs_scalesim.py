"""Side-by-side speed and cycle check: sparsim vs the real SCALE-Sim v3 on the same layers.

Both tools read the same SCALE-Sim topology CSV with ideal memory; the script prints each
tool's cycles, wall time and the time ratio. SCALE-Sim runs in its own venv (it needs
numpy < 2.4; see benchmarks/scalesim_reference/README.md) through benchmarks/scalesim_runner.py:

    python benchmarks/bench_vs_scalesim.py --case gemm1024 --scalesim-python /work/venvs/scalesim/bin/python
    python benchmarks/bench_vs_scalesim.py --case resnet18 --dataflow ws --scalesim-python ...
    python benchmarks/bench_vs_scalesim.py --case gemm1024 --scalesim-json benchmarks/results/scalesim_gemm1024_os32.json

`--scalesim-json` reuses a recorded SCALE-Sim run (it takes minutes) instead of running it.
sparsim's time is the median of repeated in-process runs after JIT warm-up, including the
memory-stall and energy models; SCALE-Sim's is its own wall time excluding interpreter start-up.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simulator import load_arch, load_trace, simulate  # noqa: E402
from simulator.kernels import jit_now  # noqa: E402


def topology_csv(case: str, path: Path) -> Path:
    """Write the layers of `case` as a SCALE-Sim topology CSV (padding folded into the input size)."""
    if case.startswith("gemm"):
        size = int(case[4:])
        path.write_text(f"Layer, M, N, K,\n{case}, {size}, {size}, {size},\n")
        return path
    trace = load_trace(ROOT / "workloads" / "traces" / f"{case}.yaml")
    lines = ["Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,"]
    for op in trace.ops:
        if op.kind == "conv2d" and op.dims.groups == 1:
            d = op.dims
            lines.append(f"{op.name}, {d.H + 2 * d.pad}, {d.W + 2 * d.pad}, {d.R}, {d.S}, {d.C}, {d.K}, {d.stride},")
    path.write_text("\n".join(lines) + "\n")
    return path


def time_sparsim(csv_path: Path, dataflow: str, rows: int, cols: int, repeats: int) -> tuple[float, float]:
    arch = load_arch(ROOT / "arch_configs" / "scalesim_32x32_os.yaml",
                     {"compute.dataflow": dataflow, "compute.rows": rows, "compute.cols": cols})
    trace = load_trace(csv_path)
    jit_now()   # a long run: compiled kernels (short runs start interpreted, see simulator.kernels)
    cycles = simulate(trace, arch).totals["cycles"]  # warm-up: JIT compile / cache load
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        simulate(trace, arch)
        times.append(time.perf_counter() - start)
    return cycles, statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--case", default="gemm1024", help="gemm<S> or a CNN trace name (resnet18, resnet50, mobilenet_v2)")
    ap.add_argument("--dataflow", default="os", choices=("os", "ws", "is"))
    ap.add_argument("--rows", type=int, default=32)
    ap.add_argument("--cols", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=20)
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--scalesim-python", help="python of a venv with scalesim==3.0.0 installed")
    src.add_argument("--scalesim-json", help="a recorded scalesim_runner.py output to compare against")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        csv_path = topology_csv(args.case, Path(tmp) / f"{args.case}.csv")
        cycles, sparsim_s = time_sparsim(csv_path, args.dataflow, args.rows, args.cols, args.repeats)
        print(f"sparsim   {args.case} {args.dataflow} {args.rows}x{args.cols}: {cycles:,.0f} cycles, "
              f"{sparsim_s * 1e3:.2f} ms (median of {args.repeats})")
        if args.scalesim_json:
            ref = json.loads(Path(args.scalesim_json).read_text())
        elif args.scalesim_python:
            out = subprocess.run([args.scalesim_python, str(ROOT / "benchmarks" / "scalesim_runner.py"),
                                  "--topology", str(csv_path), "--dataflow", args.dataflow,
                                  "--rows", str(args.rows), "--cols", str(args.cols)],
                                 check=True, capture_output=True, text=True)
            ref = json.loads(out.stdout)
        else:
            print("no SCALE-Sim run given (--scalesim-python or --scalesim-json): sparsim side only")
            return
    ref_cycles = sum(layer["total_cycles"] for layer in ref["layers"])
    print(f"scalesim  {args.case}: {ref_cycles:,.0f} cycles, {ref['wall_s']:.2f} s, peak RSS {ref.get('peak_rss_mb', 0):.0f} MB")
    print(f"cycles equal: {ref_cycles == cycles}; speed ratio scalesim/sparsim: {ref['wall_s'] / sparsim_s:,.0f}x")


if __name__ == "__main__":
    main()
