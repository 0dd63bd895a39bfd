"""System model: SimPy cores sharing one DRAM, scheduling policies, MoE placement, bad input.

Reference numbers are derived by hand from the SCALE-Sim cycle formulas (docs/references.md#scale-sim-cycles)
on the edge NPU: a 32x32 output-stationary array at 800 MHz with 16 bytes/cycle of DRAM.
"""

from __future__ import annotations

import json
import math

import pytest
import yaml

from simulator import load_arch, load_trace, simulate
from simulator.errors import SparsimInputError
from simulator.system import load_system, replicate, shard_op, simulate_system, system_from_dict
from simulator.trace import trace_from_dict

from conftest import ARCH_DIR, ROOT, TRACE_DIR

EDGE = ARCH_DIR / "edge_npu_32x32_os.yaml"
CLOCK_HZ = 800e6


def edge(**overrides):
    return load_arch(EDGE, overrides or None)


def trace(*ops, name="t"):
    return trace_from_dict({"schema_version": 1, "name": name, "ops": list(ops)})


def gemm(name, M, N, K, **kw):
    return {"name": name, "kind": "gemm", "dims": {"M": M, "N": N, "K": K}, **kw}


def stream(name, elements, **kw):
    return {"name": name, "kind": "elementwise", "dims": {"elements": elements, "inputs": 2}, **kw}


# ----------------------------------------------------------------------------- consistency

@pytest.mark.parametrize("arch_file,workload", [("edge_npu_32x32_os.yaml", "resnet18.yaml"),
                                                ("tpu_v1_256x256_ws.yaml", "resnet18.yaml"),
                                                ("edge_npu_32x32_os.yaml", "mobilenet_v2.yaml")])
@pytest.mark.parametrize("policy", ["layer_by_layer", "graph", "pipeline", "expert_parallel"])
def test_one_core_uncontended_equals_the_analytic_model(arch_file, workload, policy):
    arch = load_arch(ARCH_DIR / arch_file)
    tr = load_trace(TRACE_DIR / workload)
    analytic = simulate(tr, arch).totals
    result = simulate_system(tr, replicate(arch, 1, policy=policy))
    assert result.makespan_s == pytest.approx(analytic["latency_s"], rel=1e-9)
    assert result.energy_pj == pytest.approx(analytic["energy_pj"], rel=1e-9)


@pytest.mark.parametrize("arch_path", sorted(ARCH_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_one_core_equals_the_analytic_model_on_every_shipped_arch(arch_path):
    # Every engine kind (systolic, sparse arrays, DSP chains, GPUs): same latency to 1e-9.
    arch = load_arch(arch_path)
    tr = load_trace(TRACE_DIR / "resnet18.yaml")
    assert simulate_system(tr, replicate(arch, 1)).makespan_s == pytest.approx(
        simulate(tr, arch).totals["latency_s"], rel=1e-9)


def test_one_core_with_fusion_equals_the_fused_analytic_schedule():
    from simulator.graph import analyze
    arch = edge()
    tr = load_trace(TRACE_DIR / "resnet18.yaml")
    fused = analyze(tr, arch, fusion=True)
    result = simulate_system(tr, replicate(arch, 1), fusion=True)
    assert fused.saved_dram_bytes > 0
    assert result.extra["fusion_saved_dram_bytes"] == fused.saved_dram_bytes
    assert result.makespan_s == pytest.approx(fused.serial_latency_s, rel=1e-9)
    assert result.makespan_s < simulate(tr, arch).totals["latency_s"]


def test_compute_bound_gemm_scales_as_one_over_cores():
    # 1024^3 GEMM with a fast DRAM (1024 B/cycle): OS compute = 32*32 folds x (32+32+1024-2)
    # = 1,112,064 - 1 cycles; split over 4 cores by N each runs 32*8 folds -> 278,016 - 1.
    arch = edge(**{"memory.lpddr4.bandwidth_bytes_per_cycle": 1024})
    tr = trace(gemm("g", 1024, 1024, 1024))
    one = simulate_system(tr, replicate(arch, 1)).makespan_s
    four = simulate_system(tr, replicate(arch, 4)).makespan_s
    assert one == pytest.approx(1_112_063 / CLOCK_HZ, rel=0.05)
    assert four == pytest.approx(278_015 / CLOCK_HZ, rel=0.05)
    assert four / one == pytest.approx(0.25, rel=0.03)


def test_bandwidth_bound_op_does_not_scale_with_cores():
    # 2^20-element add of two tensors: 3 MiB through 16 B/cycle = 196,608 cycles, compute only
    # 2^20/32 = 32,768 cycles. Four cores share the same DRAM: still ~196,608 cycles.
    tr = trace(stream("add", 2 ** 20))
    one = simulate_system(tr, replicate(edge(), 1)).makespan_s
    four = simulate_system(tr, replicate(edge(), 4)).makespan_s
    assert one == pytest.approx(196_608 / CLOCK_HZ, rel=1e-9)
    assert four / one == pytest.approx(1.0, abs=0.03)


def test_two_cores_streaming_on_one_dram_each_take_twice_as_long():
    # Two independent memory-bound ops on two cores (graph policy runs them concurrently).
    alone_s = 196_608 / CLOCK_HZ
    tr = trace(stream("a", 2 ** 20, depends_on=[]), stream("b", 2 ** 20, depends_on=[]))
    result = simulate_system(tr, replicate(edge(), 2, policy="graph"))
    # The DRAM's bandwidth is split evenly between the two streams for their whole length.
    for row in result.ops:
        assert row["latency_s"] == pytest.approx(2 * alone_s, rel=1e-6)
    assert result.dram_utilization == pytest.approx(1.0, rel=1e-6)
    # Doubling the shared DRAM (two channels, twice the bandwidth) removes the contention.
    wide = replicate(edge(), 2, policy="graph", dram_channels=2, dram_bytes_per_s=2 * 16 * CLOCK_HZ)
    for row in simulate_system(tr, wide).ops:
        assert row["latency_s"] == pytest.approx(alone_s, rel=1e-6)


def test_contention_stretches_transfers_but_not_compute_bound_work():
    # A compute-bound op next to a streaming op on another core barely slows down.
    arch = edge(**{"memory.lpddr4.bandwidth_bytes_per_cycle": 1024})
    tr = trace(gemm("g", 512, 512, 512, depends_on=[]), stream("s", 2 ** 20, depends_on=[]))
    alone = simulate(trace(gemm("g", 512, 512, 512)), arch).totals["latency_s"]
    result = simulate_system(tr, replicate(arch, 2, policy="graph"))
    g = next(r for r in result.ops if r["op"] == "g")
    assert g["latency_s"] == pytest.approx(alone, rel=0.05)


def test_global_buffer_keeps_an_inter_op_tensor_off_the_shared_dram():
    # a adds two 64 Ki-element int8 tensors (reads 128 KiB, writes 64 KiB), b reads a's output
    # and writes 64 KiB; split over two cores sharing one 16 B/cycle DRAM. Without a global
    # buffer: (192 + 128) KiB / 16 B = 20,480 cycles. With a 64 KiB buffer at 1024 B/cycle
    # and two DMA engines per core, a's output goes to the buffer: a moves 128 KiB of DRAM
    # (8,192 cycles) and b 64 KiB (4,096); the buffer traffic (64 KiB each way, 64 cycles per
    # op) overlaps. With one DMA engine each of the 8 tile groups adds its buffer transfer
    # (4 KiB per core, both cores at once: 8 KiB / 1024 B = 8 cycles): +2 x 8 x 8 cycles.
    tr = trace(stream("a", 2 ** 16), {"name": "b", "kind": "elementwise", "dims": {"elements": 2 ** 16, "inputs": 1}})
    plain = simulate_system(tr, replicate(edge(), 2))
    assert plain.makespan_s == pytest.approx(20_480 / CLOCK_HZ, rel=1e-9)
    gb = dict(global_buffer_kib=64, global_buffer_bytes_per_s=1024 * CLOCK_HZ)
    two = simulate_system(tr, replicate(edge(), 2, dma_engines=2, **gb))
    assert two.extra["global_buffer_edges"] == 1
    assert two.extra["global_buffer_bytes"] == 2 * 2 ** 16                 # written once, read once
    assert two.dram_bytes == plain.dram_bytes - 2 * 2 ** 16
    assert [r["latency_s"] * CLOCK_HZ for r in two.ops] == [pytest.approx(8_192), pytest.approx(4_096)]
    one = simulate_system(tr, replicate(edge(), 2, dma_engines=1, **gb))
    assert one.makespan_s == pytest.approx((12_288 + 2 * 8 * 8) / CLOCK_HZ, rel=1e-9)
    # DRAM energy saved (6 pJ/bit LPDDR4) outweighs the buffer's SRAM accesses
    assert two.dynamic_energy_pj < plain.dynamic_energy_pj
    # a buffer too small for the 64 KiB tensor changes nothing
    small = simulate_system(tr, replicate(edge(), 2, global_buffer_kib=32, global_buffer_bytes_per_s=1024 * CLOCK_HZ))
    assert small.extra["global_buffer_edges"] == 0 and small.makespan_s == pytest.approx(plain.makespan_s, rel=1e-12)


def test_global_buffer_capacity_counts_every_live_tensor_of_an_op():
    # x and y both feed z (64 KiB each) and z's 64 KiB output feeds w: while z runs its two kept
    # inputs and its kept output would be live together. A 128 KiB buffer keeps x and y for z
    # but then has no room for z's output.
    from simulator.graph import build_graph, global_buffer_plan
    tr = trace(stream("x", 2 ** 16, depends_on=[]), stream("y", 2 ** 16, depends_on=[]),
               stream("z", 2 ** 16, depends_on=["x", "y"]), stream("w", 2 ** 16))
    plan = global_buffer_plan(build_graph(tr), 128 * 1024, lambda op: op.operand_elements()["outputs"])
    assert plan == {("x", "z"): 2 ** 16, ("y", "z"): 2 ** 16}
    plan = global_buffer_plan(build_graph(tr), 192 * 1024, lambda op: op.operand_elements()["outputs"])
    assert set(plan) == {("x", "z"), ("y", "z"), ("z", "w")}


# ----------------------------------------------------------------------------- MoE

def moe_trace(tokens):
    return trace({"name": "experts", "kind": "moe_gemm", "dims": {"tokens_per_expert": tokens, "N": 256, "K": 256}})


def expert_cycles(tokens):
    # OS, one expert: ceil(t/32) * ceil(256/32) folds x (32 + 32 + 256 - 2) cycles, minus 1
    return math.ceil(tokens / 32) * 8 * 318 - 1


def test_skewed_routing_lengthens_the_moe_layer_by_the_max_tokens_per_core():
    ideal = edge(**{"memory.lpddr4.ideal": True})
    system = replicate(ideal, 4, policy="expert_parallel")
    uniform = simulate_system(moe_trace([64, 64, 64, 64]), system).makespan_s
    skewed = simulate_system(moe_trace([160, 32, 32, 32]), system).makespan_s   # same 256 tokens
    assert uniform == pytest.approx(expert_cycles(64) / CLOCK_HZ, rel=1e-9)     # 5,087 cycles
    assert skewed == pytest.approx(expert_cycles(160) / CLOCK_HZ, rel=1e-9)     # 12,719 cycles
    assert skewed / uniform == pytest.approx(12_719 / 5_087, rel=1e-9)          # ~2.5x: 160 vs 64 tokens


def test_placement_puts_experts_on_named_cores_and_imbalance_shows():
    ideal = edge(**{"memory.lpddr4.ideal": True})
    # Eight experts of 32 tokens; experts 0-3 all on core0, 4-7 spread over core1..core3.
    placement = {0: "core0", 1: "core0", 2: "core0", 3: "core0", 4: "core1", 5: "core2", 6: "core3", 7: "core1"}
    system = replicate(ideal, 4, policy="expert_parallel", placement=placement)
    result = simulate_system(moe_trace([32] * 8), system)
    assert result.makespan_s == pytest.approx(4 * expert_cycles(32) / CLOCK_HZ, rel=1e-9)
    busy = result.core_busy_s
    assert busy["core0"] == pytest.approx(4 * expert_cycles(32) / CLOCK_HZ, rel=1e-9)
    assert busy["core1"] == pytest.approx(2 * expert_cycles(32) / CLOCK_HZ, rel=1e-9)
    assert result.ops[0]["imbalance"] == pytest.approx(4 / 2, rel=1e-9)   # max 4 experts vs mean 2


# ----------------------------------------------------------------------------- other policies

def test_layer_pipelining_overlaps_microbatches():
    # Four identical layers (one op repeated 4 times) on four cores, ideal DRAM: each stage
    # takes t; m micro-batches finish after (m + 3) t instead of 4 m t on one core.
    ideal = edge(**{"memory.lpddr4.ideal": True})
    tr = trace(gemm("layer", 64, 256, 256, repeat=4, layer="block"))
    t = (2 * 8 * (32 + 32 + 256 - 2) - 1) / CLOCK_HZ
    result = simulate_system(tr, replicate(ideal, 4, policy="pipeline", microbatches=8))
    assert result.extra["stages"] == 4
    assert result.makespan_s == pytest.approx((8 + 3) * t, rel=1e-9)
    assert result.extra["steady_interval_s"] == pytest.approx(t, rel=1e-9)


def test_graph_policy_runs_parallel_branches_concurrently():
    ideal = edge(**{"memory.lpddr4.ideal": True})
    tr = trace(stream("a", 3200), stream("b", 6400, depends_on=["a"]), stream("c", 3200, depends_on=["a"]),
               stream("d", 3200, depends_on=["b", "c"]))
    # vector lanes = 32: a, c, d take 100 cycles, b 200; critical path a -> b -> d = 400 cycles
    result = simulate_system(tr, replicate(ideal, 2, policy="graph"))
    assert result.makespan_s == pytest.approx(400 / CLOCK_HZ, rel=1e-9)
    one = simulate_system(tr, replicate(ideal, 1, policy="graph"))
    assert one.makespan_s == pytest.approx(500 / CLOCK_HZ, rel=1e-9)


def test_shards_cover_the_op_exactly():
    op = trace(gemm("g", 7, 10, 64)).ops[0]
    shards = shard_op(op, 4)
    assert [s.dims.N for s in shards] == [3, 3, 2, 2]
    assert sum(s.dense_macs for s in shards) == op.dense_macs
    att = trace({"name": "qk", "kind": "attention_qk",
                 "dims": {"heads": 32, "kv_heads": 8, "q_len": 1, "kv_len": 100, "head_dim": 128}}).ops[0]
    parts = shard_op(att, 4)
    assert [(p.dims.heads, p.dims.kv_heads) for p in parts] == [(8, 2)] * 4
    assert sum(p.operand_elements()["weights"] for p in parts) == att.operand_elements()["weights"]


def test_conv_row_shards_cover_the_output_exactly():
    from simulator.system import shard_slots
    conv = trace({"name": "c", "kind": "conv2d",
                  "dims": {"C": 64, "H": 56, "W": 56, "K": 64, "R": 3, "S": 3, "pad": 1}}).ops[0]
    rows = [s for s in shard_slots(conv, 4, dim="rows") if s is not None]
    # 56 output rows -> 14 each; 14 rows of a 3x3 pad-1 conv need 14 + 2 - 2 = 14 unpadded input rows
    assert [s.dims.H for s in rows] == [14] * 4
    assert sum(s.dense_macs for s in rows) == conv.dense_macs
    stem = trace({"name": "c", "kind": "conv2d",
                  "dims": {"C": 3, "H": 224, "W": 224, "K": 64, "R": 7, "S": 7, "stride": 2, "pad": 3}}).ops[0]
    parts = [s for s in shard_slots(stem, 3, dim="rows") if s is not None]   # 112 rows -> 38, 37, 37
    assert sum(s.dense_macs for s in parts) == stem.dense_macs


def test_layer_by_layer_cuts_activation_heavy_convs_by_rows():
    # A 56x56x64 -> 64 conv on four cores: cutting the 64 filters makes every core read the
    # whole input; cutting the output rows shares the input and repeats only the small
    # weights, so it moves fewer DRAM bytes and is chosen.
    from simulator.system import make_job, shard_slots
    from simulator.system.barrier import jobs_for_op
    conv = trace({"name": "c", "kind": "conv2d",
                  "dims": {"C": 64, "H": 56, "W": 56, "K": 64, "R": 3, "S": 3, "pad": 1}})
    system = replicate(edge(), 4)
    jobs = jobs_for_op(system, conv.ops[0])
    assert len(jobs) == 4
    k_split = [make_job(i, system.cores[i], s) for i, s in enumerate(shard_slots(conv.ops[0], 4, dim="K"))]
    assert sum(j.dram_bytes for j in jobs) < sum(j.dram_bytes for j in k_split)
    assert simulate_system(conv, system).makespan_s < simulate_system(conv, replicate(edge(), 1)).makespan_s


# ----------------------------------------------------------------------------- specs and bad input

def test_shipped_system_specs_load_and_run():
    tr = load_trace(TRACE_DIR / "resnet18.yaml")
    for path in sorted((ARCH_DIR / "systems").glob("*.yaml")):
        system = load_system(path)
        result = simulate_system(tr, system)
        assert result.makespan_s > 0, path
        assert set(result.core_busy_s) == {c.name for c in system.cores}


def test_core_count_zero_is_one_clear_error(tmp_path):
    with pytest.raises(SparsimInputError, match="core count must be at least 1"):
        replicate(edge(), 0)
    spec = {"cores": [{"arch": str(EDGE), "count": 0}]}
    with pytest.raises(SparsimInputError) as info:
        system_from_dict(spec, path="sys.yaml")
    assert info.value.field == "cores[0].count" and "at least 1" in info.value.message


def test_placement_naming_a_missing_core_is_one_clear_error():
    spec = {"cores": [{"arch": str(EDGE), "count": 2, "name": "npu"}], "policy": "expert_parallel",
            "placement": {0: "npu0", 1: "npu7"}}
    with pytest.raises(SparsimInputError) as info:
        system_from_dict(spec, path="sys.yaml")
    assert info.value.field == "placement.1" and "npu7" in info.value.message
    assert "npu0" in info.value.hint


def test_placement_of_a_missing_expert_is_an_error():
    system = replicate(edge(), 2, policy="expert_parallel", placement={9: "core1"})
    with pytest.raises(SparsimInputError, match="expert 9"):
        simulate_system(moe_trace([4, 4]), system)


def test_unknown_system_key_gets_a_hint(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"cores": [{"arch": str(EDGE)}], "dram": {"chanels": 2}}))
    with pytest.raises(SparsimInputError) as info:
        load_system(path)
    assert info.value.field == "dram.chanels" and "channels" in info.value.hint


def test_global_buffer_in_a_system_spec_and_its_errors(tmp_path):
    spec = {"cores": [{"arch": str(EDGE), "count": 2}], "global_buffer": {"capacity_kib": 256, "bandwidth_gb_per_s": 100}}
    system = system_from_dict(spec, path="sys.yaml")
    assert system.global_buffer_bytes == 256 * 1024 and system.global_buffer_bytes_per_s == 100e9
    bad = {**spec, "global_buffer": {"capacity_kib": 256}}
    with pytest.raises(SparsimInputError) as info:
        system_from_dict(bad, path="sys.yaml")
    assert info.value.field == "global_buffer.bandwidth_gb_per_s"
    bad = {**spec, "global_buffer": {"capacity_kib": 0, "bandwidth_gb_per_s": 100}}
    with pytest.raises(SparsimInputError) as info:
        system_from_dict(bad, path="sys.yaml")
    assert info.value.field == "global_buffer.capacity_kib"


def test_missing_arch_file_in_system_spec(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"cores": [{"arch": "nope.yaml"}]}))
    with pytest.raises(SparsimInputError, match="not found"):
        load_system(path)


# ----------------------------------------------------------------------------- CLI

def _cli(*args):
    # the `sparsim` console script, run end to end in a fresh interpreter (the one smoke test below)
    import subprocess
    import sys
    code = "import sys; from simulator.cli import main; sys.argv[0] = 'sparsim'; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_cli_system_json_and_gantt(tmp_path):
    gantt = tmp_path / "g.png"
    ok = _cli("system", "--system", str(ARCH_DIR / "systems" / "quad_edge_npu.yaml"), "-w",
              str(TRACE_DIR / "resnet18.yaml"), "--json", "--gantt", str(gantt))
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["cores"] == 4 and gantt.exists()


def test_cli_system_bad_inputs_exit_2(tmp_path, capsys):
    # in-process (same argument parsing and error handling as the console script, no interpreter start-up)
    from cli_helpers import run_cli
    cyc = tmp_path / "cycle.yaml"
    cyc.write_text(yaml.safe_dump({"schema_version": 1, "ops": [
        {"name": "a", "kind": "elementwise", "dims": {"elements": 8}, "depends_on": ["b"]},
        {"name": "b", "kind": "elementwise", "dims": {"elements": 8}}]}))
    code, _, err = run_cli(capsys, "system", "--arch", EDGE, "--cores", "2", "-w", cyc)
    assert code == 2 and "dependency cycle: a -> b -> a" in err

    sysfile = tmp_path / "s.yaml"
    sysfile.write_text(yaml.safe_dump({"cores": [{"arch": str(EDGE), "count": 2, "name": "npu"}],
                                       "policy": "expert_parallel", "placement": {0: "npu2"}}))
    code, _, err = run_cli(capsys, "system", "--system", sysfile, "-w", TRACE_DIR / "resnet18.yaml")
    assert code == 2 and "placement.0" in err and "npu2" in err

    code, _, err = run_cli(capsys, "system", "--arch", EDGE, "--cores", "0", "-w", TRACE_DIR / "resnet18.yaml")
    assert code == 2 and "core count must be at least 1" in err


def test_heterogeneous_cores_share_an_op_by_speed():
    # A 256x256 and a 128x128 WS core (ideal DRAM) share a 4096x8192x4096 GEMM by columns in
    # proportion to their speeds (~4:1): both finish close together, well before the big
    # core alone. A 32x32 NPU next to the 256x256 core would only add a tile-quantised
    # straggler, so the op then stays whole on the big core.
    from simulator.system import Core, System
    big = load_arch(ARCH_DIR / "tpu_v1_256x256_ws.yaml", {"memory.ddr3.ideal": True})
    small = load_arch(ARCH_DIR / "tpu_v1_256x256_ws.yaml", {"memory.ddr3.ideal": True, "compute.rows": 128,
                                                            "compute.cols": 128})
    tr = trace(gemm("g", 4096, 8192, 4096))
    alone = simulate_system(tr, System("big", (Core("big", big),))).makespan_s
    pair = simulate_system(tr, System("pair", (Core("big", big), Core("small", small))))
    assert pair.core_busy_s["small"] == pytest.approx(pair.core_busy_s["big"], rel=0.1)
    assert pair.makespan_s < 0.75 * alone
    npu = edge(**{"memory.lpddr4.ideal": True})
    with_npu = simulate_system(tr, System("p", (Core("big", big), Core("npu", npu))))
    assert with_npu.makespan_s == pytest.approx(alone, rel=1e-12) and with_npu.core_busy_s["npu"] == 0.0
