"""Malformed inputs for the surfaces added after the first fuzz round (see tests/fuzz_harness.py).

SCALE-Sim `.cfg` archs, `sparsim train` flags and training traces, `sparsim report` on corrupt
folders, `sparsim list` kinds, the `compute.mapping` block, and shipped-name lookups with odd
names (path traversal, empty, too long for the file system).
"""

from __future__ import annotations

import copy
import json

import yaml

from fuzz_cases import A, ARCH, SWEEP, T_TEXT, _y
from fuzz_harness import REPO, Case

CFG = """[general]
run_name = fz

[architecture_presets]
ArrayHeight = {rows}
ArrayWidth = {cols}
IfmapSramSzkB = {sram}
FilterSramSzkB = 64
OfmapSramSzkB = 64
IfmapOffset = 0
FilterOffset = 10000000
OfmapOffset = 20000000
Dataflow = {dataflow}
Bandwidth = {bw}

[run_presets]
InterfaceBandwidth = {mode}
{extra}"""


def _cfg(rows="8", cols="8", sram="64", dataflow="os", bw="10", mode="CALC", extra="") -> str:
    return CFG.format(rows=rows, cols=cols, sram=sram, dataflow=dataflow, bw=bw, mode=mode, extra=extra)


def cfg_cases() -> list[Case]:
    bad = {"rows_text": _cfg(rows="abc"), "rows_zero": _cfg(rows="0"), "cols_neg": _cfg(cols="-4"),
           "rows_nan": _cfg(rows="nan"), "rows_float": _cfg(rows="2.5"), "rows_huge": _cfg(rows="1" + "0" * 30),
           "rows_digits": _cfg(rows="9" * 5000), "sram_nan": _cfg(sram="nan"), "sram_inf": _cfg(sram="inf"),
           "sram_zero": _cfg(sram="0"), "sram_huge": _cfg(sram="1e300"), "dataflow_bad": _cfg(dataflow="xy"),
           "mode_bad": _cfg(mode="FAST"), "bw_nan": _cfg(mode="USER", bw="nan"), "bw_inf": _cfg(mode="USER", bw="inf"),
           "bw_text": _cfg(mode="USER", bw="fast"), "dup_section": _cfg(extra="[run_presets]\nx = 1\n"),
           "dup_key": _cfg(extra="InterfaceBandwidth = USER\n"), "no_header": "ArrayHeight = 8\n",
           "no_presets": "[general]\nrun_name = x\n", "interpolation": _cfg(rows="%(nope)s"),
           "interp_loop": _cfg(rows="%(ArrayHeight)s"), "continuation": _cfg() + "  stray continuation\n"}
    cases = [Case(f"cfg/{k}", ["simulate", "-a", "a.cfg", "-w", "t.yaml", "--out", "o.json"],
                  {"a.cfg": v, "t.yaml": T_TEXT}, names="a.cfg", outputs=("o.json",)) for k, v in bad.items()]
    odd_ok = {"unknown_section": _cfg(extra="[mystery]\nfoo = 1\n"), "unknown_key": _cfg(extra="Turbo = true\n"),
              "one_by_one": _cfg(rows="1", cols="1"), "user_bw": _cfg(mode="USER", bw="4")}
    cases += [Case(f"cfg_ok/{k}", ["simulate", "-a", "a.cfg", "-w", "t.yaml", "--out", "o.json"],
                   {"a.cfg": v, "t.yaml": T_TEXT}, expect="ok", outputs=("o.json",)) for k, v in odd_ok.items()]
    big = "Layer, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n" \
          "c1, 100000, 100000, 3, 3, 64, 64, 1,\n"
    cases.append(Case("cfg/one_by_one_huge_layer", ["simulate", "-a", "a.cfg", "-w", "t.csv"],
                      {"a.cfg": _cfg(rows="1", cols="1"), "t.csv": big}))
    cases.append(Case("cfg/sweep_base", ["sweep", "s.yaml", "--out", "o", "--no-plots", "-q"],
                      {"s.yaml": _y({**SWEEP, "base_arch": "a.cfg"}), "a.cfg": _cfg(rows="nan"), "t.yaml": T_TEXT},
                      names="a.cfg"))
    cases.append(Case("cfg/sweep_base_tilde", ["sweep", "s.yaml", "--out", "o", "--no-plots", "-q"],
                      {"s.yaml": _y({**SWEEP, "base_arch": "~nobody_here/a.cfg"}), "t.yaml": T_TEXT}, names="a.cfg"))
    return cases


def _arch_mapping(mapping) -> str:
    data = copy.deepcopy(ARCH)
    data["compute"]["mapping"] = mapping
    return _y(data)


def mapping_cases() -> list[Case]:
    bad = {"mode_bad": {"mode": "guess"}, "objective_bad": {"objective": "speed"}, "timing_bad": {"timing": "x"},
           "not_map": ["search"], "spatial_unknown_dim": {"spatial": {"rows": ["Z"], "cols": ["K"]}},
           "spatial_both": {"spatial": {"rows": ["K"], "cols": ["K"]}}, "spatial_empty": {"spatial": {"rows": [],
                                                                                                       "cols": ["K"]}},
           "spatial_twice": {"spatial": {"rows": ["C", "C"], "cols": ["K"]}},
           "spatial_str": {"spatial": {"rows": "C", "cols": "K"}}, "tile_unknown": {"tiles": {"Z": 4}},
           "tile_R": {"tiles": {"R": 3}}, "tile_zero": {"tiles": {"C": 0}}, "tile_neg": {"tiles": {"C": -8}},
           "tile_str": {"tiles": {"C": "64"}}, "tile_bool": {"tiles": {"C": True}}, "tile_float": {"tiles": {"C": 1.5}},
           "tile_inf": {"tiles": {"C": float("inf")}}, "tile_huge": {"tiles": {"C": 10 ** 30}},
           "tiles_list": {"tiles": [64]}, "unknown_key": {"tilez": {"C": 4}}}
    cases = [Case(f"mapping/{k}", ["simulate", "-a", "a.yaml", "-w", "t.yaml", "--out", "o.json"],
                  {"a.yaml": _arch_mapping(v), "t.yaml": T_TEXT}, names="a.yaml", outputs=("o.json",))
             for k, v in bad.items()]
    # pinned tiles larger than the op or than the buffers: a clean refusal or a finite result
    for k, v in {"tile_too_big": {"tiles": {"C": 10 ** 6, "K": 10 ** 6, "P": 10 ** 6}},
                 "tile_one": {"tiles": {"C": 1, "K": 1, "P": 1}},
                 "spatial_odd": {"spatial": {"rows": ["R", "S"], "cols": ["G"]}},
                 "pipelined": {"timing": "pipelined", "objective": "edp"}}.items():
        cases.append(Case(f"mapping_odd/{k}", ["simulate", "-a", "a.yaml", "-w",
                                               str(REPO / "workloads/traces/resnet18.yaml"), "--out", "o.json"],
                          {"a.yaml": _arch_mapping(v)}, expect="either", outputs=("o.json",)))
    skip = yaml.safe_load((REPO / "arch_configs/sparse_systolic_skip_bitmap.yaml").read_text())
    skip["compute"]["mapping"] = {"timing": "pipelined"}
    skip["compute"]["rows"] = skip["compute"]["cols"] = 1
    tiny = _y({"schema_version": 1, "name": "t", "ops": [{"name": "g", "kind": "gemm", "dims": {"M": 3, "N": 3, "K": 3},
              "sparsity": {"weights": {"kind": "unstructured", "density": 1e-6},
                           "activations": {"kind": "unstructured", "density": 1e-6}}}]})
    cases.append(Case("mapping_odd/skip_1x1_pipelined", ["simulate", "-a", "a.yaml", "-w", "t.yaml", "--json",
                                                         "--out", "o.json"], {"a.yaml": _y(skip), "t.yaml": tiny},
                      expect="ok", outputs=("o.json",)))
    huge_k = _y({"schema_version": 1, "name": "k", "ops": [{"name": "g", "kind": "gemm",
                                                            "dims": {"M": 1, "N": 1, "K": 2 ** 30}}]})
    cases.append(Case("mapping/reduction_2e30", ["simulate", "-a", A, "-w", "t.yaml"], {"t.yaml": huge_k},
                      names="t.yaml"))
    for k, s in {"set_tile_zero": "compute.mapping.tiles.C=0", "set_objective": "compute.mapping.objective=fast",
                 "set_mode_list": "compute.mapping.mode=[search]"}.items():
        cases.append(Case(f"mapping_set/{k}", ["simulate", "-a", A, "-w", "t.yaml", "--set", s], {"t.yaml": T_TEXT}))
    return cases


TRAIN = ["train", "llama2-7b", "-a", A, "--seq-len", "64"]


def train_cases() -> list[Case]:
    flags = [["--micro-batches", "0"], ["--micro-batches", "-1"], ["--micro-batches", "1000000000000"],
             ["--batch", "0"], ["--batch", "1000000000000"], ["--seq-len", "0"], ["--seq-len", "1000000000000"],
             ["--recompute", "some"], ["--optimizer", "lion"], ["--dp", "0"], ["--dp", "1000000000"], ["--zero", "7"],
             ["--zero", "-1"], ["--collective", "mesh"], ["--link-gb-s", "nan"], ["--link-gb-s", "inf"],
             ["--link-gb-s", "-1"], ["--link-latency-us", "nan"], ["--grad-density", "2"], ["--grad-density", "nan"],
             ["--update-every", "0"], ["--capacity-gib", "nan"], ["--capacity-gib", "-1"], ["--weights", "5:4"],
             ["--weights", "block:0x4:0.5"], ["--patterns", "2:4,bogus"], ["--patterns", ""], ["--bits", "0"],
             ["--comm-sms", "-1"], ["--vector-kernels", "turbo"], ["--routing", "bad"], ["--zipf-skew", "nan"],
             ["--activations", "0"], ["--activations", "nan"], ["--out", "/proc/x.csv"], ["--out", "o.xlsx"],
             ["--set", "compute.rows=0"], ["-s", "nope.yaml"]]
    cases = [Case("train_flag/" + "_".join(f)[:40], [*TRAIN, *f], {}) for f in flags]
    cases.append(Case("train_flag/no_device", ["train", "llama2-7b"], {}))
    cases.append(Case("train_flag/arch_and_system", [*TRAIN, "-s", str(REPO / "arch_configs/systems/"
                                                                         "edge_npu_resnet50.yaml")], {},
                      expect="either"))
    cases.append(Case("train_ok/out_json", [*TRAIN, "--micro-batches", "2", "--out", "o.json", "--json"], {},
                      expect="ok", outputs=("o.json",)))
    for k, cfg in {"hf_nan": '{"hidden_size": NaN}', "hf_list": "[1, 2]", "hf_not_utf8": b"\xff\xfe"}.items():
        cases.append(Case(f"train_model/{k}", ["train", "c.json", "-a", A, "--seq-len", "16"], {"c.json": cfg},
                          names="c.json"))
    fwd = {"schema_version": 2, "name": "f", "ops": [{"name": "fc", "kind": "gemm", "dims": {"M": 64, "N": 64, "K": 64},
                                                      "phase": "forward"}]}
    traces = {"phase_bogus": {**fwd, "ops": [{**fwd["ops"][0], "phase": "sideways"}]},
              "phase_v1": {**fwd, "schema_version": 1, "ops": [{**fwd["ops"][0], "phase": "backward"}]},
              "phase_list": {**fwd, "ops": [{**fwd["ops"][0], "phase": ["forward"]}]},
              "schema_3": {**fwd, "schema_version": 3}}
    for k, t in traces.items():
        cases.append(Case(f"train_trace/{k}", ["train", "-w", "w.yaml", "-a", A], {"w.yaml": _y(t)}, names="w.yaml"))
        cases.append(Case(f"train_trace_sim/{k}", ["simulate", "-w", "w.yaml", "-a", A], {"w.yaml": _y(t)},
                          names="w.yaml"))
    cases.append(Case("train_trace/backward_given", ["train", "-w", "w.yaml", "-a", A],
                      {"w.yaml": _y({**fwd, "ops": [{**fwd["ops"][0], "phase": "backward"}]})}, expect="either"))
    for f in (["--micro-batches", "0"], ["--micro-batches", "-3"], ["--micro-batches", "1000000000000"],
              ["--recompute", "half"], ["--zipf-skew", "nan", "--routing", "zipf"], ["--micro-batches", "x"],
              ["--out", "t.xlsx"]):
        cases.append(Case("train_extract/" + "_".join(f)[:40], ["extract", "hf-config", "mixtral-8x7b", "--phase",
                                                                 "train", "--seq-len", "16", *f], {}))
    cases.append(Case("train_extract/ok_json", ["extract", "hf-config", "llama2-7b", "--phase", "train", "--seq-len",
                                                "16", "--micro-batches", "2", "--recompute", "full", "--out",
                                                "t.json"], {}, expect="ok", outputs=("t.json",)))
    return cases


def report_cases() -> list[Case]:
    sweep_json = json.dumps({"name": "x", "base_raw": ARCH, "base_arch": A, "objectives": [], "parameters": []})
    folders = {"corrupt_json": {"d/sweep.json": b"{not json", "d/results.sqlite": b""},
               "garbage_sqlite": {"d/sweep.json": sweep_json, "d/results.sqlite": b"garbage" * 100},
               "sqlite_dir": {"d/sweep.json": sweep_json, "d/results.sqlite": None},
               "not_utf8_json": {"d/sweep.json": b"\xff\xfe{}"}, "sweep_json_list": {"d/sweep.json": b"[1,2]"},
               "empty_folder": {"d": None}, "csv_garbage": {"d": b"\x00\x01" * 50},
               "csv_not_utf8": {"d/r.csv": b"\xff\xfe,a\n"}, "csv_wrong_cols": {"d/r.csv": b"a,b\n1,2\n"},
               "deep_json": {"d/sweep.json": b"[" * 100_000}}
    cases = [Case(f"report/{k}", ["report", "d", "-q"], files) for k, files in folders.items()]
    cases += [Case("report/missing", ["report", "nope", "-q"], {}, names="nope"),
              Case("report/dev_zero", ["report", "/dev/zero", "-q"], {}, names="/dev/zero"),
              Case("report/fifo", ["report", "f", "-q"], {"f": "fifo"}, names="f")]
    for k, flags in {"out_proc": ["--out", "/proc/x.html"], "out_dir": ["--out", "."]}.items():
        cases.append(Case(f"report_flag/{k}", ["report", "d", "-q", *flags],
                          {"d/sweep.json": sweep_json, "d/results.sqlite": b""}))
    return cases


def list_cases() -> list[Case]:
    cases = [Case(f"list/{k}", ["list", v], {}) for k, v in
             {"bogus": "bogus", "empty": "", "traversal": "../specs", "long": "x" * 5000, "upper": "SPECS*"}.items()]
    cases.append(Case("list/ok", ["list", "specs", "--json"], {}, expect="ok"))
    return cases


LONG = "a" * 5000
ODD_NAMES = {"traversal": "../x", "traversal_deep": "../../../../../../etc/passwd", "empty": "", "long": LONG,
             "long_yaml": "b" * 300 + ".yaml", "root": "/", "dot": ".", "space": " ", "dash": "-",
             "wrong_suffix": "edge_npu_32x32_os.cfg", "glob": "*", "tilde": "~nobody_here/x.yaml"}


def name_cases() -> list[Case]:
    readers = {"arch": ["simulate", "-a", "{N}", "-w", "t.yaml"], "trace": ["simulate", "-a", A, "-w", "{N}"],
               "system": ["system", "-w", "t.yaml", "-s", "{N}"], "model": ["llm", "-m", "{N}", "-a", A, "-p", "8",
                                                                             "-t", "2"],
               "hf": ["extract", "hf-config", "{N}"], "train": ["train", "{N}", "-a", A],
               "sweep": ["sweep", "{N}", "--out", "o", "--no-plots", "-q"], "report": ["report", "{N}", "-q"],
               "measured": ["crosscheck", "-a", "{N}", "--measured", "m.csv"]}
    cases = []
    for reader, argv in readers.items():
        for k, name in ODD_NAMES.items():
            cases.append(Case(f"name_{reader}/{k}", [a.replace("{N}", name) for a in argv],
                              {"t.yaml": T_TEXT, "m.csv": "M,N,K,latency_ms\n64,64,64,1\n"}))
    cases.append(Case("name_ok/shipped_arch", ["simulate", "-a", "edge_npu_32x32_os", "-w", "t.yaml"],
                      {"t.yaml": T_TEXT}, expect="ok"))
    return cases


def surface_bundle() -> list[Case]:
    return cfg_cases() + mapping_cases() + train_cases() + report_cases() + list_cases() + name_cases()
