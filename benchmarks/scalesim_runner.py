"""Run the real SCALE-Sim v3 on a set of layers with ideal memory and report cycles as JSON.

Why: SCALE-Sim is the independent baseline that sparsim's systolic timing is checked and
benchmarked against.  This script only *drives* the installed ``scalesim`` package (none of
its code is copied); it must be run with the interpreter of a separate venv, see
``benchmarks/scalesim_reference/README.md``::

    /work/venvs/scalesim/bin/python benchmarks/scalesim_runner.py \
        --layers gemm1024 --dataflow os --rows 32 --cols 32

``--layers`` takes comma-separated GEMMs ``gemm<S>`` (S x S x S) or ``gemm<M>x<N>x<K>``;
``--topology`` takes a SCALE-Sim topology CSV (GEMM "name, M, N, K[, N:M]," rows or conv
"name, ifmap_h, ifmap_w, filter_h, filter_w, channels, num_filters, stride[, N:M]," rows;
every row must end with a comma because SCALE-Sim drops the last field).

Memory model: InterfaceBandwidth=CALC, in which SCALE-Sim's read buffers never stall, and
every SRAM is sized to >= 100x the operand it holds.  The 100x makes all of an operand fit
in one of the 100 "sets" of SCALE-Sim's estimate-bandwidth read buffer (its cheapest path;
an absurdly large SRAM would instead make the final prefetch trace huge and slow) and keeps
the OFMAP write buffer from ever filling, so stall cycles are 0.  Runs happen in a temporary
directory with trace saving off; the report CSVs are deleted afterwards.

Prints one JSON object: {"tool", "version", "layers": [{"name", "total_cycles",
"stall_cycles"}], "wall_s", "peak_rss_mb"}.  wall_s covers only the SCALE-Sim run (config,
topology parsing and simulation), not interpreter start-up or imports.
"""
import argparse
import contextlib
import csv
import json
import math
import os
import re
import resource
import sys
import tempfile
import time

CFG_TEMPLATE = """\
[general]
run_name = run

[architecture_presets]
ArrayHeight = {rows}
ArrayWidth = {cols}
IfmapSramSzkB = {ifmap_kb}
FilterSramSzkB = {filter_kb}
OfmapSramSzkB = {ofmap_kb}
IfmapOffset = 0
FilterOffset = 10000000
OfmapOffset = 20000000
Dataflow = {dataflow}
ReadRequestBuffer = 32
WriteRequestBuffer = 32

[layout]
IfmapCustomLayout = False
IfmapSRAMBankBandwidth = 10
IfmapSRAMBankNum = 10
IfmapSRAMBankPort = 2
FilterCustomLayout = False
FilterSRAMBankBandwidth = 10
FilterSRAMBankNum = 10
FilterSRAMBankPort = 2

[sparsity]
SparsitySupport = {sparse}
SparseRep = ellpack_block
OptimizedMapping = false
BlockSize = 4
RandomNumberGeneratorSeed = 40

[run_presets]
InterfaceBandwidth = CALC
UseRamulatorTrace = False
"""
# Notes on the config (from scalesim/scale_config.py, v3.0.0):
# * No [network_presets] section: v3.0.0 reads TopologyCsvLoc from the wrong section and
#   crashes; the topology is passed as an argument instead.
# * FilterOffset must be non-zero in sparse mode: SCALE-Sim marks pruned weights by
#   multiplying addresses by 0, so a weight at address 0 would count as pruned.
# * [sparsity] SparsitySupport=true + OptimizedMapping=false selects layer-wise N:M
#   sparsity, read from each topology row's last "N:M" column (default 1:1 = dense).
#   SparseRep only changes the storage numbers in SPARSE_REPORT.csv, not the cycles.


def sram_kb(elems):
    """SRAM size (kB, 1-byte words) holding >= 100x `elems` words (see module docstring)."""
    return math.ceil(100 * (elems + 1) / 1024) + 1


def conv_out(size, filt, stride):
    """SCALE-Sim's output size: ceil((size - filt + stride) / stride), i.e. it rounds UP
    (topology_utils.topo_calc_hyperparams); floor((size - filt) / stride) + 1 would round down.
    The extra row/column of windows hangs over the ifmap edge (those reads become -1)."""
    return -(-(size - filt + stride) // stride)


def layer_gemm_dims(layer):
    """(M, N, K) as SCALE-Sim maps a layer: M = Eh*Ew output pixels, N = filters,
    K = filter_h*filter_w*channels.  A GEMM "M, N, K" row is loaded as a conv with
    ifmap M x K, a 1 x K filter, 1 channel, N filters, stride 1."""
    if layer["kind"] == "gemm":
        return layer["M"], layer["N"], layer["K"]
    eh = conv_out(layer["ifmap_h"], layer["filter_h"], layer["stride"])
    ew = conv_out(layer["ifmap_w"], layer["filter_w"], layer["stride"])
    return (eh * ew, layer["num_filters"],
            layer["filter_h"] * layer["filter_w"] * layer["channels"])


def topology_row(layer):
    """One SCALE-Sim topology CSV row (trailing comma required)."""
    nm = layer.get("nm") or "1:1"
    if layer["kind"] == "gemm":
        vals = [layer["name"], layer["M"], layer["N"], layer["K"], nm]
    else:
        vals = [layer["name"]] + [layer[k] for k in ("ifmap_h", "ifmap_w", "filter_h",
                                                     "filter_w", "channels", "num_filters",
                                                     "stride")] + [nm]
    return ", ".join(str(v) for v in vals) + ",\n"


def run_scalesim(layers, dataflow, rows, cols, workdir):
    """Run SCALE-Sim on `layers` (all of one kind) in `workdir`.

    Returns one dict per layer: name, total_cycles, stall_cycles (the "Total Cycles" and
    "Stall Cycles" columns of COMPUTE_REPORT.csv) and the scalesim ofmap dims.
    """
    from scalesim.scale_sim import scalesim  # only importable inside the scalesim venv

    kinds = {l["kind"] for l in layers}
    assert len(kinds) == 1, "SCALE-Sim reads one topology kind (gemm or conv) per run"
    kind = kinds.pop()
    ifmap_e = filter_e = ofmap_e = 1
    for l in layers:
        m, n, k = layer_gemm_dims(l)
        ifmap_e = max(ifmap_e, m * k if kind == "gemm" else
                      l["ifmap_h"] * l["ifmap_w"] * l["channels"])
        filter_e, ofmap_e = max(filter_e, k * n), max(ofmap_e, m * n)
    sparse = any((l.get("nm") or "1:1") != "1:1" for l in layers)
    cfg = os.path.join(workdir, "scale.cfg")
    topo = os.path.join(workdir, "topology.csv")
    layout = os.path.join(workdir, "layout.csv")  # required file; custom layouts are off
    with open(cfg, "w") as f:
        f.write(CFG_TEMPLATE.format(rows=rows, cols=cols, dataflow=dataflow,
                                    ifmap_kb=sram_kb(ifmap_e), filter_kb=sram_kb(filter_e),
                                    ofmap_kb=sram_kb(ofmap_e), sparse=str(sparse).lower()))
    with open(topo, "w") as f:
        f.write("Layer, M, N, K, N:M,\n" if kind == "gemm" else
                "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, "
                "Channels, Num Filter, Strides, N:M,\n")
        f.writelines(topology_row(l) for l in layers)
    with open(layout, "w") as f:
        f.write("Layer name,\n")
    out_dir = os.path.join(workdir, "out")
    with contextlib.redirect_stdout(sys.stderr):  # keep stdout clean for the JSON
        sim = scalesim(save_disk_space=True, verbose=False, config=cfg, topology=topo,
                       layout=layout, input_type_gemm=(kind == "gemm"))
        sim.run_scale(top_path=out_dir)
    with open(os.path.join(out_dir, "run", "COMPUTE_REPORT.csv")) as f:
        report = [[c.strip() for c in r] for r in csv.reader(f)][1:]
    results = []
    for i, (l, r) in enumerate(zip(layers, report)):
        results.append({"name": l["name"], "total_cycles": int(r[2]),
                        "stall_cycles": int(r[3]),
                        "ofmap_dims": list(sim.topo.get_layer_ofmap_dims(i))})
    return results


def parse_layers(spec):
    """'gemm1024,gemm64x128x256' -> GEMM layer dicts."""
    layers = []
    for tok in spec.split(","):
        m = re.fullmatch(r"gemm(\d+)(?:x(\d+)x(\d+))?", tok.strip())
        if not m:
            raise SystemExit(f"bad layer spec {tok!r}; use gemm<S> or gemm<M>x<N>x<K>")
        dims = [int(m.group(1))] * 3 if m.group(2) is None else [int(g) for g in m.groups()]
        layers.append({"kind": "gemm", "name": tok.strip(), **dict(zip("MNK", dims))})
    return layers


def read_topology(path, kind):
    """Layer dicts from a SCALE-Sim topology CSV; kind 'auto' = gemm if < 8 header fields."""
    with open(path) as f:
        rows = [[c.strip() for c in line.strip().split(",")[:-1]] for line in f if line.strip()]
    if kind == "auto":
        kind = "gemm" if len(rows[0]) < 8 else "conv"
    keys = ("M", "N", "K") if kind == "gemm" else (
        "ifmap_h", "ifmap_w", "filter_h", "filter_w", "channels", "num_filters", "stride")
    layers = []
    for r in rows[1:]:
        l = {"kind": kind, "name": r[0], **{k: int(v) for k, v in zip(keys, r[1:])}}
        if len(r) > len(keys) + 1:
            l["nm"] = r[len(keys) + 1]
        layers.append(l)
    return layers


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--layers", help="comma-separated gemm<S> or gemm<M>x<N>x<K>")
    src.add_argument("--topology", help="SCALE-Sim topology CSV")
    ap.add_argument("--topology-kind", choices=("auto", "gemm", "conv"), default="auto")
    ap.add_argument("--dataflow", choices=("os", "ws", "is"), default="os")
    ap.add_argument("--rows", type=int, default=32)
    ap.add_argument("--cols", type=int, default=32)
    args = ap.parse_args()
    layers = (parse_layers(args.layers) if args.layers
              else read_topology(args.topology, args.topology_kind))
    from importlib.metadata import version
    with tempfile.TemporaryDirectory(prefix="scalesim_") as tmp:
        t0 = time.perf_counter()
        res = run_scalesim(layers, args.dataflow, args.rows, args.cols, tmp)
        wall = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB
    print(json.dumps({
        "tool": "scalesim", "version": version("scalesim"),
        "dataflow": args.dataflow, "rows": args.rows, "cols": args.cols,
        "layers": [{k: r[k] for k in ("name", "total_cycles", "stall_cycles")} for r in res],
        "wall_s": round(wall, 3), "peak_rss_mb": round(peak_mb, 1)}))


if __name__ == "__main__":
    main()
