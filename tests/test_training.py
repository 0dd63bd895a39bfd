"""Training traces, optimizer bytes, activation/ZeRO memory formulas, data-parallel steps, CLI errors."""

import math

import pytest
from hypothesis import given, settings, strategies as st

from simulator.spec import load_arch
from simulator.trace import Trace, trace_from_dict
from simulator.training.backward import backward_ops
from simulator.training.build import optimizer_bytes, training_trace
from simulator.training.collectives import allreduce_s, overlap_sync
from simulator.training.footprint import TransformerShape, activation_bytes, model_state_bytes
from simulator.training.recipe import TrainingRecipe
from tests.cli_helpers import run_cli

A100 = "arch_configs/gpu_a100_sxm4_80gb.yaml"


def _trace(*ops) -> Trace:
    return trace_from_dict({"schema_version": 2, "name": "t", "ops": list(ops)})


def _embed(elements=64):
    return {"name": "embed", "kind": "elementwise", "dims": {"elements": elements, "flops_per_element": 0}}


def _bwd_macs(tt, forward_name):
    return sum(op.dense_macs * op.repeat for op in tt.trace.ops
               if op.phase == "backward" and op.name.startswith(forward_name + ".") and ".recompute" not in op.name)


gemm_dims = st.fixed_dictionaries({"M": st.integers(1, 64), "N": st.integers(1, 64), "K": st.integers(1, 64),
                                   "batch": st.integers(1, 3)})
conv_dims = st.fixed_dictionaries({"N": st.integers(1, 2), "C": st.sampled_from([2, 4, 8]), "H": st.integers(3, 9),
                                   "W": st.integers(3, 9), "K": st.sampled_from([2, 4, 8]), "R": st.integers(1, 3),
                                   "S": st.integers(1, 3), "stride": st.integers(1, 2), "groups": st.sampled_from([1, 2])})
moe_dims = st.fixed_dictionaries({"tokens_per_expert": st.lists(st.integers(0, 20), min_size=1, max_size=6),
                                  "N": st.integers(1, 32), "K": st.integers(1, 32)})
attn_dims = st.fixed_dictionaries({"batch": st.integers(1, 2), "heads": st.sampled_from([2, 4]),
                                   "kv_heads": st.sampled_from([1, 2]), "q_len": st.integers(1, 32),
                                   "kv_len": st.integers(1, 32), "head_dim": st.integers(1, 16)})


@settings(max_examples=60, deadline=None)
@given(kind_dims=st.one_of(st.tuples(st.just("gemm"), gemm_dims), st.tuples(st.just("conv2d"), conv_dims),
                           st.tuples(st.just("moe_gemm"), moe_dims), st.tuples(st.just("attention_qk"), attn_dims),
                           st.tuples(st.just("attention_pv"), attn_dims)),
       repeat=st.integers(1, 4), micro=st.integers(1, 3), weights=st.sampled_from([None, "2:4", "1:8"]))
def test_backward_macs_are_twice_forward_for_every_gemm(kind_dims, repeat, micro, weights):
    kind, dims = kind_dims
    if kind == "moe_gemm" and not any(dims["tokens_per_expert"]):
        dims = {**dims, "tokens_per_expert": [1] + dims["tokens_per_expert"][1:]}
    op = {"name": "op", "kind": kind, "dims": dims, "repeat": repeat}
    if weights and kind in ("gemm", "moe_gemm"):
        n, m = map(int, weights.split(":"))
        op["sparsity"] = {"weights": {"kind": "nm", "n": n, "m": m}}
    fwd = _trace(op) if repeat % 2 else _trace(_embed(), op)          # first op of the trace or not
    tt = training_trace(fwd, TrainingRecipe(micro_batches=micro))
    forward_macs = fwd.ops[-1].dense_macs * repeat * micro
    assert _bwd_macs(tt, "op") == 2 * forward_macs


def test_backward_gemm_shapes_by_hand():
    fwd = _trace(_embed(), {"name": "fc", "kind": "gemm", "dims": {"M": 8, "N": 4, "K": 16}})
    ops = {op.name: op for op in training_trace(fwd).trace.ops}
    d, w = ops["fc.bwd_data"].dims, ops["fc.bwd_weight"].dims
    assert (d.M, d.N, d.K) == (8, 16, 4)          # dX (8x16) = dY (8x4) @ W^T (4x16)
    assert (w.M, w.N, w.K) == (16, 4, 8)          # dW (16x4) = X^T (16x8) @ dY (8x4)
    assert [ops[n].phase for n in ("fc", "fc.bwd_data", "optimizer.adamw.fp32_state")] == [
        "forward", "backward", "optimizer"]


def test_conv_backward_is_transposed_conv_and_weight_gradient_and_first_input_needs_no_gradient():
    conv = {"name": "conv", "kind": "conv2d", "dims": {"N": 1, "C": 3, "H": 8, "W": 8, "K": 4, "R": 3, "S": 3}}
    fwd = _trace(conv, {"name": "conv2", "kind": "conv2d", "dims": {"N": 1, "C": 4, "H": 6, "W": 6, "K": 2, "R": 3, "S": 3}})
    assert "conv.bwd_data" in [op.name for op in training_trace(fwd).trace.ops]
    tt = training_trace(fwd, input_needs_grad=False)
    names = [op.name for op in tt.trace.ops]
    assert "conv.bwd_data" not in names and "conv.bwd_weight" in names   # the image needs no gradient
    ops = {op.name: op for op in tt.trace.ops}
    d = ops["conv2.bwd_data"].dims                  # (NPQ x K) @ (K x CRS)
    assert (d.M, d.N, d.K) == (16, 36, 2)
    w = ops["conv2.bwd_weight"].dims                # (CRS x NPQ) @ (NPQ x K)
    assert (w.M, w.N, w.K) == (36, 2, 16)


def test_moe_gradients_reach_only_routed_experts_and_the_router_has_a_backward():
    fwd = _trace(_embed(), {"name": "router", "kind": "gemm", "dims": {"M": 8, "N": 4, "K": 16}},
                 {"name": "experts", "kind": "moe_gemm", "dims": {"tokens_per_expert": [5, 0, 3, 0], "N": 8, "K": 16}})
    ops = {op.name: op for op in training_trace(fwd).trace.ops}
    assert "router.bwd_weight" in ops and "router.bwd_data" in ops
    grads = [op for name, op in ops.items() if name.startswith("experts.bwd_weight")]
    assert sum(op.dims.batch for op in grads) == 2              # two routed experts, two dW GEMMs
    assert sorted(op.dims.K for op in grads) == [3, 5]          # reduced over each expert's tokens


def test_transposable_masks_keep_nm_in_backward_data_and_others_become_unstructured():
    op = trace_from_dict({"schema_version": 1, "ops": [{"name": "fc", "kind": "gemm", "dims": {"M": 8, "N": 8, "K": 8},
                                                        "sparsity": {"weights": {"kind": "nm", "n": 2, "m": 4}}}]}).ops[0]
    plain, notes = backward_ops(op, TrainingRecipe())
    bwd_data = next(o for o in plain if o["name"] == "fc.bwd_data")
    assert bwd_data["sparsity"]["weights"].kind == "unstructured" and "non-transposable" in notes["fc.bwd_data"]
    trans, notes = backward_ops(op, TrainingRecipe(transposable=True))
    assert next(o for o in trans if o["name"] == "fc.bwd_data")["sparsity"]["weights"].label == "2:4"
    assert not notes


def test_optimizer_bytes_follow_the_adam_formula():
    P = 1000
    # mixed precision Adam: read master 4 + m 4 + v 4 + 16-bit grad 2; write master, m, v + 16-bit weights
    assert optimizer_bytes(P) == (14 * P, 14 * P)
    assert optimizer_bytes(P, master_weights=False, param_bits=32, grad_bits=32) == (16 * P, 12 * P)
    tt = training_trace(_trace(_embed(), {"name": "fc", "kind": "gemm", "dims": {"M": 4, "N": 25, "K": 40},
                                          "precision": {"activations": 16, "weights": 16, "outputs": 16}}))
    opt = [op for op in tt.trace.ops if op.phase == "optimizer"]
    reads = sum(op.dims.elements * op.dims.inputs * op.precision.activations / 8 for op in opt)
    writes = sum(op.dims.elements * op.precision.outputs / 8 for op in opt)
    assert (reads, writes) == optimizer_bytes(1000)
    from simulator.simulate import simulate
    rows = [r for r in simulate(tt.trace, load_arch(A100)).rows if r["phase"] == "optimizer"]
    assert sum(r["hbm_read_bytes"] for r in rows) == pytest.approx(14 * P)
    assert sum(r["hbm_write_bytes"] for r in rows) == pytest.approx(14 * P)


@pytest.mark.parametrize("s, b, h, a", [(2048, 1, 4096, 32), (1024, 4, 1024, 16), (512, 2, 768, 12)])
def test_activation_memory_matches_korthikanti_2022(s, b, h, a):
    """Korthikanti et al. 2022 (arXiv 2205.05198) Eq. 1-2 and Sec. 4.3, t = 1, GPT block."""
    shape = TransformerShape(seq=s, micro_batch=b, hidden=h, heads=a, layers=3, ffn=4 * h, kv_dim=h, vocab=1000)
    io = s * b * h + 4 * s * b * h * (1 + 1000 / h)
    assert activation_bytes(shape, "none")["blocks"] == 3 * s * b * h * (34 + 5 * a * s / h)
    assert activation_bytes(shape, "selective")["blocks"] == 3 * 34 * s * b * h
    assert activation_bytes(shape, "full")["blocks"] == 3 * 2 * s * b * h
    assert activation_bytes(shape, "none")["embedding and output layer"] == io


def test_zero_footprints_match_rajbhandari_2020_figure_1():
    """ZeRO paper Fig. 1: Psi = 7.5B, N_d = 64, K = 12: 120, 31.4, 16.6, 1.88 GB per device."""
    psi, nd = 7.5e9, 64
    totals = [sum(model_state_bytes(psi, stage=z, dp=nd).values()) / 1e9 for z in range(4)]
    assert totals == pytest.approx([120.0, 31.4, 16.6, 1.88], rel=3e-3)


def test_sharded_sparse_state_stores_only_kept_weights():
    dense = model_state_bytes(1e9, stage=3, dp=8)
    sparse = model_state_bytes(1e9, stage=3, dp=8, density=0.5, index_bytes=0.25, sparse_sharded=True)
    assert sparse["gradients"] == dense["gradients"] / 2
    assert sparse["weights"] == 0.5e9 * 2.25 / 8


def test_ring_and_tree_all_reduce_alpha_beta():
    assert allreduce_s(8e9, 8, 100e9, 1e-5, "ring") == pytest.approx(14 * 1e-5 + 2 * 7 / 8 * 0.08)
    assert allreduce_s(8e9, 8, 100e9, 1e-5, "tree") == pytest.approx(6 * (1e-5 + 0.08))
    assert allreduce_s(8e9, 1, 100e9, 1e-5) == 0.0
    end, busy = overlap_sync([(1.0, 10.0), (2.0, 10.0)], lambda n: n / 10.0, bucket_bytes=5.0)
    assert (end, busy) == (3.0, 2.0)                # the second bucket waits for its gradients, not the link


@pytest.fixture(scope="module")
def llama_small():
    from workloads.extract.training import hf_training_trace
    cfg = {"model_type": "llama", "hidden_size": 1024, "num_attention_heads": 8, "num_key_value_heads": 8,
           "intermediate_size": 2816, "num_hidden_layers": 4, "vocab_size": 8000, "torch_dtype": "bfloat16"}
    return cfg, hf_training_trace


def test_sparse_training_step_on_a100_is_bounded_by_its_sparse_gemms(llama_small):
    from simulator.training.step import simulate_training
    cfg, build = llama_small
    arch = load_arch(A100)
    for transposable in (False, True):
        tt, shape = build(cfg, seq_len=1024, batch=2, weights="2:4",
                          recipe=TrainingRecipe(transposable=transposable))
        r = simulate_training(tt, arch, shape=shape)
        rows = {row["op"]: row for row in r.rows}
        sparse = [n for n, op in ((op.name, op) for op in tt.trace.ops)
                  if op.sparsity.weights.kind == "nm" or n.endswith("bwd_data")]
        assert r.step_s >= sum(rows[n]["latency_s"] for n in sparse)
        bwd_data = [rows[n] for n in rows if n.endswith("self_attn.q_proj.bwd_data")]
        assert bwd_data[0]["macs"] == bwd_data[0]["dense_macs"] / (2 if transposable else 1)
        if not transposable:
            assert "not exploited" in bwd_data[0]["notes"]


def test_a_2to4_step_saves_at_most_half_of_its_sparse_gemms_time():
    """Amdahl: with 2:4 in forward and (transposable) backward-data, the step can save at most half of
    the dense time of exactly those GEMMs; a non-transposable mask leaves backward-data dense."""
    from simulator.training.step import simulate_training
    from workloads.extract.training import hf_training_trace
    arch = load_arch(A100)
    dense_tt, shape = hf_training_trace("llama2-7b", seq_len=2048, batch=1)
    dense = simulate_training(dense_tt, arch, shape=shape)
    rows = {r["op"]: r for r in dense.rows}
    sparse_ops = [op.name for op in dense_tt.trace.ops if op.phase == "forward" and op.kind == "gemm"
                  and op.name.startswith("layers.")]
    fwd = sum(rows[n]["latency_s"] for n in sparse_ops)
    bwd_data = sum(rows[n + ".bwd_data"]["latency_s"] for n in sparse_ops)
    for transposable in (False, True):
        tt, _ = hf_training_trace("llama2-7b", seq_len=2048, batch=1, weights="2:4",
                                  recipe=TrainingRecipe(transposable=transposable))
        sparse = simulate_training(tt, arch, shape=shape)
        saved_at_most = 0.5 * (fwd + (bwd_data if transposable else 0.0))
        assert sparse.step_s >= dense.step_s - saved_at_most - 1e-9
        assert sparse.split_s["backward"] == pytest.approx(dense.split_s["backward"]) or transposable
    assert dense_tt.params == 6_738_415_616          # the Hugging Face LlamaForCausalLM parameter count


def test_moe_training_step_counts_every_expert_and_routes_gradients():
    from workloads.extract.training import hf_training_trace
    tt, _ = hf_training_trace("mixtral-8x7b", seq_len=256, batch=1, routing="zipf", zipf_skew=1.0)
    assert round(tt.params / 1e9, 1) == 46.7         # Mixtral-8x7B's published parameter count
    ops = {op.name: op for op in tt.trace.ops}
    fwd, bwd = ops["layers.block_sparse_moe.experts.w1"], ops["layers.block_sparse_moe.experts.w1.bwd_data"]
    assert bwd.dims.tokens_per_expert == fwd.dims.tokens_per_expert
    assert "layers.block_sparse_moe.gate.bwd_weight" in ops and "layers.block_sparse_moe.router_topk.bwd" in ops


def test_recompute_modes_change_the_backward(llama_small):
    cfg, build = llama_small
    names = {mode: [op.name for op in build(cfg, seq_len=64, batch=1, recipe=TrainingRecipe(recompute=mode))[0]
                    .trace.ops] for mode in ("none", "selective", "full")}
    assert not any("recompute" in n for n in names["none"])
    assert any(n.endswith("recompute_qk") for n in names["selective"])
    assert not any(n.startswith("recompute.") for n in names["selective"])
    assert any(n.startswith("recompute.layers.") and n.endswith("mlp.down_proj") for n in names["full"])


def test_dynamic_sparse_training_adds_a_periodic_dense_gradient_and_mask_update(llama_small):
    cfg, build = llama_small
    tt, _ = build(cfg, seq_len=64, batch=1, weights="2:4", recipe=TrainingRecipe(update_every=100))
    ops = {op.name: op for op in tt.trace.ops}
    assert ops["mask_update"].skip_probability == pytest.approx(0.99)
    assert ops["layers.mlp.up_proj.bwd_weight_dense"].skip_probability == pytest.approx(0.99)
    assert ops["layers.mlp.up_proj.bwd_weight"].skip_probability == pytest.approx(0.01)
    assert ops["layers.mlp.up_proj.bwd_weight"].sparsity.outputs.effective_density == 0.5


def test_data_parallel_sync_overlaps_backward_and_over_capacity_is_one_line(llama_small):
    from simulator.training.step import DataParallel, simulate_training
    cfg, build = llama_small
    arch = load_arch(A100)
    tt, shape = build(cfg, seq_len=512, batch=1)
    one = simulate_training(tt, arch, shape=shape)
    fast = simulate_training(tt, arch, shape=shape, dp=DataParallel(ranks=8, link_bytes_per_s=1e15,
                                                                              latency_s=0.0))
    serial = simulate_training(tt, arch, shape=shape, dp=DataParallel(ranks=8, link_bytes_per_s=50e9, overlap=False))
    assert fast.split_s["communication (exposed)"] < 1e-3 * one.step_s
    assert serial.split_s["communication (exposed)"] == pytest.approx(serial.data_parallel["communication_s"])
    assert fast.tokens_per_s == pytest.approx(8 * fast.tokens_per_s_per_device)
    tiny = simulate_training(tt, arch, shape=shape, capacity_bytes=1e8)
    line = tiny.footprint.over_capacity_line()
    assert tiny.footprint.fits is False and "\n" not in line and "weights" in line


def test_old_traces_load_and_training_phases_need_schema_2():
    from simulator.errors import SparsimInputError
    op = {"name": "a", "kind": "gemm", "dims": {"M": 1, "N": 1, "K": 4}}
    assert trace_from_dict({"schema_version": 1, "ops": [op]}).schema_version == 1
    with pytest.raises(SparsimInputError, match="schema_version 2"):
        trace_from_dict({"schema_version": 1, "ops": [{**op, "phase": "backward"}]})


@pytest.mark.parametrize("args, field", [(["--micro-batches", "0"], "--micro-batches"),
                                         (["--recompute", "sometimes"], "--recompute")])
def test_impossible_recipes_are_one_line_exit_2(capsys, args, field):
    for cmd in (["train", "llama2-7b", "-a", A100], ["extract", "hf-config", "llama2-7b", "--phase", "train"]):
        code, out, err = run_cli(capsys, *cmd, *args)
        assert code == 2 and err.startswith(f"error: {field}") and err.count("\n") == 1


def test_train_cli_json_and_non_transposable_note(capsys):
    import json
    code, out, _ = run_cli(capsys, "train", "llama2-7b", "-a", A100, "--seq-len", "256", "--weights", "2:4", "--json")
    data = json.loads(out)
    assert code == 0 and data["tokens_per_step"] == 256 and 0 < data["mfu"] < 1
    assert any("non-transposable" in n for n in data["notes"])
    assert set(data["split_s"]) == {"forward", "backward", "optimizer", "communication (exposed)"}


@pytest.mark.parametrize("name", ["train_bert_base_seq128", "train_bert_base_seq128_2to4_transposable",
                                  "train_llama2_7b_seq4096", "train_llama2_7b_seq4096_2to4_transposable"])
def test_shipped_training_traces_load_and_match_their_extraction(name):
    from simulator.trace import load_trace, trace_to_dict
    from workloads.extract.training import hf_training_trace
    shipped = load_trace(f"workloads/traces/{name}.yaml")
    assert {op.phase for op in shipped.ops} == {"forward", "backward", "optimizer"} and shipped.schema_version == 2
    bert = name.startswith("train_bert")
    tt, _ = hf_training_trace("bert-base-uncased" if bert else "llama2-7b", seq_len=128 if bert else 4096,
                              batch=8 if bert else 1, weights="2:4" if "2to4" in name else None,
                              bits=16 if bert else None, lm_head=False if bert else None,
                              recipe=TrainingRecipe(transposable="transposable" in name), name=shipped.name[:-6])
    assert trace_to_dict(tt.trace)["ops"] == trace_to_dict(shipped)["ops"]


def test_zero3_moves_one_and_a_half_times_the_bytes_of_plain_data_parallelism(llama_small):
    """Rajbhandari et al. 2020 Sec. 7: ZeRO-1/2 communicate as much as DDP, ZeRO-3 1.5x."""
    from simulator.training.step import DataParallel, simulate_training
    cfg, build = llama_small
    tt, shape = build(cfg, seq_len=256, batch=1)
    arch = load_arch(A100)
    comm = {z: simulate_training(tt, arch, shape=shape, dp=DataParallel(ranks=4, zero=z, link_bytes_per_s=1e11,
                                                                         latency_s=0.0)).data_parallel["communication_s"]
            for z in (0, 1, 3)}
    assert comm[1] == pytest.approx(comm[0]) and comm[3] == pytest.approx(1.5 * comm[0])


def test_cli_pattern_sweep_and_train_extraction(capsys, tmp_path):
    import json
    from simulator.trace import load_trace
    code, out, _ = run_cli(capsys, "train", "bert-base-uncased", "-a", "arch_configs/fpga_vcu1525_nm.yaml", "--seq-len",
                           "32", "--bits", "16", "--no-lm-head", "--transposable", "--patterns", "dense,2:8", "--json")
    rows = json.loads(out)
    assert code == 0 and [r["pattern"] for r in rows] == ["dense", "2:8"] and rows[1]["step_s"] < rows[0]["step_s"]
    path = tmp_path / "t.yaml"
    code, _, _ = run_cli(capsys, "extract", "hf-config", "bert-base-uncased", "--phase", "train", "--seq-len", "32",
                         "--micro-batches", "2", "--recompute", "full", "-o", path, "-q")
    trace = load_trace(path)
    assert code == 0 and trace.schema_version == 2 and any(op.name == "grad_accumulate" for op in trace.ops)
    assert any(op.name.startswith("recompute.") for op in trace.ops)


@settings(max_examples=40, deadline=None)
@given(params=st.floats(1e6, 1e11), dp=st.integers(1, 512), density=st.floats(0.05, 1.0))
def test_zero_stages_never_need_more_memory_and_sharding_divides(params, dp, density):
    totals = [sum(model_state_bytes(params, stage=z, dp=dp).values()) for z in range(4)]
    assert all(a >= b - 1e-6 * a for a, b in zip(totals, totals[1:]))
    assert totals[3] == pytest.approx(totals[0] / dp)
    sparse = sum(model_state_bytes(params, stage=3, dp=dp, density=density, sparse_sharded=True).values())
    assert sparse == pytest.approx(totals[3] * density)


@settings(max_examples=30, deadline=None)
@given(optimizer=st.sampled_from(["adamw", "adam", "sgd_momentum", "sgd"]), master=st.booleans(),
       bits=st.sampled_from([16, 32]), n=st.integers(1, 5000))
def test_optimizer_ops_carry_exactly_the_optimizer_bytes(optimizer, master, bits, n):
    fwd = _trace({"name": "fc", "kind": "gemm", "dims": {"M": 2, "N": 1, "K": n},
                  "precision": {"activations": bits, "weights": bits, "outputs": bits}})
    recipe = TrainingRecipe(optimizer=optimizer, master_weights=master)
    opt = [op for op in training_trace(fwd, recipe).trace.ops if op.phase == "optimizer"]
    reads = sum(op.dims.elements * op.dims.inputs * op.precision.activations / 8 for op in opt)
    writes = sum(op.dims.elements * op.precision.outputs / 8 for op in opt)
    want = optimizer_bytes(n, moments=recipe.moments, master_weights=master, param_bits=bits, grad_bits=bits)
    assert (reads, writes) == pytest.approx(want)
