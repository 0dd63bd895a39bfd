"""Hypothesis-driven mutation of the shipped specs, systems, sweeps, traces and HF configs.

A mutation picks one to three places in a parsed shipped file (any mapping value or list item, found by
walking the tree) and replaces, deletes, renames or duplicates it; the mutated file is then
fed to the command that reads it. Every outcome must be a clean error or a success with
finite outputs (see tests/fuzz_harness.py); most mutations are refused, some are valid.
"""

from __future__ import annotations

import copy
import json

import yaml
from hypothesis import strategies as st

from fuzz_harness import REPO, Case

A = str(REPO / "arch_configs/edge_npu_32x32_os.yaml")
SMALL_TRACE = str(REPO / "workloads/traces/sparse_layers_70pct_unstructured.yaml")

ODD_VALUES = [None, True, False, 0, -1, 1, 0.5, -0.0, 1e308, 2 ** 70, float("inf"), float("-inf"), float("nan"),
              "", "x", "64", "../../x", [], {}, [1], {"a": 1}, "2:4", 10 ** 12]


def _paths(node, prefix=()):
    """Every (path) to a value inside a parsed YAML/JSON tree."""
    out = []
    if isinstance(node, dict):
        for k, v in node.items():
            out.append(prefix + (k,))
            out += _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node[:8]):
            out.append(prefix + (i,))
            out += _paths(v, prefix + (i,))
    return out


def _parent(tree, path):
    node = tree
    for key in path[:-1]:
        node = node[key]
    return node


@st.composite
def mutated(draw, source: dict):
    """(description, mutated tree) of one shipped document `source`: one to three mutations."""
    tree = copy.deepcopy(source)
    done = []
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(tree)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, key = _parent(tree, path), path[-1]
        action = draw(st.sampled_from(["replace", "replace", "scale", "delete", "rename", "nest"]))
        old = parent[key]
        if action == "replace":
            parent[key] = copy.deepcopy(draw(st.sampled_from(ODD_VALUES) | st.integers(-10 ** 6, 10 ** 15)
                                             | st.floats(allow_nan=True) | st.text(max_size=6)))
        elif action == "scale" and isinstance(old, (int, float)) and not isinstance(old, bool):
            parent[key] = old * draw(st.sampled_from([0, -1, 10 ** 6, 10 ** 12, 1e-9, 2.5]))
        elif action == "delete":
            del parent[key]
        elif action == "rename" and isinstance(parent, dict):
            parent[str(key) + draw(st.sampled_from(["x", "_", "s"]))] = parent.pop(key)
        elif action == "nest":
            parent[key] = [old]
        done.append(f"{action} {'.'.join(map(str, path))}")
    return "; ".join(done), tree


def _load(rel: str) -> dict:
    text = (REPO / rel).read_text()
    return json.loads(text) if rel.endswith(".json") else yaml.safe_load(text)


def _dump(tree, json_out: bool) -> str:
    return json.dumps(tree) if json_out else yaml.safe_dump(tree, sort_keys=False)


def _arch_case(tree, name):
    return Case(name, ["simulate", "-a", "m.yaml", "-w", SMALL_TRACE, "--json", "--out", "o.json"],
                {"m.yaml": _dump(tree, False)}, expect="either", outputs=("o.json",))


def _trace_case(tree, name):
    return Case(name, ["simulate", "-a", A, "-w", "m.yaml", "--json", "--out", "o.json"],
                {"m.yaml": _dump(tree, False)}, expect="either", outputs=("o.json",))


def _system_case(tree, name, rel):
    for core in tree.get("cores", []) if isinstance(tree, dict) and isinstance(tree.get("cores"), list) else []:
        if isinstance(core, dict) and isinstance(core.get("arch"), str):  # the system's own relative paths
            core["arch"] = str((REPO / rel).parent / core["arch"])
    return Case(name, ["system", "-s", "m.yaml", "-w", SMALL_TRACE, "--json"], {"m.yaml": _dump(tree, False)},
                expect="either")


def _sweep_case(tree, name, rel):
    if isinstance(tree, dict):
        here = (REPO / rel).parent
        if isinstance(tree.get("base_arch"), str):
            tree["base_arch"] = str(here / tree["base_arch"])
        if isinstance(tree.get("workloads"), list):
            tree["workloads"] = [({**w, "path": SMALL_TRACE} if isinstance(w, dict) else w) for w in tree["workloads"]]
    return Case(name, ["sweep", "m.yaml", "--out", "out", "--max-points", "3", "--executor", "serial", "--no-plots",
                       "-q"], {"m.yaml": _dump(tree, False)}, expect="either")


def _hf_case(tree, name):
    return Case(name, ["extract", "hf-config", "m.json", "--seq-len", "8", "--json"], {"m.json": _dump(tree, True)},
                expect="either")


def _train_case(tree, name):
    return Case(name, ["train", "-w", "m.yaml", "-a", A, "--micro-batches", "2", "--json"],
                {"m.yaml": _dump(tree, False)}, expect="either")


FAMILIES = {
    "arch": (sorted(str(p.relative_to(REPO)) for p in (REPO / "arch_configs").glob("*.yaml")), _arch_case),
    "trace": (["workloads/traces/sparse_layers_70pct_unstructured.yaml", "workloads/traces/minilm_2to4_measured.yaml",
               "workloads/traces/resnet18.yaml", "workloads/traces/mixtral_8x7b_decode_kv2048.yaml",
               "workloads/traces/llama31_8b_decode_kv32768_kv70pruned.yaml"], _trace_case),
    "system": (sorted(str(p.relative_to(REPO)) for p in (REPO / "arch_configs/systems").glob("*.yaml")),
               _system_case),
    "sweep": (sorted(str(p.relative_to(REPO)) for p in (REPO / "analysis/sweeps").glob("*.yaml")), _sweep_case),
    "training_trace": (["workloads/traces/train_bert_base_seq128.yaml"], _trace_case),
    "train_forward": (["workloads/traces/sparse_layers_70pct_unstructured.yaml"], _train_case),
    "hf_config": (sorted(str(p.relative_to(REPO)) for p in (REPO / "workloads/hf_configs").glob("*.json")),
                  _hf_case),
}


@st.composite
def mutation_cases(draw, family: str):
    files, make = FAMILIES[family]
    rel = draw(st.sampled_from(files))
    what, tree = draw(mutated(_load(rel)))
    name = f"mutate/{family}/{rel.rsplit('/', 1)[-1]}: {what}"
    if family in ("system", "sweep"):
        return make(tree, name, rel)
    return make(tree, name)
