"""`sparsim compare`: the same workload dense (every operand's sparsity removed) vs as given.

Both runs use one arch, so the ratios isolate what the workload's sparsity buys on that
hardware: `speedup` = dense cycles / sparse cycles and `energy_ratio` = sparse energy /
dense energy (below 1 saves energy), per op and in total.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

from simulator.cli import (ARCH_OPTION, JSON_OPTION, OUT_OPTION, QUIET_OPTION, SET_OPTION, TOP_OPTION, WORKLOAD_OPTION,
                           app, console, si, simulate_located)
from simulator.outputs import finite_json

if TYPE_CHECKING:
    import pandas as pd

    from simulator.spec import Arch
    from simulator.trace import Trace


def strip_sparsity(trace: Trace) -> Trace:
    """The same trace with every operand dense (shapes, precisions, repeats unchanged)."""
    from simulator.trace import OperandSparsity
    ops = [op.model_copy(update={"sparsity": OperandSparsity()}) for op in trace.ops]
    return trace.model_copy(update={"ops": ops, "name": f"{trace.name} (dense)"})


def compare_runs(trace: Trace, arch: Arch) -> tuple[pd.DataFrame, dict]:
    """Per-op and total speedup and energy ratio of `trace` as given vs its dense twin on `arch`."""
    import pandas as pd

    from simulator.simulate import simulate
    dense = simulate(strip_sparsity(trace), arch)
    sparse = simulate(trace, arch)
    rows = []
    for d, s in zip(dense.rows, sparse.rows):
        rows.append({
            "op": s["op"], "kind": s["kind"], "weights_sparsity": s["weights_sparsity"],
            "activations_sparsity": s["activations_sparsity"],
            "dense_cycles": d["cycles"], "sparse_cycles": s["cycles"],
            "speedup": d["cycles"] / s["cycles"] if s["cycles"] > 0 else float("nan"),
            "dense_energy_pj": d["energy_pj"], "sparse_energy_pj": s["energy_pj"],
            "energy_ratio": s["energy_pj"] / d["energy_pj"] if d["energy_pj"] > 0 else float("nan"),
            "sparse_stall_cycles": s["stall_cycles"], "model": s["model"], "notes": s["notes"],
        })
    td, ts = dense.totals, sparse.totals
    totals = {"arch": arch.name, "workload": trace.name, "ops": len(rows),
              "dense_cycles": td["cycles"], "sparse_cycles": ts["cycles"],
              "speedup": td["cycles"] / ts["cycles"] if ts["cycles"] > 0 else float("nan"),
              "dense_energy_pj": td["energy_pj"], "sparse_energy_pj": ts["energy_pj"],
              "energy_ratio": ts["energy_pj"] / td["energy_pj"] if td["energy_pj"] > 0 else float("nan"),
              "dense_latency_s": td["latency_s"], "sparse_latency_s": ts["latency_s"]}
    return pd.DataFrame(rows), totals


@app.command()
def compare(
    arch: Path = ARCH_OPTION,
    workload: Path = WORKLOAD_OPTION,
    set_: list[str] = SET_OPTION,
    out: Optional[Path] = OUT_OPTION,
    as_json: bool = JSON_OPTION,
    quiet: bool = QUIET_OPTION,
    top: int = TOP_OPTION,
):
    """Run a workload dense and sparse on one arch: speedup and energy ratio per op and in total."""
    from rich.table import Table

    from simulator.simulate import write_table
    from simulator.spec import load_arch
    from simulator.trace import load_trace

    spec = load_arch(arch, list(set_))
    trace = load_trace(workload)
    df, totals = simulate_located(compare_runs, trace, spec, arch, workload)
    if out:
        write_table(df, out, {"totals": totals})
    if as_json:
        print(finite_json(totals))
        return
    if quiet:
        return
    table = Table(title=f"{trace.name} on {spec.name}: sparse vs dense")
    heads = ["op", "weights", "activations", "dense cycles", "sparse cycles", "speedup", "energy ratio"]
    for h in heads:
        table.add_column(h, justify="left" if h in ("op", "weights", "activations") else "right")
    shown = df if top <= 0 or len(df) <= top else df.head(top)
    for _, r in shown.iterrows():
        table.add_row(r["op"], r["weights_sparsity"], r["activations_sparsity"], si(r["dense_cycles"]),
                      si(r["sparse_cycles"]), f"{r['speedup']:.2f}x", f"{r['energy_ratio']:.2f}")
    console.print(table)
    if len(shown) < len(df):
        console.print(f"... {len(df) - len(shown)} more ops (use --top 0 for all, or --out FILE)")
    console.print(f"[bold]total[/bold]: speedup {totals['speedup']:.2f}x, energy ratio {totals['energy_ratio']:.2f} "
                  f"(sparse/dense), {si(totals['dense_cycles'])} -> {si(totals['sparse_cycles'])} cycles, "
                  f"{totals['dense_energy_pj'] * 1e-6:.4g} -> {totals['sparse_energy_pj'] * 1e-6:.4g} uJ")
    for note in sorted({n for n in df["notes"] if n}):
        console.print(f"[yellow]note[/yellow]: {note}")
    if out:
        console.print(f"wrote {out}")
