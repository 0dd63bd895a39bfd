"""Invariants of the systolic engine and its memory model (hypothesis)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from simulator import arch_from_dict, simulate
from simulator.engines.systolic import compute_cycles
from simulator.trace import Op, Trace

dataflows = st.sampled_from(["os", "ws", "is"])
dims = st.integers(min_value=1, max_value=300)


def make_arch(rows, cols, dataflow, dram_bpc, kib=64):
    return arch_from_dict({"clock_mhz": 1000, "compute": {"kind": "systolic", "rows": rows, "cols": cols,
                                                          "dataflow": dataflow},
                           "memory": {"sram": {"capacity_kib": kib, "bandwidth_bytes_per_cycle": 64},
                                      "dram": {"kind": "dram", "bandwidth_bytes_per_cycle": dram_bpc}}})


@settings(max_examples=200, deadline=None)
@given(dataflow=dataflows, base=st.integers(1, 32), mult=st.integers(1, 6), other=st.integers(1, 64),
       k=dims, along_rows=st.booleans())
def test_doubling_the_array_never_slows_an_op_that_fills_it(dataflow, base, mult, other, k, along_rows):
    # A compute-bound op that fills the doubled array exactly along the grown dimension.
    # (An op smaller than the array can get slower on a bigger one: the skew grows with the array.)
    rows, cols = (base, other) if along_rows else (other, base)
    big_rows, big_cols = (2 * rows, cols) if along_rows else (rows, 2 * cols)
    filled = 2 * base * mult
    # which GEMM dim is tiled by rows/cols depends on the dataflow
    row_dim, col_dim = {"os": ("M", "N"), "ws": ("K", "N"), "is": ("K", "M")}[dataflow]
    shape = {"M": k, "N": k, "K": k}
    shape[row_dim if along_rows else col_dim] = filled
    small = compute_cycles(dataflow, shape["M"], shape["N"], shape["K"], rows, cols)
    large = compute_cycles(dataflow, shape["M"], shape["N"], shape["K"], big_rows, big_cols)
    assert large <= small


@settings(max_examples=60, deadline=None)
@given(dataflow=dataflows, M=dims, N=dims, K=dims, bw=st.floats(0.25, 64), factor=st.floats(1.0, 16.0),
       kib=st.sampled_from([4, 16, 64, 512]))
def test_more_dram_bandwidth_never_adds_stalls(dataflow, M, N, K, bw, factor, kib):
    trace = Trace(ops=[Op(name="g", kind="gemm", dims={"M": M, "N": N, "K": K})])
    slow = simulate(trace, make_arch(8, 8, dataflow, bw, kib)).rows[0]
    fast = simulate(trace, make_arch(8, 8, dataflow, bw * factor, kib)).rows[0]
    assert fast["stall_cycles"] <= slow["stall_cycles"] + 1e-6
    assert fast["compute_cycles"] == slow["compute_cycles"]


@settings(max_examples=40, deadline=None)
@given(dataflow=dataflows, M=dims, N=dims, K=dims, bw=st.floats(0.5, 32))
def test_energy_breakdown_sums_to_the_total_and_results_are_deterministic(dataflow, M, N, K, bw):
    trace = Trace(ops=[Op(name="g", kind="gemm", dims={"M": M, "N": N, "K": K})])
    arch = make_arch(16, 8, dataflow, bw)
    first, second = simulate(trace, arch), simulate(trace, arch)
    assert first.rows == second.rows
    row = first.rows[0]
    parts = sum(v for k, v in row.items() if k.startswith("energy_") and k != "energy_pj")
    assert abs(parts - row["energy_pj"]) <= 1e-9 * row["energy_pj"]
    assert 0 < row["utilization"] <= 1.0
