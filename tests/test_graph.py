"""Op graph: dependencies, critical path, fusion, and the errors a hand-written graph can hold.

Durations are derived by hand on the edge NPU (800 MHz, 32 vector lanes, 16 B/cycle DRAM,
512 KiB double-buffered SRAM, 8-bit datapath): a vector op of E elements computes in
ceil(E/32) cycles and moves its bytes at 16 B/cycle, the slower of the two bounding it.
"""

from __future__ import annotations

import pytest

from simulator import arch_from_dict, load_arch, load_trace
from simulator.errors import SparsimInputError
from simulator.graph import analyze, build_graph, fusion_level, fusion_plan, schedule_graph
from simulator.trace import trace_from_dict

from conftest import ARCH_DIR, TRACE_DIR

CLOCK_HZ = 800e6


def trace(*ops):
    return trace_from_dict({"schema_version": 1, "name": "g", "ops": list(ops)})


def unchecked_trace(*ops):
    """A trace whose dependencies are not validated (loading one now refuses bad depends_on), so
    the graph builder's own checks can be tested."""
    from simulator.trace import Op, Trace
    return Trace.model_construct(schema_version=1, name="g", ops=[Op.model_validate(o) for o in ops])


def test_loading_a_trace_refuses_bad_dependencies():
    for ops, words in (([vec("a", 32, depends_on=["c"]), vec("b", 32), vec("c", 32)], "dependency cycle"),
                       ([vec("add", 32, depends_on=["nrom2"])], "'nrom2'"),
                       ([vec("a", 32, depends_on=["a"])], "depends on itself")):
        with pytest.raises(SparsimInputError, match=words):
            trace(*ops)


def vec(name, elements, inputs=1, **kw):
    return {"name": name, "kind": "elementwise", "dims": {"elements": elements, "inputs": inputs}, **kw}


def ideal_edge():
    return load_arch(ARCH_DIR / "edge_npu_32x32_os.yaml", {"memory.lpddr4.ideal": True})


def test_depends_on_none_chains_ops_and_lists_make_branches():
    g = build_graph(trace(vec("a", 32), vec("b", 32), vec("c", 32, depends_on=["a"]),
                          vec("d", 32, inputs=2, depends_on=["b", "c"]), vec("src", 32, depends_on=[])))
    assert set(g.edges) == {("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")}
    assert set(g.predecessors("src")) == set()


def test_resnet_residual_branches_form_a_dag():
    tr = load_trace(TRACE_DIR / "resnet18.yaml")
    g = build_graph(tr)
    adds = [op.name for op in tr.ops if op.kind == "elementwise"]
    assert adds and all(g.in_degree(a) == 2 for a in adds)    # main path + shortcut
    assert g.number_of_edges() > len(tr.ops) - 1


def test_critical_path_takes_the_longer_parallel_branch():
    # a: 3200 elements -> 100 cycles; b: 6400 -> 200; c, d: 100. Paths a-b-d = 400, a-c-d = 300.
    tr = trace(vec("a", 3200), vec("b", 6400), vec("c", 3200, depends_on=["a"]),
               vec("d", 3200, inputs=2, depends_on=["b", "c"]))
    sched = analyze(tr, ideal_edge())
    assert sched.critical_path == ["a", "b", "d"]
    assert sched.latency_s == pytest.approx(400 / CLOCK_HZ, rel=1e-12)
    assert sched.serial_latency_s == pytest.approx(500 / CLOCK_HZ, rel=1e-12)
    assert sched.start_s["c"] == pytest.approx(100 / CLOCK_HZ, rel=1e-12)
    assert sched.start_s["d"] == pytest.approx(300 / CLOCK_HZ, rel=1e-12)
    assert sched.finish_s["c"] == pytest.approx(200 / CLOCK_HZ, rel=1e-12)


def test_schedule_with_given_durations():
    g = build_graph(trace(vec("x", 32), vec("y", 32, depends_on=[]), vec("z", 32, inputs=2, depends_on=["x", "y"])))
    sched = schedule_graph(g, {"x": 1.0, "y": 3.0, "z": 2.0})
    assert sched.latency_s == 5.0 and sched.critical_path == ["y", "z"]
    assert sched.parallelism == pytest.approx(6.0 / 5.0)


def test_fusion_keeps_a_producer_output_on_chip_and_saves_its_round_trip():
    # a adds two 64 Ki-element tensors: reads 128 KiB, writes 64 KiB -> 12,288 transfer cycles
    # (compute 2,048). b reads a's 64 KiB output and writes 64 KiB -> 8,192 cycles.
    # Fused: a's 64 KiB write and b's 64 KiB read vanish: a 8,192 cycles, b 4,096.
    arch = load_arch(ARCH_DIR / "edge_npu_32x32_os.yaml")
    tr = trace(vec("a", 2 ** 16, inputs=2), vec("b", 2 ** 16))
    plain = analyze(tr, arch)
    fused = analyze(tr, arch, fusion=True)
    assert plain.latency_s == pytest.approx((12_288 + 8_192) / CLOCK_HZ, rel=1e-12)
    assert fused.fused_edges == [("a", "b")]
    assert fused.saved_dram_bytes == 2 * 2 ** 16
    assert fused.latency_s == pytest.approx((8_192 + 4_096) / CLOCK_HZ, rel=1e-12)


def test_fusion_needs_a_buffer_that_holds_the_whole_output_and_a_single_consumer():
    arch = load_arch(ARCH_DIR / "edge_npu_32x32_os.yaml")   # 512 KiB SRAM, 256 KiB usable
    big = build_graph(trace(vec("a", 2 ** 19), vec("b", 2 ** 19)))            # 512 KiB output
    assert fusion_plan(big, arch) == {}
    fan_out = build_graph(trace(vec("a", 64), vec("b", 64), vec("c", 64, depends_on=["a"])))
    assert ("a", "b") not in fusion_plan(fan_out, arch)
    # TPU v1: outputs accumulate in the accumulators and drain into the unified buffer, where the next
    # op reads them; a spec with no on-chip level for outputs cannot fuse.
    tpu = load_arch(ARCH_DIR / "tpu_v1_256x256_ws.yaml")
    assert fusion_level(tpu) == "unified_buffer"
    assert fusion_plan(build_graph(trace(vec("a", 64), vec("b", 64))), tpu) == {("a", "b"): 64}
    no_out = arch_from_dict({"clock_mhz": 1000, "compute": {"kind": "systolic", "rows": 4, "cols": 4, "dataflow": "os"},
                             "memory": {"sram": {"capacity_kib": 64, "ideal": True, "holds": ["activations", "weights"]},
                                        "dram": {"kind": "dram", "bandwidth_bytes_per_cycle": 8}}})
    assert fusion_level(no_out) is None


def test_a_dependency_cycle_is_one_clear_error():
    tr = unchecked_trace(vec("a", 32, depends_on=["c"]), vec("b", 32), vec("c", 32))
    with pytest.raises(SparsimInputError) as info:
        build_graph(tr)
    assert "dependency cycle" in info.value.message
    assert "a -> b -> c -> a" in info.value.message or "c -> a -> b -> c" in info.value.message \
        or "b -> c -> a -> b" in info.value.message


def test_a_dependency_on_a_missing_op_names_it():
    tr = unchecked_trace(vec("norm1", 32), vec("add", 32, inputs=2, depends_on=["norm1", "nrom2"]))
    with pytest.raises(SparsimInputError) as info:
        build_graph(tr)
    assert "'nrom2'" in info.value.message and info.value.field == "ops[add].depends_on"
    assert "norm1" in info.value.hint


def test_self_dependency_is_an_error():
    with pytest.raises(SparsimInputError, match="depends on itself"):
        build_graph(unchecked_trace(vec("a", 32, depends_on=["a"])))
