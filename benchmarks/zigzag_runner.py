"""Run the real ZigZag 3.9.1 (LOMA temporal-mapping search) on one case and print per-layer JSON.

Why: ZigZag is an independent analytical mapper/cost model; sparsim's mapping engine is checked
against it on ZigZag's own `tpu_like` example hardware (translated in
`arch_configs/zigzag_tpu_like.yaml`). This script only *drives* the installed `zigzag-dse`
package through its public API (`zigzag.api.get_hardware_performance_zigzag`); none of its code
is copied. It must run with the interpreter of a separate venv::

    python3 -m venv /work/venvs/zigzag && /work/venvs/zigzag/bin/pip install zigzag-dse==3.9.1 six
    /work/venvs/zigzag/bin/python benchmarks/zigzag_runner.py --case gemm1024 > out.json

Cases: `resnet18`, `alexnet`, `mobilenetv2` (the ONNX files ZigZag ships in `zigzag/inputs/workload/`),
a network of `benchmarks/zigzag_networks.py` (`resnet50`, `vgg16`, `efficientnet_b0_lite`,
`bert_base_layer`: generated into a temporary directory), a path to any other `.onnx` file,
`gemm<M>x<N>x<K>` or `gemm<S>` (one GEMM O[m][n] += I[m][k] * W[k][n], written as a ZigZag
workload dict with M -> D, K -> C, N -> K, 8-bit operands, 16-bit partial sums like ZigZag's ONNX
parser). Hardware and mapping are ZigZag's own `tpu_like.yaml` files from the installed package.

Prints one JSON object: tool, version, case, opt, wall_s (the API call only: parsing, LOMA search
and cost model; no interpreter start-up or imports) and per layer: name, operator type, loop
sizes, spatial and temporal mapping, cycles (`latency_total2`) and its split (ideal_temporal
compute, stall_slack, on-loading, off-loading, systolic drain), MAC energy, memory energy per
operand and level, and DRAM bytes read and written per operand (word accesses x port width).
"""
import argparse
import contextlib
import json
import logging
import os
import re
import sys
import tempfile
import time
from importlib.metadata import version

import zigzag
import zigzag_networks
from zigzag.api import get_hardware_performance_zigzag
from zigzag.hardware.architecture.memory_port import DataDirection

INPUTS = os.path.join(os.path.dirname(zigzag.__file__), "inputs")


def gemm_workload(name, m, n, k):
    """One GEMM as a ZigZag workload layer (8-bit I/W/O_final, 16-bit partial sums)."""
    return [{"id": 0, "name": name, "operator_type": "Gemm",
             "equation": "O[d][k]+=I[d][c]*W[c][k]", "loop_dims": ["D", "C", "K"],
             "loop_sizes": [m, k, n],
             "operand_precision": {"I": 8, "W": 8, "O": 16, "O_final": 8}}]


def workload_for(case, tmp):
    if case.endswith(".onnx") and os.path.exists(case):
        return os.path.abspath(case)
    if case in zigzag_networks.NETWORKS:
        return zigzag_networks.write(case, os.path.join(tmp, f"{case}.onnx"))
    onnx_path = os.path.join(INPUTS, "workload", f"{case}.onnx")
    if os.path.exists(onnx_path):
        return onnx_path
    m = re.fullmatch(r"gemm(\d+)(?:x(\d+)x(\d+))?", case)
    if not m:
        raise SystemExit(f"unknown case {case!r}: use a ZigZag ONNX name, gemm<S> or gemm<M>x<N>x<K>")
    dims = [int(m.group(1))] * 3 if m.group(2) is None else [int(g) for g in m.groups()]
    return gemm_workload(case, *dims)


def dram_bytes(cme):
    """Bytes read from / written to the top (DRAM) level per operand: word accesses x max port width."""
    out = {}
    for layer_op, accesses in cme.memory_word_access.items():
        mem_op = cme.memory_operand_links.layer_to_mem_op(layer_op)
        levels = cme.accelerator.memory_hierarchy.get_memory_levels(mem_op=mem_op)
        top, acc = levels[-1], accesses[-1]
        rd_bits = acc.get(DataDirection.RD_OUT_TO_LOW) * top.get_max_bandwidth(mem_op, DataDirection.RD_OUT_TO_LOW)
        wr_bw = top.get_max_bandwidth(mem_op, DataDirection.WR_IN_BY_LOW)
        wr_bits = acc.get(DataDirection.WR_IN_BY_LOW) * wr_bw if wr_bw else 0
        out[str(layer_op)] = {"read": rd_bits / 8, "write": wr_bits / 8}
    return out


def layer_record(cme):
    layer = cme.layer
    mem_energy = {}
    for layer_op, per_level in cme.mem_energy_breakdown.items():
        mem_op = cme.memory_operand_links.layer_to_mem_op(layer_op)
        levels = cme.accelerator.memory_hierarchy.get_memory_levels(mem_op=mem_op)
        mem_energy[str(layer_op)] = {lv.name: e for lv, e in zip(levels, per_level)}
    return {
        "name": layer.name, "type": layer.type,
        "loop_sizes": {str(d): int(s) for d, s in layer.layer_dim_sizes.items()},
        "macs": int(layer.total_mac_count),
        "dimension_relations": [str(r) for r in layer.dimension_relations],
        "padding": {str(d): list(v) for d, v in layer.padding.data.items()},
        "pr_loop_sizes": {str(d): int(s) for d, s in layer.pr_layer_dim_sizes.items()},
        "spatial_mapping": str(cme.spatial_mapping),
        "temporal_mapping": str(cme.temporal_mapping),
        "cycles": float(cme.latency_total2),
        "ideal_cycle": float(cme.ideal_cycle),
        "ideal_temporal_cycle": float(cme.ideal_temporal_cycle),
        "stall_slack": float(cme.stall_slack_comb),
        "onloading": float(cme.data_onloading_cycle),
        "offloading": float(cme.data_offloading_cycle),
        "systolic_drain": float(cme.systolic_drain_cycle),
        "energy_pj": float(cme.energy_total),
        "mac_energy_pj": float(cme.mac_energy),
        "mem_energy_pj": float(cme.mem_energy),
        "mem_energy_pj_by_operand_level": mem_energy,
        "dram_bytes": dram_bytes(cme),
    }


def run(case, opt, lpf_limit):
    accel = os.path.join(INPUTS, "hardware", "tpu_like.yaml")
    mapping = os.path.join(INPUTS, "mapping", "tpu_like.yaml")
    logging.disable(logging.CRITICAL)
    with tempfile.TemporaryDirectory(prefix="zigzag_") as tmp, contextlib.redirect_stdout(sys.stderr):
        t0 = time.perf_counter()
        _, _, cmes = get_hardware_performance_zigzag(
            workload_for(case, tmp), accel, mapping, opt=opt, dump_folder=tmp, lpf_limit=lpf_limit,
            loma_show_progress_bar=False)
        wall = time.perf_counter() - t0
    layers = [layer_record(cme) for cme, _ in cmes[0][1]]
    return {"tool": "zigzag", "version": version("zigzag-dse"), "case": case, "opt": opt,
            "lpf_limit": lpf_limit, "hardware": "zigzag/inputs/hardware/tpu_like.yaml",
            "mapping": "zigzag/inputs/mapping/tpu_like.yaml", "wall_s": round(wall, 3), "layers": layers}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--case", required=True, help="an ONNX shipped with ZigZag (resnet18, alexnet, mobilenetv2), one of "
                    f"{', '.join(zigzag_networks.NETWORKS)}, "
                    "a path to an .onnx file, gemm<S> or gemm<M>x<N>x<K>")
    ap.add_argument("--opt", default="latency", choices=("latency", "energy", "EDP"))
    ap.add_argument("--lpf-limit", type=int, default=6, help="ZigZag's LOMA loop-prime-factor limit (its default)")
    args = ap.parse_args()
    print(json.dumps(run(args.case, args.opt, args.lpf_limit), indent=1))


if __name__ == "__main__":
    main()
