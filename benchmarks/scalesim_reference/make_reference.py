"""Generate tests/data/scalesim_reference.csv: systolic compute cycles from the real SCALE-Sim v3.

Why: sparsim's systolic-array timing must agree with an independent, widely used simulator.
This script draws seeded random GEMM and conv layers (dense and layer-wise N:M sparse), on
square and rectangular arrays, for the os/ws/is dataflows, runs each through the installed
``scalesim`` package (driven via benchmarks/scalesim_runner.py, ideal memory, 0 stalls) and
records SCALE-Sim's "Total Cycles" and "Stall Cycles".  Run it with the scalesim venv::

    /work/venvs/scalesim/bin/python benchmarks/scalesim_reference/make_reference.py

Conv rows also carry M, N, K as SCALE-Sim maps them: M = Eh*Ew, N = num_filters,
K = filter_h*filter_w*channels, where SCALE-Sim ROUNDS UP the output size:
Eh = ceil((ifmap_h - filter_h + stride) / stride) (topology_utils.topo_calc_hyperparams),
which is one more than the usual floor((ifmap_h - filter_h) / stride) + 1 whenever
(ifmap_h - filter_h) % stride != 0.  There is no padding: ifmap sizes are used as given.
"""
import argparse
import csv
import math
import os
import random
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # benchmarks/ for scalesim_runner
from scalesim_runner import layer_gemm_dims, run_scalesim  # noqa: E402

COLUMNS = ["case", "layer_kind", "M", "N", "K", "ifmap_h", "ifmap_w", "filter_h", "filter_w",
           "channels", "num_filters", "stride", "nm", "dataflow", "rows", "cols",
           "scalesim_total_cycles", "scalesim_stall_cycles"]
DATAFLOWS = ("os", "ws", "is")
KINDS = ("gemm", "conv")
NMS = ("2:4", "1:4", "1:8", "2:8")
ARRAY_SIDES = (2, 3, 4, 5, 8, 12, 16, 24, 32, 48, 64, 128)
# SCALE-Sim costs roughly 1 us per (demand line x array edge element); this bounds each case
# to a few seconds.  Only used to reject oversized random draws.
COST_BUDGET = 4_000_000


def log_int(rng, lo, hi):
    """Log-uniform integer in [lo, hi]."""
    return int(round(math.exp(rng.uniform(math.log(lo), math.log(hi)))))


def approx_cost(layer, df, rows, cols):
    """Rough SCALE-Sim run time proxy: folds x lines per fold x array edge."""
    m, n, k = layer_gemm_dims(layer)
    if layer.get("nm"):
        nz, blk = map(int, layer["nm"].split(":"))
        k = (k // blk) * nz + min(k % blk, nz)
    sr, sc, t = {"os": (m, n, k), "ws": (k, n, m), "is": (k, m, n)}[df]
    return math.ceil(sr / rows) * math.ceil(sc / cols) * (2 * rows + cols + t) * (rows + 2 * cols)


def draw_layer(rng, kind, name):
    if kind == "gemm":
        return {"kind": kind, "name": name, "M": log_int(rng, 1, 384),
                "N": log_int(rng, 1, 384), "K": log_int(rng, 1, 384)}
    fh = rng.randint(1, 7)
    fw = fh if rng.random() < 0.7 else rng.randint(1, 7)
    return {"kind": kind, "name": name, "filter_h": fh, "filter_w": fw,
            "ifmap_h": rng.randint(fh, 48), "ifmap_w": rng.randint(fw, 48),
            "channels": log_int(rng, 1, 64), "num_filters": log_int(rng, 1, 160),
            "stride": rng.randint(1, 4)}


def make_cases(rng, n_cases):
    """Every third case is N:M sparse; kind/dataflow/N:M round-robin so all combos appear."""
    cases, counts = [], {False: 0, True: 0}
    for i in range(n_cases):
        sparse = i % 3 == 2
        j = counts[sparse]
        counts[sparse] += 1
        df, kind = DATAFLOWS[j % 3], KINDS[(j // 3) % 2]
        if rng.random() < 0.4:
            rows = cols = rng.choice(ARRAY_SIDES)
        else:
            rows, cols = rng.choice(ARRAY_SIDES), rng.choice(ARRAY_SIDES)
        while True:
            layer = draw_layer(rng, kind, f"layer{i}")  # no "DP" in names: SCALE-Sim
            if sparse:                                   # treats those as depthwise
                layer["nm"] = NMS[j % 4]
                if kind == "gemm":  # spread K % m evenly to exercise the partial last block
                    m = int(layer["nm"].split(":")[1])
                    layer["K"] = max(1, layer["K"] - layer["K"] % m + rng.randrange(m))
            if approx_cost(layer, df, rows, cols) <= COST_BUDGET:
                break
        cases.append((i, layer, df, rows, cols))
    return cases


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--n-cases", type=int, default=180, help="total; every third is sparse")
    ap.add_argument("--out", default=os.path.join(HERE, "..", "..", "tests", "data",
                                                  "scalesim_reference.csv"))
    args = ap.parse_args()
    rng = random.Random(args.seed)
    rows_out, t0 = [], time.time()
    for i, layer, df, rows, cols in make_cases(rng, args.n_cases):
        with tempfile.TemporaryDirectory(prefix="scalesim_ref_") as tmp:
            res = run_scalesim([layer], df, rows, cols, tmp)[0]
        m, n, k = layer_gemm_dims(layer)
        if layer["kind"] == "conv":  # our rounding must match SCALE-Sim's own ofmap dims
            assert m == res["ofmap_dims"][0] * res["ofmap_dims"][1], (layer, res)
        if res["stall_cycles"]:
            print(f"WARNING case {i}: {res['stall_cycles']} stall cycles", file=sys.stderr)
        rows_out.append({"case": i, "layer_kind": layer["kind"], "M": m, "N": n, "K": k,
                         **{c: layer.get(c, "") for c in COLUMNS[5:12]},
                         "nm": layer.get("nm", ""), "dataflow": df, "rows": rows,
                         "cols": cols, "scalesim_total_cycles": res["total_cycles"],
                         "scalesim_stall_cycles": res["stall_cycles"]})
        print(f"[{time.time() - t0:6.1f}s] case {i}: {layer['kind']} M={m} N={n} K={k} "
              f"nm={layer.get('nm', '-')} {df} {rows}x{cols} -> {res['total_cycles']}",
              file=sys.stderr)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows_out)
    print(f"wrote {len(rows_out)} cases to {args.out} in {time.time() - t0:.1f}s",
          file=sys.stderr)


if __name__ == "__main__":
    main()
