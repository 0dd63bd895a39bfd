"""The searched optimum never gets slower with more buffer: the time the search minimises is the time reported.

Regression (found by hypothesis): GEMM 57x32x268, ws on a 16x4 array, DRAM 4 B/cycle, one shared
double-buffered SRAM of 6 KiB vs 9 KiB. A mapping can fetch an operand from DRAM more often than the
array's own fold order reads it; the SRAM then serves every fetched copy, not just the array's demand.
The search's on-chip bandwidth term missed those reads while the row's stall counted them, so a
bigger buffer picked a mapping whose reported on-chip stall was larger."""

import pytest

from simulator import arch_from_dict, simulate
from simulator.mapping import cost as mapping_cost
from simulator.trace import Op, Trace


def shared_sram_arch(kib: float, sram_bpc: float = 32, dram_bpc: float = 4.0, dataflow: str = "ws",
                     separate: bool = False):
    """One shared SRAM, or (separate) an input, weight and output buffer of `kib` each."""
    memory = {n: {"capacity_kib": kib, "bandwidth_bytes_per_cycle": sram_bpc, "holds": [x]}
              for n, x in (("ibuf", "activations"), ("wbuf", "weights"), ("obuf", "outputs"))} if separate \
        else {"sram": {"capacity_kib": kib, "bandwidth_bytes_per_cycle": sram_bpc}}
    memory["dram"] = {"kind": "dram", "bandwidth_bytes_per_cycle": dram_bpc, "double_buffered": True}
    return arch_from_dict({"clock_mhz": 1000,
                           "compute": {"kind": "systolic", "rows": 16, "cols": 4, "dataflow": dataflow},
                           "memory": memory})


def gemm(M=57, N=32, K=268):
    return Trace(ops=[Op(name="g", kind="gemm", dims={"M": M, "N": N, "K": K})])


def test_regression_more_sram_is_not_slower():
    small = simulate(gemm(), shared_sram_arch(6)).rows[0]
    big = simulate(gemm(), shared_sram_arch(9)).rows[0]
    assert big["compute_cycles"] == small["compute_cycles"]
    assert big["cycles"] <= small["cycles"]


@pytest.mark.parametrize("kib", [1, 3, 6, 9, 24])
@pytest.mark.parametrize("sram_bpc", [4, 32])
@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
@pytest.mark.parametrize("separate", [False, True])
def test_reported_stall_is_the_stall_the_search_minimised(monkeypatch, kib, sram_bpc, dataflow, separate):
    """The row's stall (DRAM and on-chip bandwidth, recomputed from per-level bytes) equals the stall
    of the chosen mapping inside the search, so the search's minimum is the reported minimum."""
    seen = []
    real = mapping_cost._mapped_array_cost

    def spy(*args, **kwargs):
        seen.append(real(*args, **kwargs))
        return seen[-1]

    monkeypatch.setattr(mapping_cost, "_mapped_array_cost", spy)
    mapping_cost._RESULTS.clear()
    simulate(gemm(), shared_sram_arch(kib, sram_bpc, dataflow=dataflow, separate=separate))
    assert seen
    for cost in seen:
        assert cost.stall_cycles == pytest.approx(cost.choice.stats["stall_cycles"], rel=1e-9, abs=1e-6)
