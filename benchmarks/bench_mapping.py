"""Mapping-search speed: ResNet-50 on the edge NPU with `mapping: search`, and the big GEMMs.

    python benchmarks/bench_mapping.py              # ResNet-50 (os, ws, is) + big GEMMs, 5 repeats
    python benchmarks/bench_mapping.py --repeats 20

What is measured: `simulate()` of the whole network after the numba kernels are compiled
(`search.warm_up`, one untimed run), with the mapping memo cleared before every timed run
("cold": every unique layer shape is searched) and kept ("memoised": what a repeated point costs).
Per-op search counts and candidate combinations are printed for the slowest layers. The machine
may be shared: the median of the repeats is reported, with the minimum.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simulator import load_arch, load_trace, simulate  # noqa: E402
from simulator.mapping import clear_cache, search  # noqa: E402
from simulator.trace import Op, Trace  # noqa: E402

EDGE = ROOT / "arch_configs" / "edge_npu_32x32_os.yaml"
TARGET_MS = 50.0


def timed(fn, repeats: int, cold: bool) -> list[float]:
    out = []
    for _ in range(repeats):
        if cold:
            clear_cache()
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    search.warm_up()
    trace = load_trace(ROOT / "workloads" / "traces" / "resnet50.yaml")
    print(f"ResNet-50 ({len(trace.ops)} ops) on edge_npu_32x32_os, mapping search (target < {TARGET_MS:.0f} ms):")
    for df in ("os", "ws", "is"):
        arch = load_arch(EDGE, [f"compute.dataflow={df}"])
        simulate(trace, arch)
        cold = timed(lambda: simulate(trace, arch), args.repeats, cold=True)
        warm = timed(lambda: simulate(trace, arch), args.repeats, cold=False)
        print(f"  {df}: cold median {statistics.median(cold):7.1f} ms (min {min(cold):.1f}), "
              f"memoised median {statistics.median(warm):6.1f} ms; ratio to target {statistics.median(cold) / TARGET_MS:.2f}")
    print("Big GEMMs on edge_npu_32x32_os (os), one cold search each:")
    for M, N, K in ((4096, 4096, 4096), (2048, 11008, 4096), (8192, 8192, 16384)):
        arch = load_arch(EDGE)
        gemm = Trace(ops=[Op(name="g", kind="gemm", dims={"M": M, "N": N, "K": K})])
        ms = timed(lambda: simulate(gemm, arch), 1, cold=True)[0]
        print(f"  {M}x{N}x{K}: {ms:.1f} ms")


if __name__ == "__main__":
    main()
