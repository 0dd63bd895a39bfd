"""The mapping kernels run as plain Python for short runs and numba-compiled later: same floats both ways."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from simulator import arch_from_dict, kernels
from simulator.kernels.group import KernelGroup
from simulator.mapping import reuse as rv
from simulator.mapping.cost import _params
from simulator.mapping.loopnest import LoopNest, Unrolling
from simulator.mapping.search import TILED, candidates
from simulator.mapping.spec import MappingSpec

ROOT = Path(__file__).resolve().parents[1]
UNROLL = {"os": (("N", "P", "Q"), ("K",)), "ws": (("C", "R", "S"), ("K",)), "is": (("C", "R", "S"), ("N", "P", "Q"))}
NESTS = [LoopNest(G=1, N=1, K=300, C=200, P=130, Q=1),                                              # GEMM
         LoopNest(G=1, N=1, K=64, C=32, P=28, Q=28, R=3, S=3, stride=1, H=30, W=30, gemm=False),     # 3x3 conv
         LoopNest(G=1, N=1, K=16, C=3, P=56, Q=56, R=7, S=7, stride=2, H=117, W=117, gemm=False),    # stem
         LoopNest(G=32, N=1, K=1, C=1, P=14, Q=14, R=3, S=3, stride=1, H=16, W=16, gemm=False)]      # depthwise


def _case(nest, dataflow, kib, objective):
    a = arch_from_dict({"clock_mhz": 1000, "compute": {"kind": "systolic", "rows": 8, "cols": 8, "dataflow": dataflow},
                        "memory": {"sram": {"capacity_kib": kib, "bandwidth_bytes_per_cycle": 64},
                                   "dram": {"kind": "dram", "bandwidth_bytes_per_cycle": 2.0}}})
    unroll = Unrolling(*UNROLL[dataflow], 8, 8)
    byte = {x: {n: 1.0 for n in a.memory} for x in ("activations", "weights", "outputs")}
    p, _ = _params(a, nest, unroll, 1e5, byte, 4.0, MappingSpec(objective=objective), unroll.array_demand(nest))
    cands, counts = candidates({d: nest.size(d) for d in TILED}, {d: unroll.granule(nest, d) for d in TILED}, {})
    return p, cands, counts


CASES = [(n, df, kib, obj) for n in NESTS for df, kib, obj in (("os", 16, "latency"), ("ws", 4, "energy"),
                                                               ("is", 64, "edp"))]


@pytest.mark.parametrize("nest, dataflow, kib, objective", CASES)
def test_search_interpreted_equals_compiled(nest, dataflow, kib, objective):
    p, cands, counts = _case(nest, dataflow, kib, objective)
    runs = []
    for kernel, params in ((rv.search_kernel.py_func, p.tolist()), (rv.search_kernel.py_func, p),
                           (rv._group.compiled("search_kernel"), p)):
        best_t, best_out = np.zeros(6), np.zeros(rv.N_OUT)
        order = kernel(cands, counts, params, best_t, best_out)
        runs.append((order, best_t.tolist(), best_out.tolist()))
    assert runs[0][0] >= 0
    assert runs[0] == runs[1] == runs[2]     # exact: same floats, not approximately


@pytest.mark.parametrize("nest, dataflow, kib, objective", CASES[:6])
def test_evaluate_interpreted_equals_compiled(nest, dataflow, kib, objective):
    p, cands, counts = _case(nest, dataflow, kib, objective)
    rng = np.random.default_rng(0)
    compiled = rv._group.compiled("evaluate")
    for _ in range(20):
        t = np.array([cands[d, rng.integers(counts[d])] for d in range(6)])
        for o in range(6):
            a, b = np.zeros(rv.N_OUT), np.zeros(rv.N_OUT)
            rv.evaluate.py_func(t, o, p.tolist(), a)
            compiled(t, o, p, b)
            assert a.tolist() == b.tolist()


def _twice(x):
    return 2.0 * x


def _calls(x):
    return _twice(x) + 1.0


def test_group_compiles_for_a_big_call_or_once_its_time_is_spent(monkeypatch):
    monkeypatch.setattr(kernels, "_jit_now", False)   # a warm_up() earlier in the session may have set it
    group = KernelGroup(dict(globals()), max_call_work=10.0, seconds=3600.0)
    group.member(_twice)
    entry = group.entry(work=lambda x: x)(_calls)
    assert [entry(1.0) for _ in range(3)] == [3.0] * 3 and group._jitted is None
    assert entry(20.0) == 41.0 and group._jitted is not None     # estimated work over max_call_work
    group = KernelGroup(dict(globals()), max_call_work=10.0, seconds=0.5)
    group.member(_twice)
    entry = group.entry(work=lambda x: x)(_calls)
    assert entry(1.0) == 3.0 and group._jitted is None and 0.0 <= group.spent < 0.5
    group.spent = 0.6                                              # as if 0.6 s of CPU were spent
    assert entry(1.0) == 3.0 and group._jitted is not None
    assert group._jitted["_calls"].py_func.__globals__["_twice"] is group._jitted["_twice"]


def test_a_one_gemm_simulate_never_imports_numba(tmp_path):
    topo = tmp_path / "gemm.csv"
    topo.write_text("Layer, M, N, K,\ngemm512, 512, 512, 512,\n")
    code = ("import sys; from simulator import load_arch, load_trace, simulate; "
            f"simulate(load_trace({str(topo)!r}), load_arch('edge_npu_32x32_os')); "
            "print('numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"
