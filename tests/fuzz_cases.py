"""Malformed inputs for every reader and subcommand of `sparsim` (see tests/fuzz_harness.py).

Two families:
- `reader_cases`: every kind of broken file (not UTF-8, empty, a directory, a FIFO, a device,
  100k nested brackets, a YAML alias bomb, duplicate keys, the wrong top-level type, a
  newline in the file name, ...) fed to every reader: arch, trace (YAML/JSON/CSV), system,
  sweep spec, HF config, expert counts, measured CSV, graph, compare, sweep folders;
- `semantic_cases`: well-formed files with wrong or extreme values (infinite clocks, bools
  for counts, huge dims, cyclic dependencies, bad sweep expressions, ...), usage errors, and
  valid-but-extreme inputs whose outputs must stay finite.
"""

from __future__ import annotations

import copy
import importlib.util
import json

import yaml

from fuzz_harness import REPO, Case

A = str(REPO / "arch_configs/edge_npu_32x32_os.yaml")
FPGA = str(REPO / "arch_configs/fpga_u280_llm_sparse.yaml")
GPU = str(REPO / "arch_configs/gpu_a100_sxm4_80gb.yaml")
SKIP = str(REPO / "arch_configs/sparse_systolic_skip_bitmap.yaml")
ARCH = yaml.safe_load((REPO / "arch_configs/edge_npu_32x32_os.yaml").read_text())
ONE_OP = {"schema_version": 1, "name": "one",
          "ops": [{"name": "fc", "kind": "gemm", "dims": {"M": 64, "N": 64, "K": 64}}]}
T_TEXT = yaml.safe_dump(ONE_OP)
SYSTEM = {"name": "duo", "cores": [{"arch": A, "count": 2, "name": "npu"}], "dram": {"bandwidth_gb_per_s": 25.6},
          "policy": "layer_by_layer"}
SWEEP = {"name": "tiny", "base_arch": A, "workloads": [{"path": "t.yaml"}],
         "parameters": {"compute.rows": [8, 16], "compute.cols": "=compute.rows"},
         "objectives": ["latency", "energy"], "strategy": "grid", "executor": "serial"}
MEASURED = "M,N,K,latency_ms\n4096,4096,4096,1.5\n"

BROKEN: dict[str, object] = {
    "not_utf8": b"\xff\xfe\x00bad",
    "empty": b"",
    "whitespace": b"   \n\n",
    "binary": bytes(range(256)) * 4,
    "directory": None,
    "fifo": "fifo",
    "deep_lists": b"[" * 100_000,
    "deep_maps": b"{a: " * 20_000,
    "deep_json": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    "alias_bomb": ("a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
                   "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
                   "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
                   "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\nname: *h\n").encode(),
    "duplicate_keys": b"name: a\nname: b\n",
    "scalar": b"42\n",
    "list": b"- 1\n- 2\n",
    "null": b"null\n",
    "tabs": b"a:\n\t- b\n",
    "bad_yaml": b"a: [1, 2\nb: }\n",
    "nul_bytes": b"name: a\x00b\n",
    "huge_int": b"name: x\nclock_mhz: 1" + b"0" * 5000 + b"\n",
    "json_nan": b'{"name": NaN}',
}

# reader -> (argv with {F} for the broken file, the broken file's name)
READERS: dict[str, tuple[list[str], str]] = {
    "arch": (["simulate", "-a", "{F}", "-w", "t.yaml"], "bad.yaml"),
    "trace": (["simulate", "-a", A, "-w", "{F}"], "bad.yaml"),
    "trace_json": (["simulate", "-a", A, "-w", "{F}"], "bad.json"),
    "topology_csv": (["simulate", "-a", A, "-w", "{F}"], "bad.csv"),
    "compare_arch": (["compare", "-a", "{F}", "-w", "t.yaml"], "bad.yaml"),
    "graph_trace": (["graph", "-a", A, "-w", "{F}"], "bad.yaml"),
    "system": (["system", "-w", "t.yaml", "-s", "{F}"], "bad.yaml"),
    "sweep_spec": (["sweep", "{F}", "--out", "out", "--no-plots", "-q"], "bad.yaml"),
    "hf_config": (["extract", "hf-config", "{F}", "--seq-len", "16"], "bad.json"),
    "expert_counts": (["extract", "hf-config", "mixtral-8x7b", "--seq-len", "16", "--routing", "file",
                       "--expert-counts", "{F}"], "bad.yaml"),
    "measured": (["crosscheck", "-a", GPU, "--measured", "{F}"], "bad.csv"),
    "onnx": (["extract", "onnx", "{F}"], "bad.onnx"),
    "llm_arch": (["llm", "-m", "llama2-7b", "-a", "{F}", "-p", "8", "-t", "2", "--samples", "1"], "bad.yaml"),
    "cfg_arch": (["simulate", "-a", "{F}", "-w", "t.yaml"], "bad.cfg"),
    "train_model": (["train", "{F}", "-a", A, "--seq-len", "16"], "bad.json"),
    "train_trace": (["train", "-w", "{F}", "-a", A], "bad.yaml"),
    "report_csv": (["report", "{F}", "-q"], "bad.csv"),
}


def reader_cases() -> list[Case]:
    cases = []
    for reader, (argv, fname) in READERS.items():
        if reader == "onnx" and importlib.util.find_spec("onnx") is None:
            continue  # without the onnx extra the command stops at "needs the 'onnx' extra", before reading
        for kind, content in BROKEN.items():
            files = {"t.yaml": T_TEXT, fname: content}
            cases.append(Case(f"{reader}/{kind}", [a.replace("{F}", fname) for a in argv], files, names=fname))
        cases.append(Case(f"{reader}/missing", [a.replace("{F}", "nope.yaml") for a in argv], {"t.yaml": T_TEXT},
                          names="nope.yaml"))
        cases.append(Case(f"{reader}/dev_zero", [a.replace("{F}", "/dev/zero") for a in argv], {"t.yaml": T_TEXT},
                          names="/dev/zero"))
        cases.append(Case(f"{reader}/newline_name", [a.replace("{F}", "a\nb.yaml") for a in argv],
                          {"t.yaml": T_TEXT, "a\nb.yaml": b"\xff"}))
    return cases


def _y(obj) -> str:
    return yaml.safe_dump(obj, sort_keys=False)


def _arch(**changes) -> str:
    data = copy.deepcopy(ARCH)
    for dotted, value in changes.items():
        node = data
        keys = dotted.split("__")
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = value
    return _y(data)


def _sim_arch(name: str, text: str, expect: str = "error") -> Case:
    return Case(f"arch_value/{name}", ["simulate", "-a", "a.yaml", "-w", "t.yaml", "--out", "o.json"],
                {"a.yaml": text, "t.yaml": T_TEXT}, expect=expect, names="a.yaml" if expect == "error" else None,
                outputs=("o.json",))


def arch_value_cases() -> list[Case]:
    bad = {
        "clock_inf": _arch(clock_mhz=float("inf")), "clock_nan": _arch(clock_mhz=float("nan")),
        "clock_str": _arch(clock_mhz="fast"), "clock_neg": _arch(clock_mhz=-1), "clock_bool": _arch(clock_mhz=True),
        "rows_true": _arch(compute__rows=True), "rows_str": _arch(compute__rows="64"),
        "rows_zero": _arch(compute__rows=0), "rows_float": _arch(compute__rows=2.5),
        "rows_list": _arch(compute__rows=[32]), "rows_huge": _arch(compute__rows=10 ** 30),
        "kind_list": _arch(compute__kind=["systolic"]), "kind_int": _arch(compute__kind=3),
        "kind_unknown": _arch(compute__kind="quantum"), "dataflow_bad": _arch(compute__dataflow="xx"),
        "capacity_inf": _arch(memory__sram__capacity_kib=float("inf")),
        "capacity_neg": _arch(memory__sram__capacity_kib=-5),
        "bandwidth_inf": _arch(memory__lpddr4__bandwidth_bytes_per_cycle=float("inf")),
        "tech_inf": _arch(energy__technology_nm=float("inf")), "mac_nan": _arch(energy__mac_pj={8: float("nan")}),
        "mac_neg": _arch(energy__mac_pj={8: -1}), "mac_str": _arch(energy__mac_pj={8: "x"}),
        "leak_inf": _arch(memory__sram__leakage_mw=float("inf")),
        "read_e_inf": _arch(memory__sram__read_energy_pj_per_bit=float("inf")),
        "area_inf": _arch(area__fixed_mm2=float("inf")), "formats_list": _arch(memory__sram__formats={"weights": ["bitmap"]}),
        "holds_str": _arch(memory__sram__holds="weights"), "memory_list": _arch(memory=[1, 2]),
        "memory_empty": _arch(memory={}), "compute_str": _arch(compute="systolic"),
        "name_list": _arch(name=[1]), "unknown_key": _arch(clokc_mhz=800),
        "precision_zero": _arch(compute__precision={"activations": 0, "weights": 8}),
    }
    cases = [_sim_arch(k, v) for k, v in bad.items()]
    cases.append(Case("set/inf", ["simulate", "-a", A, "-w", "t.yaml", "--set", "clock_mhz=.inf"], {"t.yaml": T_TEXT}))
    cases.append(Case("set/bool", ["simulate", "-a", A, "-w", "t.yaml", "--set", "compute.rows=true"], {"t.yaml": T_TEXT}))
    cases.append(Case("set/bad_path", ["simulate", "-a", A, "-w", "t.yaml", "--set", "compute.rowz=4"], {"t.yaml": T_TEXT}))
    cases.append(Case("set/no_eq", ["simulate", "-a", A, "-w", "t.yaml", "--set", "compute.rows"], {"t.yaml": T_TEXT}))
    # a --set value that is not bounded YAML is taken as the literal string (a valid, odd name)
    cases.append(Case("set/alias", ["simulate", "-a", A, "-w", "t.yaml", "--set",
                                    "name=" + BROKEN["alias_bomb"].decode().replace("\n", ", ")], {"t.yaml": T_TEXT},
                      expect="either"))
    return cases


def _trace(ops=None, **top) -> str:
    data = copy.deepcopy(ONE_OP)
    if ops is not None:
        data["ops"] = ops
    data.update(top)
    return _y(data)


def _op(**fields) -> dict:
    op = {"name": "fc", "kind": "gemm", "dims": {"M": 64, "N": 64, "K": 64}}
    op.update(fields)
    return op


def trace_value_cases() -> list[Case]:
    bad = {
        "M_str": [_op(dims={"M": "64", "N": 64, "K": 64})], "M_true": [_op(dims={"M": True, "N": 64, "K": 64})],
        "M_zero": [_op(dims={"M": 0, "N": 64, "K": 64})], "M_neg": [_op(dims={"M": -1, "N": 64, "K": 64})],
        "M_huge": [_op(dims={"M": 10 ** 15, "N": 64, "K": 64})], "M_float": [_op(dims={"M": 6.5, "N": 64, "K": 64})],
        "M_inf": [_op(dims={"M": float("inf"), "N": 64, "K": 64})],
        "dims_missing": [_op(dims={"M": 64})], "kind_list": [_op(kind=["gemm"])], "kind_bad": [_op(kind="fft")],
        "repeat_neg": [_op(repeat=-2)], "repeat_huge": [_op(repeat=10 ** 30)],
        "nm_bad": [_op(sparsity={"weights": {"kind": "nm", "n": 5, "m": 4}})],
        "density_zero": [_op(sparsity={"weights": {"kind": "unstructured", "density": 0}})],
        "density_nan": [_op(sparsity={"weights": {"kind": "unstructured", "density": float("nan")}})],
        "format_list": [_op(sparsity={"weights": ["bitmap"]})],
        "dup_names": [_op(), _op()], "self_dep": [_op(depends_on=["fc"])],
        "missing_dep": [_op(depends_on=["ghost"])],
        "cycle": [_op(name="a", depends_on=["b"]), _op(name="b", depends_on=["a"])],
        "ops_empty": [], "ops_str": "gemm", "op_null": [None],
        "conv_huge": [{"name": "c", "kind": "conv2d", "dims": {"C": 3, "H": 10 ** 9, "W": 10 ** 9, "K": 64, "R": 3,
                                                              "S": 3}}],
        "attn_kv_huge": [{"name": "q", "kind": "attention_qk",
                          "dims": {"batch": 1, "heads": 32, "q_len": 1, "kv_len": 10 ** 12, "head_dim": 128}}],
        "histogram_bad": [_op(sparsity={"weights": {"kind": "unstructured", "density": 0.5,
                                                    "stats": {"density": 0.5, "group_histograms": {4: [1, True]}}}})],
    }
    cases = [Case(f"trace_value/{k}", ["simulate", "-a", A, "-w", "t.yaml", "--out", "o.json"],
                  {"t.yaml": _trace(v)}, names="t.yaml", outputs=("o.json",)) for k, v in bad.items()]
    for k, top in {"schema_str": {"schema_version": "1"}, "schema_99": {"schema_version": 99},
                   "schema_bool": {"schema_version": True}, "name_path": {"name": "../../../../X"}}.items():
        cases.append(Case(f"trace_top/{k}", ["simulate", "-a", A, "-w", "t.yaml"], {"t.yaml": _trace(**top)},
                          expect="error" if k != "name_path" else "ok", names="t.yaml" if k != "name_path" else None))
    huge_row = "Layer, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
    for k, row in {"csv_inf": "c1, inf, 56, 3, 3, 64, 64, 1,\n", "csv_huge": f"c1, {10 ** 12}, {10 ** 12}, 3, 3, 64, 64, 1,\n",
                   "csv_text": "c1, a, b, c, d, e, f, g,\n", "csv_short": "c1, 5,\n", "csv_zero_stride": "c1, 8, 8, 3, 3, 4, 4, 0,\n",
                   "csv_dup": "c1, 8, 8, 3, 3, 4, 4, 1,\nc1, 8, 8, 3, 3, 4, 4, 1,\n", "csv_nm_bad": "c1, 8, 8, 3, 3, 4, 4, 1, 9:4\n"}.items():
        cases.append(Case(f"csv/{k}", ["simulate", "-a", A, "-w", "t.csv"], {"t.csv": huge_row + row}, names="t.csv"))
    return cases


def system_cases() -> list[Case]:
    def sysfile(**changes):
        data = copy.deepcopy(SYSTEM)
        data.update(changes)
        return _y(data)
    bad = {"cores_int": sysfile(cores=5), "cores_bool": sysfile(cores=True), "cores_float": sysfile(cores=0.5),
           "cores_inf": sysfile(cores=float("inf")), "core_arch_empty": sysfile(cores=[{"arch": "", "count": 1}]),
           "core_arch_dir": sysfile(cores=[{"arch": ".", "count": 1}]),
           "count_huge": sysfile(cores=[{"arch": A, "count": 1_000_000}]),
           "count_zero": sysfile(cores=[{"arch": A, "count": 0}]),
           "count_bool": sysfile(cores=[{"arch": A, "count": True}]),
           "override_bad": sysfile(cores=[{"arch": A, "count": 1, "overrides": {"compute.rowz": 4}}]),
           "override_inf": sysfile(cores=[{"arch": A, "count": 1, "overrides": {"clock_mhz": float("inf")}}]),
           "policy_bad": sysfile(policy="random"), "dram_inf": sysfile(dram={"bandwidth_gb_per_s": float("inf")}),
           "microbatches_neg": sysfile(policy="pipeline", microbatches=-1)}
    cases = [Case(f"system/{k}", ["system", "-w", "t.yaml", "-s", "s.yaml", "--json"], {"s.yaml": v, "t.yaml": T_TEXT},
                  names="s.yaml") for k, v in bad.items()]
    cyc = _trace([_op(name="a", depends_on=["b"]), _op(name="b", depends_on=["a"])])
    cases.append(Case("system/cycle", ["system", "-w", "t.yaml", "-a", A, "--cores", "2", "--policy", "graph"],
                      {"t.yaml": cyc}, names="t.yaml"))
    cases.append(Case("graph/cycle", ["graph", "-w", "t.yaml", "-a", A], {"t.yaml": cyc}, names="t.yaml"))
    cases.append(Case("graph/missing_dep", ["graph", "-w", "t.yaml", "-a", A],
                      {"t.yaml": _trace([_op(depends_on=["ghost"])])}, names="t.yaml"))
    cases.append(Case("system/cores_zero_flag", ["system", "-w", "t.yaml", "-a", A, "--cores", "0"], {"t.yaml": T_TEXT}))
    cases.append(Case("system/cores_huge_flag", ["system", "-w", "t.yaml", "-a", A, "--cores", "1000000"],
                      {"t.yaml": T_TEXT}))
    return cases


def sweep_cases() -> list[Case]:
    def spec(**changes):
        data = copy.deepcopy(SWEEP)
        data.update(changes)
        return _y(data)
    bad = {"div_zero": spec(parameters={"compute.rows": [8], "compute.cols": "=compute.rows // 0"}),
           "pow_bomb": spec(parameters={"compute.rows": [8], "compute.cols": "=9**9**9"}),
           "str_repeat": spec(parameters={"compute.rows": [8], "compute.cols": "='ab' * 10**10"}),
           "big_grid": spec(parameters={f"memory.sram.capacity_kib": list(range(1, 101)),
                                        **{"compute.rows": list(range(1, 101)), "compute.cols": list(range(1, 101)),
                                           "memory.lpddr4.bandwidth_bytes_per_cycle": list(range(1, 101)),
                                           "clock_mhz": list(range(100, 200)), "energy.technology_nm": list(range(7, 107)),
                                           "memory.sram.bandwidth_bytes_per_cycle": list(range(1, 101)),
                                           "memory.sram.leakage_mw": list(range(1, 101)),
                                           "area.fixed_mm2": list(range(1, 101)),
                                           "energy.gated_mac_fraction": [i / 100 for i in range(100)]}}),
           "range_huge": spec(parameters={"compute.rows": {"min": 1, "max": 10 ** 12, "step": 1}}),
           "base_dir": spec(base_arch="."), "workload_dir": spec(workloads=[{"path": "."}]),
           "workload_broken": spec(workloads=[{"path": "w.yaml"}]),
           "values_bool": spec(parameters={"compute.rows": [True, False]}),
           "values_inf": spec(parameters={"clock_mhz": [float("inf")]}),
           "objective_bad": spec(objectives=["speed"]), "strategy_bad": spec(strategy={"random": -5}),
           "expr_call": spec(parameters={"compute.rows": [8], "compute.cols": "=__import__('os')"}),
           "expr_lambda": spec(parameters={"compute.rows": [8], "compute.cols": "=(lambda: 1)()"}),
           "expr_attr": spec(parameters={"compute.rows": [8], "compute.cols": "=compute.rows.__class__"})}
    cases = [Case(f"sweep/{k}", ["sweep", "s.yaml", "--out", "out", "--no-plots", "-q"],
                  {"s.yaml": v, "t.yaml": T_TEXT, "w.yaml": b"\xff"}, names="s.yaml" if k != "workload_broken" else "w.yaml")
             for k, v in bad.items()]
    sweep_json = json.dumps({"name": "x", "base_raw": ARCH, "base_arch": A, "objectives": [], "parameters": []})
    for k, files in {"corrupt_json": {"d/sweep.json": b"{not json", "d/results.sqlite": b""},
                     "garbage_sqlite": {"d/sweep.json": sweep_json, "d/results.sqlite": b"garbage" * 100},
                     "sqlite_dir": {"d/sweep.json": sweep_json, "d/results.sqlite": None},
                     "no_sweep_json": {"d/x": b""}, "sweep_json_list": {"d/sweep.json": b"[1,2]"}}.items():
        cases.append(Case(f"sweep_folder/{k}", ["plot", "pareto", "d", "-q"], files))
        cases.append(Case(f"sweep_folder_breakdown/{k}", ["plot", "breakdown", "--sweep", "d", "-q"], files))
    return cases


def extract_cases() -> list[Case]:
    cfg = json.loads((REPO / "workloads/hf_configs/llama2-7b.json").read_text())
    mix = json.loads((REPO / "workloads/hf_configs/mixtral-8x7b.json").read_text())
    cases = []
    for k, v in {"hidden_nan": 'NaN', "hidden_inf": 'Infinity', "hidden_str": '"4096"', "hidden_bool": "true",
                 "hidden_neg": "-4096", "hidden_huge": str(10 ** 30), "hidden_float": "4096.5"}.items():
        text = json.dumps(cfg).replace('"hidden_size": 4096', f'"hidden_size": {v}')
        cases.append(Case(f"hf/{k}", ["extract", "hf-config", "c.json", "--seq-len", "16"], {"c.json": text},
                          names="c.json"))
    cases.append(Case("hf/deep", ["extract", "hf-config", "c.json"], {"c.json": '{"x":' * 3000 + "1" + "}" * 3000},
                      names="c.json"))
    opt = json.loads((REPO / "workloads/hf_configs/opt-6.7b.json").read_text())
    cases.append(Case("hf/heads_zero", ["extract", "hf-config", "c.json", "--seq-len", "16"],
                      {"c.json": json.dumps({**opt, "num_attention_heads": 0})}, names="c.json"))  # found by mutation
    cases.append(Case("hf/experts_zero", ["extract", "hf-config", "c.json", "--seq-len", "16"],
                      {"c.json": json.dumps({**mix, "num_local_experts": 0})}, names="c.json"))
    for argv in (["--bits", "0"], ["--bits", "-3"], ["--bits", "1000"], ["--seq-len", "0"], ["--seq-len", "-5"],
                 ["--seq-len", "1000000000"], ["--batch", "0"], ["--kv-len", str(10 ** 12), "--phase", "decode"],
                 ["--routing", "bad"], ["--phase", "train"], ["--weights", "5:4"], ["--weights", "2"],
                 ["--kv", "nan"], ["--kv", "inf"], ["--skip-layers", "2"], ["--skip-layers", "nan"],
                 ["--logits", "some"], ["--out", "/proc/r.yaml"]):
        # `--phase train` is a training trace (issue 17), a documented success
        cases.append(Case("hf_flag/" + "_".join(argv)[:40], ["extract", "hf-config", "llama2-7b", "--seq-len", "16",
                                                              *argv], {}, expect="ok" if argv[-1] == "train" else "error"))
    counts = {"zeros": [0] * 8, "neg": [-1] * 8, "short": [1, 2], "floats": [0.5] * 8, "bools": [True] * 8}
    for k, v in counts.items():
        cases.append(Case(f"expert_counts/{k}", ["extract", "hf-config", "mixtral-8x7b", "--seq-len", "16",
                                                 "--routing", "file", "--expert-counts", "e.yaml"],
                          {"e.yaml": json.dumps(v)}, names="e.yaml"))
    return cases


def usage_cases() -> list[Case]:
    argvs = [[], ["simulate"], ["simulate", "--foo"], ["bogus"], ["simulate", "-a", A], ["plot"], ["extract"],
             ["plot", "bogus"], ["simulate", "-a", A, "-w", "t.yaml", "--top", "abc"], ["sweep"],
             ["llm", "-m", "llama2-7b"], ["llm", "-m", "llama2-7b", "-a", A, "-p", "x", "-t", "1"],
             ["system", "-w", "t.yaml"], ["simulate", "-a", A, "-w", "t.yaml", "--out", "/proc/r.csv"],
             ["simulate", "-a", A, "-w", "t.yaml", "--out", "r.xlsx"], ["simulate", "-a", A, "-w", "t.yaml", "--out", "."],
             ["llm", "-m", "llama2-7b", "-a", A, "-p", "1000000000", "-t", "1", "--samples", "1"],
             ["llm", "-m", "llama2-7b", "-a", A, "-p", "0", "-t", "1"],
             ["llm", "-m", "llama2-7b", "-a", A, "-p", "8", "-t", "1", "--samples", "0"],
             ["llm", "-m", "llama2-7b", "-a", A, "-p", "8", "-t", "1", "--acceptance", "nan", "--draft-tokens", "2"],
             ["llm", "-m", "llama2-7b", "-a", A, "-p", "8", "-t", "1000000000", "--samples", "2"],
             ["llm", "-m", "llama2-7b", "-a", A, "-p", "8", "-t", "4", "--samples", "100000"],
             ["llm", "-m", "llama2-7b", "-a", A, "-p", "8", "-t", "4", "-b", "1000000000", "--samples", "1"],
             ["system", "-w", "t.yaml", "-a", A, "--cores", "2", "--policy", "pipeline", "--microbatches", "100000000"],
             ["compare", "-a", A], ["graph", "-a", A, "-w", "t.yaml", "--set", "x"],
             ["crosscheck", "-a", GPU, "--measured", "m.csv", "--dtype", "fp128"], ["measure", "--out", "m.txt"]]
    return [Case("usage/" + ("_".join(a[:1] + a[-2:])[:40] or "none"), a, {"t.yaml": T_TEXT, "m.csv": MEASURED})
            for a in argvs]


def extreme_valid_cases() -> list[Case]:
    """Valid inputs whose outputs must be finite numbers (or a clean refusal stating a limit)."""
    skip = yaml.safe_load((REPO / "arch_configs/sparse_systolic_skip_bitmap.yaml").read_text())
    skip["compute"]["rows"] = skip["compute"]["cols"] = 1
    tiny = _trace([_op(dims={"M": 1, "N": 1, "K": 1}, sparsity={
        "weights": {"kind": "unstructured", "density": 1e-6}, "activations": {"kind": "unstructured", "density": 1e-6}})])
    cases = [Case("extreme/skip_1x1", ["simulate", "-a", "a.yaml", "-w", "t.yaml", "--out", "o.json", "--json"],
                  {"a.yaml": _y(skip), "t.yaml": tiny}, expect="ok", outputs=("o.json",))]
    for trace in ("resnet18.yaml", "bert_base_seq128_2to4.yaml", "llama2_7b_decode_kv2048_2to4.yaml",
                  "sparse_layers_70pct_unstructured.yaml"):
        for arch in (A, FPGA, SKIP, str(REPO / "arch_configs/scalesim_32x32_os.yaml"), GPU):
            cases.append(Case(f"shipped/{trace}@{arch.rsplit('/', 1)[-1]}",
                              ["simulate", "-a", arch, "-w", str(REPO / "workloads/traces" / trace), "--out", "o.json",
                               "--json"], {}, expect="either", outputs=("o.json",)))
    fpga_ideal = yaml.safe_load((REPO / "arch_configs/fpga_u280_llm_sparse.yaml").read_text())
    off = list(fpga_ideal["memory"])[-1]
    fpga_ideal["memory"][off] = {k: v for k, v in fpga_ideal["memory"][off].items()
                                 if k != "bandwidth_bytes_per_cycle"} | {"ideal": True}
    cases.append(Case("extreme/fpga_ideal", ["simulate", "-a", "a.yaml", "-w",
                                             str(REPO / "workloads/traces/llama2_7b_decode_kv2048.yaml"), "--json",
                                             "--out", "o.json"], {"a.yaml": _y(fpga_ideal)}, expect="either",
                      outputs=("o.json",)))
    cases.append(Case("extreme/plot_name_escape", ["plot", "roofline", "-a", A, "-w", "t.yaml", "-o", "plots"],
                      {"t.yaml": _trace(name="../../../../escaped")}, expect="ok", writes="plots/*escaped*"))
    return cases


def more_cases() -> list[Case]:
    """A second round written after the first was fixed: other fields, other subcommands."""
    traces = {
        "dims_list": [_op(dims=[1, 2, 3])], "block_zero": [_op(sparsity={"weights": {
            "kind": "block", "density": 0.5, "block": [0, 4]}})],
        "row_nnz_neg": [_op(sparsity={"weights": {"kind": "unstructured", "density": 0.5,
                                                  "measured": {"density": 0.5, "row_nnz": [-1, 3]}}})],
        "moe_empty": [{"name": "e", "kind": "moe_gemm", "dims": {"tokens_per_expert": [], "N": 8, "K": 8}}],
        "moe_bools": [{"name": "e", "kind": "moe_gemm", "dims": {"tokens_per_expert": [True], "N": 8, "K": 8}}],
        "heads_zero": [{"name": "q", "kind": "attention_qk",
                        "dims": {"batch": 1, "heads": 0, "q_len": 1, "kv_len": 8, "head_dim": 8}}],
        "conv_stride0": [{"name": "c", "kind": "conv2d", "dims": {"C": 3, "H": 8, "W": 8, "K": 4, "R": 3, "S": 3,
                                                                 "stride": 0}}],
        "conv_groups": [{"name": "c", "kind": "conv2d", "dims": {"C": 3, "H": 8, "W": 8, "K": 4, "R": 3, "S": 3,
                                                                "groups": 2}}],
        "conv_pad_huge": [{"name": "c", "kind": "conv2d", "dims": {"C": 3, "H": 8, "W": 8, "K": 4, "R": 3, "S": 3,
                                                                  "pad": 10 ** 9}}],
        "skip_prob_2": [_op(skip_probability=2)], "precision_str": [_op(precision={"weights": "int8"})],
        "phase_bad": [_op(phase="train")], "name_empty": [_op(name="")], "name_int": [_op(name=5)],
    }
    cases = [Case(f"more_trace/{k}", ["compare", "-a", A, "-w", "t.yaml", "--json"], {"t.yaml": _trace(v)},
                  names="t.yaml") for k, v in traces.items()]
    flags = [["llm", "-m", "llama2-7b", "-a", A, "-p", "8", "-t", "2", "--cores", "0"],
             ["llm", "-m", "llama2-7b", "-a", A, "-p", "8", "-t", "2", "--policy", "bogus"],
             ["llm", "-m", "llama2-7b", "-a", A, "-p", "8", "-t", "2", "--draft-tokens", "2", "--acceptance", "2"],
             ["llm", "-m", "llama2-7b", "-a", A, "-p", "8", "-t", "2", "--draft-tokens", "2", "--draft-skip", "1"],
             ["llm", "-m", "llama2-7b", "-a", A, "-p", "8", "-t", "2", "--weights", "block:0x4:0.5"],
             ["llm", "-m", "llama2-7b", "-a", A, "-p", "8", "-t", "2", "--kv", "0"],
             ["llm", "-m", "nope-model", "-a", A, "-p", "8", "-t", "2"],
             ["system", "-w", "t.yaml", "-a", A, "--cores", "2", "--timeline", "/proc/x.json"],
             ["system", "-w", "t.yaml", "-a", A, "--cores", "2", "--gantt", "g.xyz"],
             ["system", "-w", "t.yaml", "-a", A, "--out", "o.parquet"],
             ["plot", "compare", "-a", ".", "-w", "t.yaml", "-o", "p.png"],
             ["plot", "roofline", "-a", A, "-w", "t.yaml", "-o", "p.bmp"],
             ["plot", "breakdown", "-w", "t.yaml"],
             ["crosscheck", "-a", A, "--measured", "m.csv"],
             ["crosscheck", "-a", GPU, "--measured", "neg.csv"],
             ["crosscheck", "-a", GPU, "--measured", "m.csv", "--out", "r.txt"],
             ["extract", "hf-config", "llama2-7b", "--attention", "2"],
             ["extract", "hf-config", "llama2-7b", "--weights", "block:4x4:0"],
             ["sweep", "s.yaml", "--out", "t.yaml"], ["sweep", "s.yaml", "--out", "o", "--jobs", "0"],
             ["sweep", "s.yaml", "--out", "o", "--executor", "dask://"], ["sweep", "s.yaml", "--out", "o", "-n", "0"]]
    spec = copy.deepcopy(SWEEP)
    spec["objectives"] = []
    files = {"t.yaml": T_TEXT, "m.csv": MEASURED, "neg.csv": "M,N,K,latency_ms\n64,64,64,-1\n64,0,64,nan\n",
             "s.yaml": _y(spec)}
    # -o p.bmp: a folder; every --out takes .csv/.parquet/.json (issue 14)
    ok = {"p.bmp": "either", "o.parquet": "ok"}
    cases += [Case("more_flag/" + "_".join(a[:1] + a[-2:])[:48], a, files, expect=ok.get(a[-1], "error"))
              for a in flags]
    return cases


def semantic_bundle() -> list[Case]:
    return (arch_value_cases() + trace_value_cases() + system_cases() + sweep_cases() + extract_cases()
            + usage_cases() + extreme_valid_cases() + more_cases())


def all_cases() -> list[Case]:
    return reader_cases() + semantic_bundle()
