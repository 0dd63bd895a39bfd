"""The metric names a simulation can produce are known without simulating (`simulator.totals.totals_keys`):
every numeric totals key of a real run is named, and what a run lacks is only an optional energy
component its engine declares (`Engine.energy_components`), which a sweep reads as 0 pJ."""

from pathlib import Path

import pytest

from analysis.sweep_resolved import Constraint, Objective
from analysis.sweep_expr import Expr
from analysis.sweep_spec import resolve_sweep
from analysis.sweep_worker import evaluate_batch
from simulator.engines import load_engine
from simulator.simulate import simulate
from simulator.spec import load_arch
from simulator.totals import totals_keys
from simulator.trace import load_trace
from test_sweep_spec import make_sweep

ROOT = Path(__file__).resolve().parents[1]
ARCHS = sorted((ROOT / "arch_configs").glob("*.yaml"))
TRACES = ("sparse_layers_70pct_unstructured", "llama2_7b_decode_kv2048_2to4")


def _numeric_keys(totals: dict) -> set[str]:
    return {k for k, v in totals.items() if isinstance(v, (int, float))}


@pytest.mark.parametrize("trace_name", TRACES)
@pytest.mark.parametrize("arch_path", ARCHS, ids=lambda p: p.stem)
def test_named_keys_match_a_real_simulation(arch_path, trace_name):
    arch = load_arch(arch_path)
    trace = load_trace(ROOT / "workloads" / "traces" / f"{trace_name}.yaml")
    named = set(totals_keys(trace, arch))
    produced = _numeric_keys(simulate(trace, arch).totals)
    assert produced <= named, sorted(produced - named)
    optional = {f"energy_{c}_pj" for c in load_engine(arch.compute.kind).energy_components(arch)}
    assert named - produced <= optional, sorted(named - produced - optional)


def test_board_keys_only_where_the_spec_gives_a_tdp():
    trace = load_trace(ROOT / "workloads" / "traces" / "llama2_7b_decode_kv2048_2to4.yaml")
    gpu = set(totals_keys(trace, load_arch(ROOT / "arch_configs" / "gpu_a100_sxm4_80gb.yaml")))
    npu = set(totals_keys(trace, load_arch(ROOT / "arch_configs" / "edge_npu_32x32_os.yaml")))
    assert {"board_tdp_w", "within_tdp", "energy_board_idle_pj", "energy_sm_active_pj"} <= gpu
    assert not {"board_tdp_w", "within_tdp", "energy_board_idle_pj"} & npu
    assert "energy_per_token_j" in gpu and "energy_per_token_j" in npu   # an LLM pass: tokens known


def test_sweep_objective_on_an_optional_component_is_zero_when_not_incurred(tmp_path):
    """A dense workload on a systolic array never selects indices: the objective resolves (the engine
    can produce it) and each point reads 0 pJ for it, not a missing value."""
    spec = make_sweep(tmp_path, objectives=["latency", "energy_index_select_pj"],
                      constraints=["energy_index_select_pj <= 1"])
    sweep = resolve_sweep(spec, check_scheduler=False)
    assert [o.key for o in sweep.objectives] == ["latency_s", "energy_index_select_pj"]
    assert sweep.zero_if_absent() == ["energy_index_select_pj"]
    ctx = {"id": "t", "base_raw": sweep.base_raw, "zero_if_absent": sweep.zero_if_absent(),
           "workloads": [{"name": w.name, "weight": w.weight, "data": w.data} for w in sweep.workloads]}
    [rec] = evaluate_batch(ctx, [("k", {})])
    assert rec["status"] == "ok" and rec["metrics"]["energy_index_select_pj"] == 0.0


def test_zero_if_absent_names_only_energy_components():
    from analysis.sweep_resolved import ResolvedSweep
    sweep = ResolvedSweep(
        name="s", spec_path=None, base_arch_path="a", base_raw={}, base_digest="d", workloads=[], params=[],
        objectives=[Objective("energy", "energy_pj", "min"), Objective("e", "energy_sram_read_pj", "min")],
        constraints=[Constraint("energy_mac_pj <= 1", Expr("energy_mac_pj <= 1"), ("energy_mac_pj",)),
                     Constraint("power_w <= 1", Expr("power_w <= 1"), ("power_w",))],
        strategy="grid", n_points=None, population=None, seed=0, executor="serial", jobs=None, color_by=None)
    assert sweep.zero_if_absent() == ["energy_sram_read_pj", "energy_mac_pj"]


def test_a_base_arch_that_cannot_run_a_workload_fails_before_anything_is_written(tmp_path):
    """Metric names no longer need a simulation, but a sweep still times the base arch on every
    workload before it writes anything, and that run names a workload the base arch cannot run."""
    import yaml
    from analysis.sweep import run_sweep
    from simulator.errors import SparsimInputError
    (tmp_path / "big.yaml").write_text(yaml.safe_dump({"schema_version": 1, "name": "big", "ops": [
        {"name": "g", "kind": "gemm", "dims": {"M": 1000000, "N": 65536, "K": 65536}}]}))   # 126 GiB of operands
    spec = make_sweep(tmp_path, base_arch=str(ROOT / "arch_configs" / "gpu_v100s.yaml"),
                      workloads=[{"path": "big.yaml"}], parameters={"compute.sm_count": [40, 80]},
                      constraints=[])
    out = tmp_path / "out"
    with pytest.raises(SparsimInputError) as info:
        run_sweep(spec, out)
    assert info.value.field == "workloads[0]" and "the base arch cannot run this workload" in info.value.message
    assert "HBM" in info.value.message
    assert not out.exists()
