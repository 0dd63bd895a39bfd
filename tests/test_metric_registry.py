"""The metric registry, typed totals and the one atomic file write."""

import os
import stat

import pytest

from analysis import metrics as M
from analysis.sweep import combine_totals
from analysis.sweep_spec import CORE_METRICS, DERIVED_METRICS, MAXIMISED_KEYS, OBJECTIVE_ALIASES
from simulator.outputs import atomic_path, write_atomic


def test_aliases_name_registered_metrics_with_their_direction():
    for alias, (key, way) in OBJECTIVE_ALIASES.items():
        assert key in M.METRICS and M.METRICS[key].direction == way == M.direction(alias)
    assert MAXIMISED_KEYS == {"throughput_macs_per_s", "macs_per_j", "utilization", "inferences_per_s"}
    assert M.direction("energy_sram_read_pj") == "min"   # unregistered keys are minimised


def test_engine_totals_are_the_registered_engine_metrics(tmp_path):
    from simulator.simulate import simulate
    from simulator.spec import load_arch
    from simulator.trace import trace_from_dict
    arch = load_arch("edge_npu_32x32_os")
    trace = trace_from_dict({"schema_version": 1, "ops": [{"name": "g", "kind": "gemm",
                                                            "dims": {"M": 64, "N": 32, "K": 48}}]})
    result = simulate(trace, arch)
    assert set(CORE_METRICS) <= set(result.totals)
    assert not set(DERIVED_METRICS) & set(result.totals)
    assert "_peak" not in result.rows[0]
    t = result.totals
    assert t.energy_pj == t["energy_pj"] and t.cycles == t["cycles"] and isinstance(t, dict)
    # typed attributes agree with the closed forms they summarise
    assert t.edp_js == pytest.approx(t.energy_pj * 1e-12 * t.latency_s)
    assert t.macs == pytest.approx(64 * 32 * 48)


def test_combine_follows_the_registry_rules():
    a = {"cycles": 10.0, "energy_pj": 4e12, "latency_s": 2.0, "area_mm2": 3.0, "utilization": 0.5,
         "ops": 2, "dense_macs": 100.0, "edp_js": 8.0, "power_w": 2.0}
    b = {**a, "cycles": 30.0, "latency_s": 6.0, "utilization": 1.0, "ops": 3}
    m = combine_totals([("a", 1.0, a), ("b", 3.0, b)])
    assert m["cycles"] == 10 + 3 * 30                      # sum: weighted
    assert m["area_mm2"] == 3.0                            # design: once
    assert m["utilization"] == pytest.approx((0.5 + 3 * 1.0) / 4)   # mean: weighted mean
    assert m["ops"] == 5                                   # count: unweighted
    assert m["edp_js"] == pytest.approx(m["energy_pj"] * 1e-12 * m["latency_s"])   # ratio: recomputed
    assert m["a/cycles"] == 10.0 and m["b/utilization"] == 1.0


def test_labels_and_scales_come_from_the_registry():
    assert M.label("energy_pj") == "energy (mJ)" and M.scale("energy_pj") == 1e-9
    assert M.label("stall_cycles") == "stall cycles" and M.label("energy_mac_pj") == "energy mac pj"
    assert not M.displayed("macs") and M.displayed("cycles")


def test_atomic_write_gives_plain_permissions_and_leaves_nothing_on_failure(tmp_path):
    path = write_atomic(tmp_path / "sub" / "a.txt", "hello")
    assert path.read_text() == "hello"
    mask = os.umask(0o022)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert path.read_text() == "hello"
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.txt"]


def test_one_reader_of_nm_text():
    from simulator.errors import SparsimInputError
    from simulator.sparsity import parse_pattern, split_nm
    from workloads.extract.recipe import parse_weights
    assert split_nm("2:4") == (2, 4) and split_nm(" 1 : 8 ") == (1, 8)
    assert split_nm("2:4:8") is None and split_nm("two:four") is None
    assert parse_pattern("2:4", field="f") == (2, 4)
    w = parse_weights("2:4")
    assert (w.kind, w.n, w.m) == ("nm", 2, 4) and parse_weights("4:4") is None
    with pytest.raises(SparsimInputError, match="needs 1 <= N <= M"):
        parse_weights("5:4")
