"""Side-by-side: sparsim vs the real ZigZag 3.9.1 on ZigZag's own `tpu_like` example hardware.

Both tools see the same layers (sparsim's trace is built from the layer dims ZigZag parsed) and the same
hardware (ZigZag's `tpu_like.yaml` + mapping, translated in `arch_configs/zigzag_tpu_like.yaml`). The
script prints per-layer and total cycles, energy and DRAM bytes of both tools with % differences, and
both tools' run times. ZigZag runs in its own venv through `benchmarks/zigzag_runner.py`:

    python benchmarks/bench_vs_zigzag.py                           # recorded ZigZag runs, all cases
    python benchmarks/bench_vs_zigzag.py --case resnet18 --per-layer
    python benchmarks/bench_vs_zigzag.py --install-zigzag /work/venvs/zigzag   # create the venv, run live
    python benchmarks/bench_vs_zigzag.py --zigzag-python /work/venvs/zigzag/bin/python --record

By default the recorded runs in `benchmarks/results/zigzag/<case>.json` are compared (no ZigZag
install needed). `--record` rewrites them from a live run. sparsim's time is the median of repeated
in-process `simulate` runs after a warm-up (JIT compile, mapping memo cleared before each repeat when
the mapping module offers it); ZigZag's is its own API wall time (LOMA search + cost model),
excluding interpreter start-up.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simulator import load_arch, simulate  # noqa: E402
from simulator.kernels import jit_now  # noqa: E402
from simulator.trace import trace_from_dict  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "zigzag"
ARCH = ROOT / "arch_configs" / "zigzag_tpu_like.yaml"
CASES = ("resnet18", "gemm1024", "gemm1x4096x4096", "gemm4096x1024x1024")
HELD_OUT = ("alexnet", "mobilenetv2",      # networks and GEMMs not used while developing the mapping model
            "gemm128x3072x768", "gemm512", "gemm64x4096x1024", "gemm2048x256x2048", "gemm8192x64x512",
            "gemm256x256x4096")
NETWORKS = ("resnet50", "vgg16", "efficientnet_b0_lite", "squeezenet1_1", "googlenet", "inception_v3_lite",
            "bert_base_layer", "bert_large_layer", "gpt2_layer")
# generated after the model above was developed and recorded before any change they motivated
ZIGZAG_PIN = ("zigzag-dse==3.9.1", "six")
_REL = re.compile(r"^(\w+)=(\d+)\*(\w+)\+(\d+)\*(\w+)$")


def install_zigzag(venv: Path) -> Path:
    """Create `venv` with ZigZag 3.9.1 (+ six, which it imports but does not declare); return its python."""
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *ZIGZAG_PIN], check=True)
    return python


def zigzag_reference(case: str, zigzag_python: str | None, record: bool) -> dict:
    """ZigZag's per-layer results: a live run through zigzag_runner.py, or the recorded JSON."""
    path = RESULTS / f"{Path(case).stem if case.endswith('.onnx') else case}.json"
    if zigzag_python is None:
        if not path.exists():
            print(f"error: {path}: no recorded ZigZag run for case '{case}' (run ZigZag live with "
                  "--zigzag-python or --install-zigzag, add --record to keep it)", file=sys.stderr)
            raise SystemExit(2)
        return json.loads(path.read_text())
    out = subprocess.run([zigzag_python, str(ROOT / "benchmarks" / "zigzag_runner.py"), "--case", case],
                         check=True, capture_output=True, text=True)
    ref = json.loads(out.stdout)
    if record:
        path.write_text(json.dumps(ref, indent=1) + "\n")
    return ref


def _conv_geometry(layer: dict, out_dim: str, filt_dim: str, in_dim: str) -> tuple[int, int, int]:
    """(input size, stride, pad) of one spatial axis from ZigZag's relation 'iy=2*oy+1*fy' and padding."""
    stride = 1
    for rel in layer["dimension_relations"]:
        m = _REL.match(rel.replace(" ", "").lower())
        if m and m.group(1) == in_dim.lower():
            stride = int(m.group(2))
    out, filt = layer["loop_sizes"][out_dim], layer["loop_sizes"][filt_dim]
    pad = layer["padding"].get(in_dim, [0, 0])[0]
    size = out * stride
    if (size + 2 * pad - filt) // stride + 1 != out:       # not a 'same'-style conv: ZigZag's input extent
        size = layer["pr_loop_sizes"].get(in_dim, (out - 1) * stride + filt) - 2 * pad
    return size, stride, pad


def zigzag_layer_op(layer: dict) -> dict | None:
    """A sparsim trace op for a ZigZag Conv/Gemm layer (None for layers sparsim is not compared on)."""
    ls = layer["loop_sizes"]
    name = layer["name"].strip("/").replace("/", ".")
    if layer["type"] == "Gemm":
        dims = {"M": ls.get("D", 1) * ls.get("B", 1), "N": ls["K"], "K": ls["C"]}
        return {"name": name, "kind": "gemm", "dims": dims}
    if layer["type"] != "Conv":
        return None
    h, stride, pad = _conv_geometry(layer, "OY", "FY", "IY")
    w, stride_w, pad_w = _conv_geometry(layer, "OX", "FX", "IX")
    if stride_w != stride:
        raise ValueError(f"{name}: sparsim convs have one stride for both axes")
    # A 1x7 / 7x1 conv pads one axis only: out_h/out_w are given and the mapping reads the real H x W
    # (padding is generated on chip), so the smaller pad only keeps the trace's own size check honest.
    pad = min(pad, pad_w)
    g = ls.get("G", 1)
    return {"name": name, "kind": "conv2d",
            "dims": {"N": ls.get("B", 1), "C": ls["C"] * g, "H": h, "W": w, "K": ls["K"] * g,
                     "R": ls["FY"], "S": ls["FX"], "stride": stride, "pad": pad, "groups": g,
                     "out_h": ls["OY"], "out_w": ls["OX"]}}


def trace_for(ref: dict):
    """The sparsim trace of a ZigZag run (8-bit operands as in ZigZag's ONNX parser) + matching layers."""
    pairs = [(layer, zigzag_layer_op(layer)) for layer in ref["layers"]]
    pairs = [(layer, op) for layer, op in pairs if op is not None]
    trace = trace_from_dict({"schema_version": 1, "name": ref["case"], "ops": [op for _, op in pairs]})
    return trace, [layer for layer, _ in pairs]


def sparsim_row(row: dict, arch) -> dict:
    """Cycles, energy (MAC / memory split) and DRAM bytes of one sparsim result row."""
    off = arch.offchip_name
    mac = row.get("energy_mac_pj", 0.0) + row.get("energy_gated_mac_pj", 0.0)
    return {"cycles": row["cycles"], "energy_pj": row["energy_pj"], "mac_energy_pj": mac,
            "mem_energy_pj": row["energy_pj"] - mac,
            "dram_bytes": row[f"{off}_read_bytes"] + row[f"{off}_write_bytes"]}


def zigzag_row(layer: dict) -> dict:
    dram = sum(v["read"] + v["write"] for v in layer["dram_bytes"].values())
    return {"cycles": layer["cycles"], "energy_pj": layer["energy_pj"], "mac_energy_pj": layer["mac_energy_pj"],
            "mem_energy_pj": layer["mem_energy_pj"], "dram_bytes": dram}


def _mapping_memo_clearer():
    """A function that empties the mapping engine's memos, so each timed run searches again as ZigZag
    does: `simulator.mapping.clear_cache` when exported, else the known memo dicts of its modules."""
    try:
        from simulator import mapping
        from simulator.mapping import cost, search
    except ImportError:
        return None
    if hasattr(mapping, "clear_cache"):
        return mapping.clear_cache
    memos = [m for m in (getattr(search, "_MEMO", None), getattr(cost, "_RESULTS", None)) if m is not None]
    return (lambda: [m.clear() for m in memos]) if memos else None


def time_sparsim(trace, arch, repeats: int) -> tuple[object, float]:
    """(result, median seconds per simulate) after one warm-up run; the mapping memo is cleared per run."""
    clear_cache = _mapping_memo_clearer()
    jit_now()   # a long run: compiled kernels (short runs start interpreted, see simulator.kernels)
    result = simulate(trace, arch)
    if repeats <= 0:
        return result, math.nan
    times = []
    for _ in range(repeats):
        if clear_cache is not None:
            clear_cache()
        start = time.perf_counter()
        simulate(trace, arch)
        times.append(time.perf_counter() - start)
    return result, statistics.median(times)


def compare(case: str, ref: dict, arch, repeats: int) -> dict:
    """Per-layer and total figures of both tools for one case."""
    trace, layers = trace_for(ref)
    result, sparsim_s = time_sparsim(trace, arch, repeats)
    rows = []
    for layer, row in zip(layers, result.rows):
        rows.append({"name": row["op"], "zigzag": zigzag_row(layer), "sparsim": sparsim_row(row, arch),
                     "notes": row.get("notes", ""), "mapping": row.get("mapping", "")})
    keys = ("cycles", "energy_pj", "mac_energy_pj", "mem_energy_pj", "dram_bytes")
    totals = {tool: {k: sum(r[tool][k] for r in rows) for k in keys} for tool in ("zigzag", "sparsim")}
    return {"case": case, "layers": rows, "totals": totals, "zigzag_s": ref["wall_s"], "sparsim_s": sparsim_s}


def pct(ours: float, theirs: float) -> str:
    if theirs == 0:
        return "   n/a" if ours else "  0.0%"
    return f"{100.0 * (ours - theirs) / theirs:+6.1f}%"


def print_case(c: dict, per_layer: bool) -> None:
    print(f"\n== {c['case']}: sparsim vs ZigZag 3.9.1 (tpu_like) ==")
    head = f"{'layer':<34} {'cycles zz':>11} {'sparsim':>11} {'diff':>7}  {'energy zz uJ':>12} {'sparsim':>9} " \
           f"{'diff':>7}  {'DRAM zz MB':>10} {'sparsim':>8} {'diff':>7}"
    print(head)
    rows = c["layers"] if per_layer else []
    for r in rows + [{"name": "TOTAL", **c["totals"]}]:
        z, s = r["zigzag"], r["sparsim"]
        print(f"{r['name'][-34:]:<34} {z['cycles']:>11,.0f} {s['cycles']:>11,.0f} {pct(s['cycles'], z['cycles'])}  "
              f"{z['energy_pj'] / 1e6:>12.1f} {s['energy_pj'] / 1e6:>9.1f} {pct(s['energy_pj'], z['energy_pj'])}  "
              f"{z['dram_bytes'] / 1e6:>10.2f} {s['dram_bytes'] / 1e6:>8.2f} {pct(s['dram_bytes'], z['dram_bytes'])}")
    t = c["totals"]
    print(f"energy split (uJ): ZigZag MAC {t['zigzag']['mac_energy_pj'] / 1e6:.1f} + memory "
          f"{t['zigzag']['mem_energy_pj'] / 1e6:.1f}; sparsim MAC {t['sparsim']['mac_energy_pj'] / 1e6:.1f} + "
          f"memory/other {t['sparsim']['mem_energy_pj'] / 1e6:.1f}")
    ratio = c["zigzag_s"] / c["sparsim_s"] if c["sparsim_s"] > 0 else math.inf
    print(f"run time: ZigZag (LOMA search + cost model) {c['zigzag_s']:.2f} s, sparsim "
          f"{c['sparsim_s'] * 1e3:.2f} ms (median) -> sparsim {ratio:,.0f}x faster")


def markdown(cases: list[dict]) -> str:
    """One summary row per case (totals of both tools, % differences, run times) as a Markdown table."""
    lines = ["| case | layers | cycles ZigZag | sparsim | diff | energy ZigZag (uJ) | sparsim | diff | "
             "DRAM ZigZag (MB) | sparsim | diff | ZigZag s | sparsim ms | ratio |", "|" + "---|" * 14]
    for c in cases:
        z, s = c["totals"]["zigzag"], c["totals"]["sparsim"]
        lines.append(f"| {c['case']} | {len(c['layers'])} | {z['cycles']:,.0f} | {s['cycles']:,.0f} | "
                     f"{pct(s['cycles'], z['cycles']).strip()} | {z['energy_pj'] / 1e6:,.1f} | "
                     f"{s['energy_pj'] / 1e6:,.1f} | {pct(s['energy_pj'], z['energy_pj']).strip()} | "
                     f"{z['dram_bytes'] / 1e6:.2f} | {s['dram_bytes'] / 1e6:.2f} | "
                     f"{pct(s['dram_bytes'], z['dram_bytes']).strip()} | {c['zigzag_s']:.2f} | "
                     f"{c['sparsim_s'] * 1e3:.2f} | {c['zigzag_s'] / c['sparsim_s']:,.0f}x |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--case", action="append",
                    help=f"one of {', '.join(CASES + HELD_OUT + NETWORKS)}, 'all', or (with a "
                    "live ZigZag) gemm<M>x<N>x<K> or a path to an .onnx file (repeatable; default: the issue's cases)")
    ap.add_argument("--arch", default=str(ARCH))
    ap.add_argument("--per-layer", action="store_true", help="print every layer, not only totals")
    ap.add_argument("--repeats", type=int, default=10)
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--zigzag-python", help="python of a venv with zigzag-dse==3.9.1 (runs ZigZag live)")
    src.add_argument("--install-zigzag", metavar="VENV", help="create VENV with zigzag-dse==3.9.1 + six, run live")
    ap.add_argument("--record", action="store_true", help="with a live run: rewrite benchmarks/results/zigzag/")
    ap.add_argument("--json", help="write the comparison to this JSON file")
    ap.add_argument("--markdown", action="store_true", help="end with a Markdown summary table of all cases")
    args = ap.parse_args()
    python = str(install_zigzag(Path(args.install_zigzag))) if args.install_zigzag else args.zigzag_python
    arch = load_arch(args.arch)
    out = []
    cases = CASES + HELD_OUT + NETWORKS if args.case == ["all"] else args.case or CASES
    for case in cases:
        c = compare(case, zigzag_reference(case, python, args.record), arch, args.repeats)
        print_case(c, args.per_layer or case.startswith("gemm"))
        out.append(c)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    if args.markdown:
        print("\n" + markdown(out))


if __name__ == "__main__":
    main()
