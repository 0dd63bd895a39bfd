"""Held-out check of the serving-stack term: estimate it on some NeMo rows, predict the others.

    python benchmarks/serving_stack_holdout.py            # per-row table and summary (~10 s)
    python benchmarks/serving_stack_holdout.py --json out.json

The per-sequence, per-output-token stack time t (`simulator.serving_stack`) is estimated from one
part of the published NeMo Llama-2 table (`benchmarks/nemo_table.py`) and used to predict the rest:

- `7b->13b`: t from every Llama-2-7B row, predicting every Llama-2-13B row;
- `13b->7b`: the reverse;
- `7b-tp`:   leave one TP out: t from the other three Llama-2-7B TPs, predicting that TP's rows.

Each row is predicted twice: GPU kernels only (sparsim's `llm` on the shipped spec) and kernels + the
stack term (batch x 20 tokens x t). Tensor parallelism is costed as one rank's shard of the model
(heads, KV heads, FFN and vocabulary divided by TP; hidden size and head size kept), with no
all-reduce time: communication is not modelled, so absolute TP > 1 latencies are expected low for
both predictions. The growth over batch 1 at the same TP is reported too: there the terms that do
not depend on batch (communication latency, per-request work) cancel, and what is left is what the
stack term is about. Entries the table's own order flags (`inconsistent_entries`) are shown, not scored.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from nemo_table import NEMO_ARCH, NEMO_INPUT, NEMO_MS, NEMO_OUTPUT  # noqa: E402
from simulator import load_arch  # noqa: E402
from simulator.serving_stack import inconsistent_entries, per_sequence_token_from_tp_table  # noqa: E402
from workloads.llm import simulate_llm  # noqa: E402

# meta-llama/Llama-2-13b-hf config.json (Hugging Face Hub); Touvron et al. 2023 (arXiv 2307.09288).
LLAMA2_13B = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
              "hidden_size": 5120, "intermediate_size": 13824, "num_attention_heads": 40, "num_hidden_layers": 40,
              "num_key_value_heads": 40, "vocab_size": 32000, "torch_dtype": "float16"}


def _config(model: str) -> dict:
    if model == "llama2-13b":
        return dict(LLAMA2_13B)
    return json.loads((ROOT / "workloads" / "hf_configs" / f"{model}.json").read_text())


def tp_shard(config: dict, tp: int) -> dict:
    """One tensor-parallel rank's share (Megatron-style column/row split): heads, KV heads, FFN width and
    vocabulary divided by `tp`; the hidden size and head size stay."""
    heads = config["num_attention_heads"]
    return {**config, "head_dim": config["hidden_size"] // heads, "num_attention_heads": heads // tp,
            "num_key_value_heads": config.get("num_key_value_heads", heads) // tp,
            "intermediate_size": config["intermediate_size"] // tp, "vocab_size": config["vocab_size"] // tp}


@functools.lru_cache(maxsize=None)
def kernel_ms(model: str, gpu: str, tp: int, batch: int) -> float:
    """sparsim's kernels-only latency of one TP rank (128 in / 20 out), in ms."""
    arch = load_arch(ROOT / "arch_configs" / f"{NEMO_ARCH[gpu]}.yaml")
    r = simulate_llm(tp_shard(_config(model), tp), arch, prompt_len=NEMO_INPUT, output_len=NEMO_OUTPUT, batch=batch)
    return r.total_s * 1e3


def _pct(pred: float, pub: float) -> float | None:
    return (pred - pub) / pub * 100.0 if abs(pub) > 1e-9 else None


def predict(model: str, gpu: str, t_ms: float, tps: list[int] | None = None) -> list[dict]:
    """Rows of `model` on `gpu` (TPs `tps`, default all) predicted with and without the stack term t."""
    table = NEMO_MS[model][gpu]
    bad = inconsistent_entries(table)
    rows = []
    for tp in sorted(tps or table):
        for b, pub in sorted(table[tp].items()):
            kern, stack = kernel_ms(model, gpu, tp, b), b * NEMO_OUTPUT * t_ms
            row = {"model": model, "gpu": gpu, "tp": tp, "batch": b, "published_ms": pub, "kernels_ms": kern,
                   "with_stack_ms": kern + stack, "scored": (tp, b) not in bad,
                   "err_kernels_pct": _pct(kern, pub), "err_stack_pct": _pct(kern + stack, pub)}
            if b > 1 and 1 in table[tp]:
                g_pub = pub - table[tp][1]
                g_kern = kern - kernel_ms(model, gpu, tp, 1)
                g_stack = g_kern + (b - 1) * NEMO_OUTPUT * t_ms
                row.update(growth_published_ms=g_pub, growth_kernels_ms=g_kern, growth_stack_ms=g_stack,
                           growth_scored=row["scored"] and (tp, 1) not in bad)
            rows.append(row)
    return rows


def experiments() -> list[dict]:
    """Every held-out experiment: its name, the t it estimated (per GPU) and its predicted rows."""
    out = []
    for name, fit_model, test_model in (("7b->13b", "llama2-7b", "llama2-13b"), ("13b->7b", "llama2-13b", "llama2-7b")):
        for gpu in NEMO_ARCH:
            t = per_sequence_token_from_tp_table(NEMO_MS[fit_model][gpu], NEMO_OUTPUT)
            out.append({"experiment": name, "gpu": gpu, "t_ms": t, "rows": predict(test_model, gpu, t)})
    for gpu in NEMO_ARCH:
        table = NEMO_MS["llama2-7b"][gpu]
        for held in sorted(table):
            t = per_sequence_token_from_tp_table({tp: r for tp, r in table.items() if tp != held}, NEMO_OUTPUT)
            out.append({"experiment": f"7b-tp (TP {held} held out)", "gpu": gpu, "t_ms": t,
                        "rows": predict("llama2-7b", gpu, t, [held])})
    return out


def mean_abs(rows: list[dict], key: str, growth: bool = False) -> float | None:
    """Mean |error| over the scored rows: latency in %, growth over batch 1 in ms (a growth of a few ms makes
    a % meaningless)."""
    if growth:
        errs = [abs(r[key] - r["growth_published_ms"]) for r in rows if r.get("growth_scored")]
    else:
        errs = [abs(r[key]) for r in rows if r["scored"] and r[key] is not None]
    return sum(errs) / len(errs) if errs else None


def summary(exps: list[dict]) -> list[dict]:
    """Per experiment (all GPUs together): mean |error| of TP 1 latency (the figure `sparsim llm` gives
    for one GPU), of batch 8 at TP 1, and of the growth over batch 1 at every TP, with and without the term."""
    out = []
    for name in dict.fromkeys(e["experiment"].split(" (")[0] for e in exps):
        rows = [r for e in exps if e["experiment"].split(" (")[0] == name for r in e["rows"]]
        tp1 = [r for r in rows if r["tp"] == 1]
        b8 = [r for r in tp1 if r["batch"] == 8]
        grown = [r for r in rows if "growth_published_ms" in r]
        out.append({"experiment": name, "rows": sum(r["scored"] for r in rows),
                    "tp1_latency_kernels_pct": mean_abs(tp1, "err_kernels_pct"),
                    "tp1_latency_stack_pct": mean_abs(tp1, "err_stack_pct"),
                    "tp1_batch8_kernels_pct": mean_abs(b8, "err_kernels_pct"),
                    "tp1_batch8_stack_pct": mean_abs(b8, "err_stack_pct"),
                    "growth_rows": sum(r["growth_scored"] for r in grown),
                    "growth_kernels_ms": mean_abs(grown, "growth_kernels_ms", True),
                    "growth_stack_ms": mean_abs(grown, "growth_stack_ms", True)})
    return out


def _f(x, fmt="{:+.1f}") -> str:
    return "-" if x is None else fmt.format(x)


def print_report(exps: list[dict], summ: list[dict]) -> None:
    print(f"{'experiment':<24} {'gpu':<5} {'t ms':>6} {'model':<11} {'TP':>2} {'B':>2} {'pub':>7} {'kern':>7} "
          f"{'+stack':>7} {'err k':>7} {'err k+s':>7} {'growth pub/k/k+s ms':>22}")
    for e in exps:
        for r in e["rows"]:
            growth = (f"{r['growth_published_ms']:6.1f} {r['growth_kernels_ms']:6.1f} {r['growth_stack_ms']:6.1f}"
                      if "growth_published_ms" in r else "")
            flag = ("" if r["scored"] else "  (inconsistent entry, not scored)") or \
                ("" if r.get("growth_scored", True) else "  (batch 1 entry inconsistent: growth not scored)")
            print(f"{e['experiment']:<24} {e['gpu']:<5} {e['t_ms']:6.3f} {r['model']:<11} {r['tp']:>2} {r['batch']:>2} "
                  f"{r['published_ms']:7.1f} {r['kernels_ms']:7.1f} {r['with_stack_ms']:7.1f} "
                  f"{_f(r['err_kernels_pct']):>6}% {_f(r['err_stack_pct']):>6}% {growth:>22}{flag}")
    print("\nmean |error| over scored rows: TP 1 latency (%), TP 1 batch 8 (%), growth over batch 1 at every TP (ms)")
    print(f"{'experiment':<10} {'rows':>4} {'TP1 k':>7} {'k+stack':>8} {'B8 k':>6} {'k+stack':>8} {'growth rows':>11} "
          f"{'k ms':>6} {'k+stack':>8}")
    for s in summ:
        print(f"{s['experiment']:<10} {s['rows']:>4} {_f(s['tp1_latency_kernels_pct'], '{:.1f}'):>7} "
              f"{_f(s['tp1_latency_stack_pct'], '{:.1f}'):>8} {_f(s['tp1_batch8_kernels_pct'], '{:.1f}'):>6} "
              f"{_f(s['tp1_batch8_stack_pct'], '{:.1f}'):>8} {s['growth_rows']:>11} "
              f"{_f(s['growth_kernels_ms'], '{:.1f}'):>6} {_f(s['growth_stack_ms'], '{:.1f}'):>8}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write every row and the summary as JSON")
    args = parser.parse_args(argv)
    exps = experiments()
    summ = summary(exps)
    print_report(exps, summ)
    if args.json:
        args.json.write_text(json.dumps({"experiments": exps, "summary": summ}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
