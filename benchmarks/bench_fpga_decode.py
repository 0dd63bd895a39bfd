"""LLaMA-2-7B on the Alveo U280 spec: tokens/s beside the memory-bound limit, and simulation speed.

    python benchmarks/bench_fpga_decode.py                 # the worked example of docs/fpga.md
    python benchmarks/bench_fpga_decode.py --json out.json --repeats 50

For each workload (decode: batch 1, one token, KV length 2048; prefill: a 2048-token prompt;
dense INT8, 2:4 weights, and 16x16 blocks at 50% density on every projection but lm_head) it
prints simulated tokens/s, ms per token, MAC (DSP) utilisation, the GEMM weight bytes one pass
streams in the chains' stored format, and the memory-bound limit: tokens per pass x peak HBM
bandwidth / weight bytes (`simulator.engines.dsp_chain.memory_bound`). Decode can never beat
that limit; prefill reuses every weight over 2048 tokens and is compute-bound instead.

Speed: one full decode trace (`workloads/traces/llama2_7b_decode_kv2048.yaml`) through
`simulate()`, after a warm-up call (numba kernels compiled or loaded from cache): the median
of `--repeats` runs, and the first (cold) call in this process.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simulator import load_arch, load_trace, simulate  # noqa: E402
from simulator.engines.dsp_chain import memory_bound  # noqa: E402
from simulator.fpga import resources_report  # noqa: E402
from simulator.kernels import jit_now  # noqa: E402
from simulator.trace import Sparsity  # noqa: E402

TRACES = ROOT / "workloads" / "traces"
WORKLOADS = [
    ("decode, dense INT8", "llama2_7b_decode_kv2048", False),
    ("decode, 2:4", "llama2_7b_decode_kv2048_2to4", False),
    ("decode, block 16x16 @ 50%", "llama2_7b_decode_kv2048", True),
    ("prefill 2048, dense INT8", "llama2_7b_prefill2048", False),
    ("prefill 2048, 2:4", "llama2_7b_prefill2048_2to4", False),
    ("prefill 2048, block 16x16 @ 50%", "llama2_7b_prefill2048", True),
]


def block_sparse(trace, density: float = 0.5, block=(16, 16)):
    """The trace with every GEMM but lm_head given block-sparse weights."""
    sp = Sparsity(kind="block", block=block, density=density)
    ops = [op.model_copy(update={"sparsity": op.sparsity.model_copy(update={"weights": sp})})
           if op.kind == "gemm" and op.name != "lm_head" else op for op in trace.ops]
    return trace.model_copy(update={"ops": ops})


def example_rows(arch) -> list[dict]:
    rows = []
    for label, name, blocks in WORKLOADS:
        trace = load_trace(TRACES / f"{name}.yaml")
        trace = block_sparse(trace) if blocks else trace
        totals = simulate(trace, arch).totals
        bound = memory_bound(trace, arch)
        tokens = bound["tokens"]
        rows.append({"workload": label, "trace": f"{name}.yaml" + (" + block16x16@50%" if blocks else ""),
                     "tokens": tokens, "tokens_per_s": tokens / totals["latency_s"],
                     "ms_per_token": totals["latency_s"] * 1e3 / tokens, "mac_utilization": totals["utilization"],
                     "weight_gb": bound["weight_bytes"] / 1e9, "kv_gb": bound["kv_bytes"] / 1e9,
                     "bound_tokens_per_s": bound["bound_tokens_per_s"],
                     "latency_over_bound": totals["latency_s"] / bound["bound_s"]})
    return rows


def time_decode(arch, repeats: int) -> dict:
    trace = load_trace(TRACES / "llama2_7b_decode_kv2048.yaml")
    jit_now()   # a long run: compiled kernels (short runs start interpreted, see simulator.kernels)
    start = time.perf_counter()
    simulate(trace, arch)
    cold = time.perf_counter() - start
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        simulate(trace, arch)
        runs.append(time.perf_counter() - start)
    return {"ops": len(trace.ops), "cold_s": cold, "median_s": statistics.median(runs), "min_s": min(runs),
            "max_s": max(runs), "repeats": repeats}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default=str(ROOT / "arch_configs" / "fpga_u280_llm_sparse.yaml"))
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--json", type=Path, default=None, help="also write the numbers as JSON")
    args = ap.parse_args()

    arch = load_arch(args.arch)
    timing = time_decode(arch, args.repeats)      # first, so the cold call is really cold
    rows = example_rows(arch)
    res = resources_report(arch)
    off = res["offchip"]

    print(f"{arch.name}: {res['chains']} chains x {res['chain_length']} ({res['pes']} PEs), "
          f"{arch.clock_mhz:g} MHz, peak {res['peak_tops']:.2f} TOPS; {off['kind']} {off['peak_gb_per_s']:.0f} GB/s "
          f"peak (x{off['efficiency']:g} achieved)")
    head = f"{'workload':34s} {'tokens/s':>9s} {'ms/token':>9s} {'MAC util':>8s} {'weights GB':>10s} " \
           f"{'HBM-bound tokens/s':>18s} {'time/bound':>10s}"
    print(head)
    for r in rows:
        print(f"{r['workload']:34s} {r['tokens_per_s']:9.1f} {r['ms_per_token']:9.3f} {r['mac_utilization']:8.1%} "
              f"{r['weight_gb']:10.2f} {r['bound_tokens_per_s']:18,.1f} {r['latency_over_bound']:10.2f}")
    print("resources: " + ", ".join(f"{k.upper()} {res[k]['used']:,} / {res[k]['available']:,} "
                                   f"({res[k]['utilization']:.1%})" for k in ("dsp", "bram36", "uram", "lut", "ff"))
          + f"; feasible: {res['feasible']}")
    print(f"speed: {timing['ops']}-op decode trace simulates in {timing['median_s'] * 1e3:.1f} ms "
          f"(median of {timing['repeats']}, min {timing['min_s'] * 1e3:.1f} ms, after warm-up); "
          f"first call {timing['cold_s'] * 1e3:.0f} ms")
    if args.json:
        args.json.write_text(json.dumps({"arch": arch.name, "rows": rows, "resources": res, "timing": timing},
                                        indent=1, default=float))


if __name__ == "__main__":
    main()
