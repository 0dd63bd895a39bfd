"""The input layer, bounds, bounded sweep expressions and finite outputs, unit by unit."""

import json
import math
import os

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.sweep_spec import Expr, ExprError
from simulator.errors import SparsimInputError
from simulator.inputs import MAX_DEPTH, check_tree, load_json, load_yaml, read_text, read_yaml_file
from simulator.outputs import finite, finite_json, safe_stem
from simulator.spec import load_arch
from simulator.trace import trace_from_dict

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]
EDGE = ROOT / "arch_configs/edge_npu_32x32_os.yaml"


def _error(fn, *args, **kw) -> SparsimInputError:
    with pytest.raises(SparsimInputError) as info:
        fn(*args, **kw)
    return info.value


def test_files_that_are_not_regular_text_are_refused_by_kind(tmp_path):
    assert "is a directory" in _error(read_text, tmp_path).message
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert "FIFO" in _error(read_text, fifo).message  # refused before open: no blocking read
    assert "FIFO, device" in _error(read_text, "/dev/zero").message
    (tmp_path / "b.yaml").write_bytes(b"\xff\xfe")
    assert "not UTF-8" in _error(read_text, tmp_path / "b.yaml").message
    (tmp_path / "big.yaml").write_bytes(b"x" * 2048)
    assert "over the 1,024-byte limit" in _error(read_text, tmp_path / "big.yaml", max_bytes=1024).message
    assert "not found" in _error(read_text, tmp_path / "nope.yaml").message


def test_yaml_loader_refuses_duplicates_deep_nesting_and_alias_bombs():
    assert "duplicate key 'a'" in _error(load_yaml, "a: 1\nb: 2\na: 3\n").message
    assert "nested deeper" in _error(load_yaml, "[" * 100_000).message
    bomb = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"{n}: &{n} [{', '.join(['*' + p] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi"))
    assert "more than 2,000,000 values" in _error(load_yaml, bomb).message
    assert "not a finite number" in _error(load_yaml, "clock_mhz: .inf").message
    assert _error(load_yaml, "x: {y: [1, .nan]}").field == "x.y[1]"
    assert load_yaml("a: &v 3\nb: *v\n") == {"a": 3, "b": 3}  # a few aliases are fine
    assert load_yaml("a: 1e7\nb: '1e7'\nc: 64\n") == {"a": 1e7, "b": "1e7", "c": 64}  # YAML 1.2 floats


def test_json_loader_refuses_duplicates_nan_and_deep_nesting():
    assert "duplicate key" in _error(load_json, '{"a": 1, "a": 2}').message
    assert "NaN" in _error(load_json, '{"a": NaN}').message
    assert "nested deeper" in _error(load_json, '{"a":' * 10_000 + "1" + "}" * 10_000).message
    assert load_json('{"s": "[[[[["}') == {"s": "[[[[["}  # brackets inside strings do not count


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
                    | st.text(max_size=5), lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=4), c,
                                                                                                max_size=4),
                    max_leaves=30))
@settings(max_examples=60, deadline=None)
def test_any_finite_document_round_trips_through_both_loaders(doc):
    assert load_json(json.dumps(doc)) == doc
    assert load_yaml(yaml.safe_dump(doc)) == doc


def test_depth_cap_is_counted_on_the_parsed_tree():
    deep = cur = {}
    for _ in range(MAX_DEPTH + 2):
        cur["a"] = {}
        cur = cur["a"]
    assert "nested deeper" in _error(check_tree, deep).message


@pytest.mark.parametrize("override, words", [
    ("compute.rows=true", "expected a number, got True"), ("compute.rows=\"64\"", "expected a number"),
    ("clock_mhz=.inf", "expected a number"), ("energy.mac_pj={8: -1}", "greater than or equal to 0"),
    ("compute.kind=[systolic]", "must be a name"), ("compute.rows=100000000000000000000", "too large"),
])
def test_strict_field_types(override, words):
    err = _error(load_arch, EDGE, [override])
    assert words in str(err) and str(EDGE) in str(err)


def _ops(*ops):
    return {"schema_version": 1, "ops": list(ops)}


def _gemm(name="g", **extra):
    return {"name": name, "kind": "gemm", "dims": {"M": 64, "N": 64, "K": 64}, **extra}


@pytest.mark.parametrize("data, words", [
    (_ops(_gemm(dims={"M": 10 ** 15, "N": 4, "K": 4})), "over the limit"),
    (_ops({"name": "c", "kind": "conv2d", "dims": {"C": 3, "H": 10 ** 9, "W": 10 ** 9, "K": 8, "R": 3, "S": 3}}),
     "lowers to a GEMM"),
    (_ops(_gemm(depends_on=["g"])), "depends on itself"),
    (_ops(_gemm(depends_on=["ghost"])), "'ghost' is not an op"),
    (_ops(_gemm("a", depends_on=["b"]), _gemm("b", depends_on=["a"])), "dependency cycle: a -> b -> a"),
    ({"schema_version": "1", "ops": [_gemm()]}, "expected a number"),
    (_ops(_gemm(dims={"M": True, "N": 4, "K": 4})), "expected a number"),
])
def test_trace_bounds_and_dependencies(data, words):
    assert words in str(_error(trace_from_dict, data, path="t.yaml"))


def test_array_fold_limit_is_checked_before_allocation():
    from simulator.simulate import simulate
    arch = load_arch(EDGE, {"compute.rows": 1, "compute.cols": 1})
    trace = trace_from_dict(_ops(_gemm(dims={"M": 2 ** 13, "N": 2 ** 12, "K": 8})))
    assert "folds of the 1x1 array" in _error(simulate, trace, arch).message


def test_mapping_search_dim_limit_is_checked_before_allocation():
    """An OS GEMM with a 2^30 reduction is one fold, but the mapping search would enumerate 2^30 tiles of it."""
    from simulator.simulate import simulate
    trace = trace_from_dict(_ops(_gemm(dims={"M": 1, "N": 1, "K": 2 ** 30})))
    assert "mapping search enumerates" in _error(simulate, trace, load_arch(EDGE)).message


@pytest.mark.parametrize("timing", ["scalesim", "pipelined"])
@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_searched_mapping_never_gives_a_skipping_array_negative_cycles(timing, dataflow):
    """A 1x1 zero-skipping array at density 1e-6 runs a tiny expected fraction of a cycle per fold: the
    pipelined overlap and SCALE-Sim's "- 1" may not take it below zero; dense folds keep the closed form."""
    from simulator.simulate import simulate
    skip = ROOT / "arch_configs/sparse_systolic_skip_bitmap.yaml"
    arch = load_arch(skip, {"compute.rows": 1, "compute.cols": 1, "compute.dataflow": dataflow,
                            "compute.mapping": {"timing": timing}})
    sparse = {"kind": "unstructured", "density": 1e-6}
    trace = trace_from_dict(_ops(_gemm(dims={"M": 3, "N": 3, "K": 3},
                                       sparsity={"weights": sparse, "activations": sparse})))
    cycles = simulate(trace, arch).rows[0]["compute_cycles"]
    assert 0.0 <= cycles < 9 * 3   # never negative, far below the dense 9 folds x 3 MACs
    dense = load_arch(EDGE, {"compute.rows": 2, "compute.cols": 2, "compute.mapping": {"timing": timing}})
    g = trace_from_dict(_ops(_gemm(dims={"M": 4, "N": 4, "K": 5})))
    folds, per_fold, fill = 4, 2 + 2 + 5 - 2, 2 + 2 - 2   # OS: ceil(4/2)^2 folds of R + C + K - 2 cycles
    hidden = (folds - 1) * fill if timing == "pipelined" else 0
    assert simulate(g, dense).rows[0]["compute_cycles"] == folds * per_fold - hidden - 1


@pytest.mark.parametrize("text, words", [
    ("9**9**9", "exponent"), ("'ab' * 10**10", "arithmetic needs numbers"), ("x // 0", "divides by zero"),
    ("2**200 * 2**200", "exceeds 2**256"), ("log2(0)", "cannot be evaluated"), ("x / 0.0", "divides by zero"),
])
def test_sweep_expressions_are_bounded(text, words):
    with pytest.raises(ExprError, match=words.replace("*", r"\*")):
        Expr(text).evaluate({"x": 4})


def test_sweep_expressions_still_compute():
    assert Expr("min(x * 2, 64) + 2**3").evaluate({"x": 40}) == 72
    assert Expr("x >= 4").evaluate({"x": 4}) is True
    with pytest.raises(ValueError, match="characters long"):
        Expr("1+" * 600 + "1")


def test_outputs_are_finite_json_and_safe_names():
    assert finite({"a": [1.0, math.nan, {"b": math.inf}], "c": np.float64("nan")}) == {"a": [1.0, None, {"b": None}],
                                                                                      "c": None}
    json.loads(finite_json({"x": math.inf}))
    for name in ("../../../../X", "a/b\\c", "..", "\n", "x.y.z", ""):
        stem = safe_stem(name)
        assert "/" not in stem and "\\" not in stem and "." not in stem and stem


def test_decode_sum_is_closed_form_and_matches_the_interpolated_sum():
    from simulator.llm import _sum_interpolated
    rng = np.random.default_rng(1)
    for _ in range(300):
        first = int(rng.integers(1, 40))
        last = first + int(rng.integers(-2, 50))
        pts = sorted({int(x) for x in rng.integers(first - 3, last + 4, int(rng.integers(1, 6)))})
        vals = list(rng.random(len(pts)))
        ref = float(np.interp(np.arange(first, last + 1, dtype=float), pts, vals).sum()) if last >= first else 0.0
        assert _sum_interpolated(pts, vals, first, last) == pytest.approx(ref, rel=1e-12, abs=1e-12)
    assert _sum_interpolated([10, 2 ** 40], [1.0, 1.0], 10, 2 ** 40) == pytest.approx(2 ** 40 - 9)  # no array


def test_yaml_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "a\nb.yaml"
    bad.write_text("a: 1\na: 2\n")
    line = _error(read_yaml_file, bad).one_line()
    assert "\n" not in line and "a\\nb.yaml" in line
