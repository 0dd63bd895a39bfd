"""Published results reproduced: sparsim's figure beside the published one, its source and the % difference.

    python benchmarks/papers.py              # the table (a few seconds)
    python benchmarks/papers.py --json out.json

Every row runs the shipped specs from a clean checkout; nothing is fitted here. Where sparsim
differs from the published figure by more than 15%, the row says why (what the model leaves
out, or how the published setup differs). The published figures and their primary sources:

- FlightLLM (Zeng et al., FPGA 2024, arXiv 2401.03868): LLaMA-2-7B batch-1 decode on an Alveo U280
  at ~55 tokens/s; 6.0x the energy efficiency (tokens/J) of an NVIDIA V100S.
- SAT / BDWP (Fang et al., N:M sparse training on a Xilinx VCU1525): 2:8 gives 1.75x average speedup.
- NVIDIA 2:4 GEMMs on A100: the sparse tensor cores double math throughput (Mishra et al. 2021,
  arXiv 2104.08378; cuSPARSELt documentation); measured library speedups: cuSPARSELt 4096^3 fp16
  0.5458 ms vs the best CUTLASS dense kernel 0.6080 ms, 1.11x (NVIDIA/CUDALibrarySamples issue 57);
  the PyTorch semi-structured sparsity tutorial's fp16 nn.Linear (3072 x 10240 input, 10240 -> 3072) on an
  A100 80GB: dense 0.870 ms, 2:4 (CUTLASS) 0.630 ms, 1.382x (pytorch/tutorials,
  prototype_source/semi_structured_sparse.rst).
- LLM serving: NVIDIA NeMo Framework inference performance (docs.nvidia.com/nemo-framework/user-guide/
  latest/performance/llama.html), Llama-2-7B, TP1, 128 input / 20 output tokens, average latency:
  A100 80GB SXM4 234.0 ms (batch 1) and 329.5 ms (batch 8); H100 80GB HBM3 153.8 and 199.2 ms. The same
  table lists each at tensor-parallel sizes 1, 2, 4 and 8 (benchmarks/nemo_table.py); fitting the batch growth
  as a + b / TP separates the part more GPUs share (b: GPU kernel time) from the part they do not (a: the
  serving stack's per-sequence work). Each latency row is printed twice: GPU kernels only, and kernels + the
  nemo-trtllm serving-stack profile estimated from those TP rows (`sparsim llm --stack nemo-trtllm`;
  held-out check: benchmarks/serving_stack_holdout.py).
- LLM prefill: TensorRT-LLM v0.5 performance document (NVIDIA/TensorRT-LLM docs/source/performance.md,
  "Low Latency"), LLaMA 7B, A100 FP16, batch 1, first-token latency: 16 ms (128 input tokens), 133 ms (2048).
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "benchmarks"))

from nemo_table import NEMO_ARCH, NEMO_MS, NEMO_OUTPUT  # noqa: E402
from simulator import load_arch  # noqa: E402
from simulator.serving_stack import apply_profile, per_sequence_token_from_tp_table, tp_split  # noqa: E402
from workloads.llm import simulate_llm  # noqa: E402

ARCH = ROOT / "arch_configs"
NEMO_TP = (1, 2, 4, 8)
NEMO_7B_MS = NEMO_MS["llama2-7b"]        # {gpu: {tp: {batch: ms}}}, benchmarks/nemo_table.py
WHY_THRESHOLD_PCT = 15.0
FLIGHTLLM = "Zeng et al., FlightLLM, FPGA 2024 (arXiv 2401.03868)"
NEMO = "NVIDIA NeMo Framework docs, Llama-2 inference performance (TP1, 128 in / 20 out)"
NEMO_TP_FIT = "NVIDIA NeMo Framework docs, Llama-2-7B at TP 1/2/4/8, batch 1 and 8: a + b/TP least-squares fit"
NEMO_STACK = ("NVIDIA NeMo Framework docs (TP1, 128 in / 20 out); + serving stack nemo-trtllm "
              "(arch_configs/serving_stacks, from the 7B TP 1/2/4/8 rows)")
TRTLLM = "TensorRT-LLM v0.5 performance doc, LLaMA 7B A100 FP16 batch 1 (1st token latency)"


@dataclass(frozen=True)
class Row:
    claim: str
    published: float
    unit: str
    source: str
    sparsim: Callable[[], float]
    why: str = ""          # required when sparsim differs by more than WHY_THRESHOLD_PCT


def _u280_decode(weights: str | None = None):
    return simulate_llm("llama2-7b", load_arch(ARCH / "fpga_u280_llm_sparse.yaml"), prompt_len=128,
                        output_len=512, bits=8, weights=weights)


def _v100s_decode():
    return simulate_llm("llama2-7b", load_arch(ARCH / "gpu_v100s.yaml"), prompt_len=128, output_len=512)


def _tokens_per_joule_ratio(weights: str | None) -> float:
    return _v100s_decode().energy_per_token_j / _u280_decode(weights).energy_per_token_j


def _gemm_speedup(arch: str, M: int, N: int, K: int, pattern: tuple[int, int] = (2, 4)) -> float:
    from simulator.engines import load_engine
    from simulator.trace import Op
    spec = load_arch(ARCH / arch)
    estimate = load_engine(spec.compute.kind).estimate
    dims, precision = {"M": M, "N": N, "K": K}, {"activations": 16, "weights": 16, "outputs": 16}
    dense = Op(name="dense", kind="gemm", dims=dims, precision=precision)
    sparse = Op(name="sparse", kind="gemm", dims=dims, precision=precision,
                sparsity={"weights": {"kind": "nm", "n": pattern[0], "m": pattern[1]}})
    return estimate(dense, spec).cycles / estimate(sparse, spec).cycles


def _first_token_ms(arch: str, prompt_len: int) -> float:
    r = simulate_llm("llama2-7b", load_arch(ARCH / arch), prompt_len=prompt_len, output_len=1)
    return r.ttft_s * 1e3


@functools.lru_cache(maxsize=None)
def _nemo_latency_ms(arch: str, batch: int, stack: str = "none") -> float:
    spec = load_arch(ARCH / arch)
    r = simulate_llm("llama2-7b", spec, prompt_len=128, output_len=NEMO_OUTPUT, batch=batch)
    return apply_profile(r, stack, [spec]).total_s * 1e3


def tp_split_growth(gpu: str, table: dict | None = None) -> tuple[float, float, list[float]]:
    """(a, b, growth): least-squares fit of the published batch 1 -> 8 latency growth over tensor-parallel
    sizes as a + b / TP (`simulator.serving_stack.tp_split`). b is the growth more GPUs share (kernel time:
    batched prefill, per-sequence KV reads, GEMMs), a the growth they do not (work every rank repeats per
    sequence, host-side work)."""
    rows = (table or NEMO_7B_MS)[gpu]
    growth = {tp: rows[tp][8] - rows[tp][1] for tp in NEMO_TP}
    a, b = tp_split(growth)
    return a, b, list(growth.values())


def _batch_growth_ms(gpu: str) -> float:
    return _nemo_latency_ms(NEMO_ARCH[gpu] + ".yaml", 8) - _nemo_latency_ms(NEMO_ARCH[gpu] + ".yaml", 1)


def _without_tp1_ms(gpu: str) -> tuple[float, float]:
    """(t, batch-8 TP-1 latency) with the stack term estimated from the TP 2, 4, 8 rows only (held out)."""
    t = per_sequence_token_from_tp_table({tp: r for tp, r in NEMO_7B_MS[gpu].items() if tp != 1}, NEMO_OUTPUT)
    return t, _nemo_latency_ms(NEMO_ARCH[gpu] + ".yaml", 8) + 8 * NEMO_OUTPUT * t


def _batch8_why(gpu: str) -> str:
    a, b, growth = tp_split_growth(gpu)
    worst = max(abs(a + b / tp - g) for tp, g in zip(NEMO_TP, growth))
    t, held = _without_tp1_ms(gpu)
    pub = NEMO_7B_MS[gpu][1][8]
    return (f"GPU kernels only. The same NeMo table has batch 1 and 8 at tensor-parallel sizes 1, 2, 4, 8; the "
            f"batch 1 -> 8 growth ({', '.join(f'{g:.1f}' for g in growth)} ms) fits a + b/TP within {worst:.1f} ms "
            f"with b = {b:.1f} ms, the part more GPUs share, which sparsim's batched prefill and per-sequence KV "
            f"reads reproduce (the 'GPUs share' row), and a = {a:.1f} ms that does not shrink with more GPUs: "
            "per-sequence work every rank repeats each token (sampling, stop checks, host-side token handling), "
            "i.e. the serving stack, not GPU kernels. The next row adds it as the nemo-trtllm profile "
            "(sparsim llm --stack nemo-trtllm). Held out: estimated from the TP 2/4/8 rows only "
            f"({t:.3f} ms per sequence and token) it predicts this row at {held:.1f} ms "
            f"({(held - pub) / pub * 100:+.1f}%); from the Llama-2-13B rows, and across the table, see "
            "benchmarks/serving_stack_holdout.py. Skinny GEMMs are not it: published A100 cuBLAS fp16 times put "
            "M = 16 on a 4096x4096 weight at 1388-1591 GiB/s against 1467 GiB/s at M = 1 (ml-explore/mlx PRs "
            "3180, 3255, 3315).")


def _nemo_rows(gpu: str) -> list[Row]:
    """The NeMo LLaMA-2-7B rows of one GPU: batch 1 and 8, kernels only and with the serving stack, and the
    batch growth GPUs share."""
    arch, rows = f"{NEMO_ARCH[gpu]}.yaml", []
    for batch in (1, 8):
        published = NEMO_7B_MS[gpu][1][batch]
        rows += [Row(f"{gpu} LLaMA-2-7B latency, batch {batch} (128 in / 20 out), GPU kernels", published, "ms",
                     NEMO, functools.partial(_nemo_latency_ms, arch, batch),
                     why=_batch8_why(gpu) if batch == 8 else ""),
                 Row(f"{gpu} LLaMA-2-7B latency, batch {batch}, kernels + NeMo serving stack", published, "ms",
                     NEMO_STACK, functools.partial(_nemo_latency_ms, arch, batch, "nemo-trtllm"))]
    rows.append(Row(f"{gpu} LLaMA-2-7B batch 1 -> 8 latency growth GPUs share (b of a + b/TP)",
                    tp_split_growth(gpu)[1], "ms", NEMO_TP_FIT, functools.partial(_batch_growth_ms, gpu)))
    return rows


ROWS = [
    Row("U280 LLaMA-2-7B batch-1 decode, dense INT8", 55.0, "tokens/s", FLIGHTLLM,
        lambda: 1.0 / _u280_decode().tpot_s),
    Row("U280 LLaMA-2-7B batch-1 decode, 2:4 INT8 weights", 55.0, "tokens/s", FLIGHTLLM,
        lambda: 1.0 / _u280_decode("2:4").tpot_s,
        why="sparsim streams the 2:4-compressed weights (plus indices) at the same HBM efficiency as dense ones and "
            "its chains never stall on index decode, so decode speeds up by the byte ratio; FlightLLM's 55 tokens/s "
            "is for its own compressed model (mixed sparsity and precision) on the real board, where sparse weight "
            "streams and instruction control cost more than the model charges. The dense row matches."),
    Row("U280 (2:4 INT8) vs V100S (fp16) tokens per joule, batch-1 decode", 6.0, "x", FLIGHTLLM,
        lambda: _tokens_per_joule_ratio("2:4"),
        why="the U280 carries its measured ~40 W standing power (U280 card readings, docs/power.md), so it "
            "draws ~54 W in decode; at FlightLLM's own 55 tokens/s that is ~1 J/token, and the published 6.0x "
            "then implies ~5.9 J/token on its V100S, 2.5x the 2.37 J/token sparsim gives a V100S that streams "
            "the fp16 weights at its modelled HBM efficiency (58 tokens/s at 138 W). sparsim models a tuned "
            "GPU kernel stack; the published GPU baseline spent more energy per token than that."),
    Row("U280 (dense INT8) vs V100S (fp16) tokens per joule, batch-1 decode", 6.0, "x", FLIGHTLLM,
        lambda: _tokens_per_joule_ratio(None),
        why="a dense INT8 U280 moves 1.9x the weight bytes of FlightLLM's compressed model per token; the "
            "published 6.0x compares FlightLLM's compressed model with a dense fp16 V100S, whose published "
            "energy per token is well above sparsim's (see the 2:4 row)."),
    Row("VCU1525 2:8 speedup over dense (compute-bound 4096^3 GEMM)", 1.75, "x",
        "Fang et al., SAT / BDWP: N:M sparse training on a VCU1525 (2:8 average)",
        lambda: _gemm_speedup("fpga_vcu1525_nm.yaml", 4096, 4096, 4096, (2, 8))),
    Row("A100 2:4 speedup, 4096^3 fp16 GEMM (cuSPARSELt vs best CUTLASS)", 1.11, "x",
        "NVIDIA/CUDALibrarySamples issue 57 (0.6080 / 0.5458 ms)",
        lambda: _gemm_speedup("gpu_a100_sxm4_80gb.yaml", 4096, 4096, 4096),
        why="the measured sparse time is the cuSPARSELt sample with its default algorithm, the dense one the "
            "CUTLASS profiler's best of many kernels; sparsim picks the best tile for both, as a tuned library "
            "would. The tutorial row below (both sides through PyTorch) agrees."),
    Row("A100 2:4 speedup, fp16 nn.Linear 3072x10240 -> 3072", 1.382, "x",
        "PyTorch semi-structured sparsity tutorial (A100 80GB: 0.870 / 0.630 ms)",
        lambda: _gemm_speedup("gpu_a100_sxm4_80gb.yaml", 3072, 3072, 10240)),
    Row("A100 2:4 speedup, 3072x10240 -> 3072, Ampere-like TC slice", 1.382, "x",
        "PyTorch semi-structured sparsity tutorial (A100 80GB: 0.870 / 0.630 ms)",
        lambda: _gemm_speedup("ampere_like_2to4_tc.yaml", 3072, 3072, 10240)),
    Row("A100 2:4 math ratio (sparse over dense tensor peak)", 2.0, "x",
        "Mishra et al. 2021 (arXiv 2104.08378); cuSPARSELt docs",
        lambda: _gemm_speedup("gpu_a100_sxm4_80gb.yaml", 16384, 16384, 16384),
        why="2x is the tensor cores' math ratio, not a kernel speedup: the 2:4 mainloop feeds the same dense "
            "operand in half the math time and pays each K-iteration's fixed cost on half the math, so even the "
            "largest GEMM gains ~1.4x in sparsim, as measured library kernels do (rows above)."),
    *_nemo_rows("A100"),
    Row("A100 LLaMA-7B first-token latency, batch 1, 128 input tokens", 16.0, "ms", TRTLLM,
        lambda: _first_token_ms("gpu_a100_sxm4_80gb.yaml", 128),
        why="the published time is one generate call with one output token (benchmark method in the same "
            "document), so it adds the runtime's fixed per-request work (input setup, sampling, host "
            "synchronisation, a few ms) that sparsim does not model; at 2048 tokens (next row) it is small."),
    Row("A100 LLaMA-7B first-token latency, batch 1, 2048 input tokens", 133.0, "ms", TRTLLM,
        lambda: _first_token_ms("gpu_a100_sxm4_80gb.yaml", 2048)),
    *_nemo_rows("H100"),
]


def evaluate(rows: list[Row] = ROWS) -> list[dict]:
    out = []
    for r in rows:
        value = float(r.sparsim())
        diff = (value - r.published) / r.published * 100.0
        why = r.why if abs(diff) > WHY_THRESHOLD_PCT else ""
        if abs(diff) > WHY_THRESHOLD_PCT and not r.why:
            why = "MISSING: off by more than 15% without a stated reason"
        out.append({"claim": r.claim, "sparsim": value, "published": r.published, "unit": r.unit,
                    "diff_pct": diff, "source": r.source, "why": why})
    return out


def print_table(results: list[dict]) -> None:
    print(f"{'claim':<66} {'sparsim':>9} {'published':>9} {'unit':<9} {'diff':>7}  source")
    for r in results:
        print(f"{r['claim']:<66} {r['sparsim']:>9.3g} {r['published']:>9.3g} {r['unit']:<9} "
              f"{r['diff_pct']:>+6.1f}%  {r['source']}")
        if r["why"]:
            print(f"{'':<4}why: {r['why']}")
    within = sum(abs(r["diff_pct"]) <= WHY_THRESHOLD_PCT for r in results)
    print(f"{within} of {len(results)} rows within {WHY_THRESHOLD_PCT:g}%; every other row states why.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = parser.parse_args(argv)
    results = evaluate()
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
