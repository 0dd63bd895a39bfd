"""N:M training sweep: step time, tokens/s and energy per token for dense, 2:4, 1:4 and 2:8
weights, with and without transposable masks, on the A100 spec (LLaMA-2-7B, seq 4096) and the
SAT-like VCU1525 N:M design (BERT-base encoder, seq 128, micro-batch 8, 16-bit).

    python benchmarks/bench_training_nm.py [--json out.json]

Prints each pattern's step time and its ratio to dense (speedup), and the per-pass ratios
(forward, backward), so the effect of a transposable mask on backward-data is visible. Nothing
here is fitted: the engines and the training model (docs/training.md) give the numbers.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simulator.spec import load_arch  # noqa: E402
from simulator.training.recipe import TrainingRecipe  # noqa: E402
from simulator.training.step import simulate_training  # noqa: E402
from workloads.extract.training import hf_training_trace  # noqa: E402

CASES = [("gpu_a100_sxm4_80gb", "llama2-7b", dict(seq_len=4096, batch=1)),
         ("fpga_vcu1525_nm", "bert-base-uncased", dict(seq_len=128, batch=8, bits=16, lm_head=False))]
PATTERNS = (None, "2:4", "1:4", "2:8")


def run() -> list[dict]:
    rows = []
    for arch_name, model, kw in CASES:
        arch = load_arch(ROOT / "arch_configs" / f"{arch_name}.yaml")
        base = None
        for transposable in (False, True):
            for pattern in PATTERNS:
                tt, shape = hf_training_trace(model, weights=pattern, recipe=TrainingRecipe(transposable=transposable),
                                              **kw)
                r = simulate_training(tt, arch, shape=shape)
                base = base or r
                rows.append({"arch": arch_name, "model": model, "weights": pattern or "dense",
                             "transposable": transposable, "step_s": r.step_s,
                             "tokens_per_s": r.tokens_per_s, "energy_per_token_j": r.energy_per_token_j,
                             "speedup": base.step_s / r.step_s,
                             "forward_speedup": base.split_s["forward"] / r.split_s["forward"],
                             "backward_speedup": base.split_s["backward"] / r.split_s["backward"]})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, help="write the rows as JSON")
    args = ap.parse_args()
    rows = run()
    print(f"{'arch':22} {'model':18} {'weights':7} {'transp.':7} {'step ms':>9} {'tok/s':>9} {'mJ/tok':>8} "
          f"{'speedup':>8} {'fwd':>6} {'bwd':>6}")
    for r in rows:
        if r["weights"] == "dense" and r["transposable"]:
            continue
        print(f"{r['arch']:22} {r['model']:18} {r['weights']:7} {str(r['transposable']):7} {r['step_s'] * 1e3:9.2f} "
              f"{r['tokens_per_s']:9.0f} {r['energy_per_token_j'] * 1e3:8.3f} {r['speedup']:7.2f}x "
              f"{r['forward_speedup']:5.2f}x {r['backward_speedup']:5.2f}x")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
