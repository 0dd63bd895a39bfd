"""Training-step mechanisms of a real GPU step: PyTorch eager vector kernels and foreach AdamW (bytes per
element by hand, valid trace, time = bytes / bandwidth) and SMs held by overlapped collectives."""

import pytest

from simulator.spec import load_arch
from simulator.simulate import simulate
from simulator.trace import Op
from simulator.training.build import training_trace
from simulator.training.eager import KERNELS, eager_backward, eager_forward, kernel_bytes, role
from simulator.training.recipe import TrainingRecipe
from simulator.training.step import model_flops
from tests.cli_helpers import run_cli
from workloads.extract.hf_config import trace_from_hf_config

A100 = "arch_configs/gpu_a100_sxm4_80gb.yaml"


def _llama(seq=64):
    return trace_from_hf_config("llama2-7b", phase="prefill", seq_len=seq, batch=1, logits="all", lm_head=True)


@pytest.mark.parametrize("name, bf16_bytes", [
    # RMSNorm forward, bf16 x (2 B) and fp32 (4 B) intermediates, per element (read + write):
    # cast up 2+4, pow 4+4 and mean 4, x*r 4+4, cast down 4+2, *weight 2+2 = 36;
    # backward: dy*w 2+2; dy*normed and its sum 6+2; cast up 2+4; g*r 4+4; g*x and its sum 12+4; mean's
    # expand 0+4; pow 8+4; the two dx add 8+4; cast down 4+2 = 76
    ("rmsnorm", (36, 76)),
    ("rotary", (20, 20)),      # cast up 2+4, complex multiply 4+4, cast down 4+2; backward the same three
    ("swiglu", (10, 18)),      # silu 2+2, mul 4+2; backward d(silu) 4+2, d(up) 4+2, silu' 4+2
])
def test_kernel_bytes_by_hand(name, bf16_bytes):
    fwd, bwd = KERNELS[name]
    assert sum(kernel_bytes(fwd, 16)) == bf16_bytes[0]
    assert sum(kernel_bytes(bwd, 16)) == bf16_bytes[1]


def test_roles_only_rmsnorm_rotary_swiglu():
    roles = {op.name: role(op) for op in _llama().ops if op.is_vector}
    assert roles["layers.input_layernorm"] == roles["final_norm"] == "rmsnorm"
    assert roles["layers.self_attn.rotary"] == "rotary" and roles["layers.mlp.act_mul"] == "swiglu"
    assert roles["layers.residual_attn"] is None and roles["embed_tokens"] is None
    bert = trace_from_hf_config("bert-base-uncased", phase="prefill", seq_len=32, batch=1, lm_head=False)
    assert not any(role(op) for op in bert.ops)      # LayerNorm and GELU have native fused kernels


def test_eager_trace_is_valid_and_keeps_macs():
    fwd = _llama()
    fused = training_trace(fwd, TrainingRecipe())
    eager = training_trace(fwd, TrainingRecipe(vector_kernels="eager"))
    assert model_flops(eager) == model_flops(fused)
    names = {op.name for op in eager.trace.ops}
    q = next(op for op in eager.trace.ops if op.name == "layers.self_attn.q_proj" and op.phase == "forward")
    assert set(q.depends_on) <= names and "layers.input_layernorm" in q.depends_on
    norm = fwd.ops[1]
    kernels = [op for op in eager.trace.ops if op.name.startswith("layers.input_layernorm")]
    assert len(kernels) == len(KERNELS["rmsnorm"][0]) + len(KERNELS["rmsnorm"][1])
    assert all(op.repeat == norm.repeat and op.layer == norm.layer for op in kernels)
    # forward and backward ops of everything but RMSNorm, rotary and SwiGLU are the fused trace's
    decomposed = tuple(op.name for op in fwd.ops if role(op))
    kept = [op.name for op in fused.trace.ops if op.phase != "optimizer" and not op.name.startswith(decomposed)]
    assert kept == [op.name for op in eager.trace.ops if op.phase != "optimizer"
                    and not op.name.startswith(decomposed)]


def test_eager_time_is_bytes_over_bandwidth_plus_launches():
    arch = load_arch(A100)
    op = Op.model_validate({"name": "layers.input_layernorm", "kind": "norm", "layer": "layers.0-1", "repeat": 2,
                            "precision": {"activations": 16, "weights": 16, "outputs": 16},
                            "dims": {"elements": 1 << 24, "inputs": 1, "flops_per_element": 4}})
    kernels = [Op.model_validate(d) for d in eager_forward(op, phase="forward", repeat=2)]
    rows = simulate(_as_trace(kernels), arch).rows
    seconds = sum(r["latency_s"] for r in rows)
    hbm = arch.memory["hbm"].bytes_per_cycle * arch.clock_hz * arch.compute.efficiency.hbm
    launches = len(kernels) * 2 * arch.compute.launch_overhead_us * 1e-6
    assert seconds == pytest.approx(2 * 36 * (1 << 24) / hbm + launches, rel=1e-6)
    assert [k["name"] for k in eager_backward(op, repeat=2)][-1].endswith("to_fp32.bwd")


def _as_trace(ops):
    from simulator.trace import trace_from_dict
    return trace_from_dict({"schema_version": 2, "name": "k",
                            "ops": [o.model_dump(mode="json", exclude_defaults=True) for o in ops]})


def test_full_recompute_reruns_the_eager_kernels():
    tt = training_trace(_llama(), TrainingRecipe(vector_kernels="eager", recompute="full"))
    rerun = [op.name for op in tt.trace.ops if op.name.startswith("recompute.layers.input_layernorm")]
    assert len(rerun) == len(KERNELS["rmsnorm"][0]) and all(".eager." in n for n in rerun)


def test_cli_vector_kernels(capsys):
    import json
    common = ["train", "llama2-7b", "-a", A100, "--seq-len", "256", "--json"]
    runs = {m: json.loads(run_cli(capsys, *common, "--vector-kernels", m)[1]) for m in ("auto", "eager", "fused")}
    assert runs["auto"]["step_s"] == runs["eager"]["step_s"] > runs["fused"]["step_s"]
    code, _, err = run_cli(capsys, *common, "--vector-kernels", "compiled")
    assert code == 2 and err.startswith("error: --vector-kernels") and err.count("\n") == 1


def _op_bytes(op) -> float:
    d = op.dims
    return d.elements * (d.inputs * op.precision.activations + op.precision.outputs) / 8


@pytest.mark.parametrize("optimizer, master, bits, per_param", [
    # foreach AdamW over fp32 p, g, m, v: decay p 4+4, lerp m 8+4, mul v 4+4, addcmul v 8+4, sqrt 4+4,
    # div 4+4, add eps 4+4, addcdiv p 12+4 = 80; mixed precision adds g 2 -> 4 (6) and master 4 -> 2 (6)
    ("adamw", True, 16, 92),
    ("adam", True, 16, 84),          # no decoupled weight-decay pass
    ("adamw", False, 32, 80),        # fp32 training: no casts
])
def test_foreach_adam_bytes_by_hand(optimizer, master, bits, per_param):
    fwd = _as_trace([Op.model_validate({"name": "fc", "kind": "gemm", "dims": {"M": 8, "N": 10, "K": 100},
                                        "precision": {"activations": bits, "weights": bits, "outputs": bits}})])
    recipe = TrainingRecipe(optimizer=optimizer, master_weights=master, vector_kernels="eager")
    opt = [op for op in training_trace(fwd, recipe).trace.ops if op.phase == "optimizer"]
    assert all(".foreach." in op.name for op in opt)
    assert sum(_op_bytes(op) for op in opt) == per_param * 1000


def test_sgd_keeps_the_single_pass_with_eager_kernels():
    fwd = _as_trace([Op.model_validate({"name": "fc", "kind": "gemm", "dims": {"M": 8, "N": 10, "K": 100},
                                        "precision": {"activations": 16, "weights": 16, "outputs": 16}})])
    eager = training_trace(fwd, TrainingRecipe(optimizer="sgd_momentum", vector_kernels="eager"))
    fused = training_trace(fwd, TrainingRecipe(optimizer="sgd_momentum"))
    assert [op.name for op in eager.trace.ops] == [op.name for op in fused.trace.ops]


# ---------------------------------------------------------------- SM contention of overlapped collectives

def test_sm_contention_by_hand():
    from simulator.training.collectives import sm_contention_s
    assert sm_contention_s(0.040, 24, 108) == pytest.approx(0.040 * 24 / 108)
    assert sm_contention_s(0.040, 0, 108) == 0 and sm_contention_s(0.0, 24, 108) == 0
    assert sm_contention_s(0.040, 500, 108) == pytest.approx(0.040)     # at most every SM


def test_collective_sms_stretch_backward_by_the_overlapped_share():
    from simulator.training.step import DataParallel, simulate_training
    from workloads.extract.training import hf_training_trace
    tt, shape = hf_training_trace("llama2-7b", seq_len=512, batch=1)
    arch = load_arch(A100)
    runs = {c: simulate_training(tt, arch, dp=DataParallel(ranks=8, link_bytes_per_s=3e12, comm_sms=c), shape=shape)
            for c in (0, 24)}
    dp = runs[24].data_parallel
    overlapped = dp["communication_s"] - runs[24].split_s["communication (exposed)"]
    assert overlapped > 0
    assert dp["sm_contention_s"] == pytest.approx(overlapped * 24 / arch.compute.sm_count)
    assert runs[24].split_s["backward"] - runs[0].split_s["backward"] == pytest.approx(dp["sm_contention_s"])
    assert runs[0].data_parallel["sm_contention_s"] == 0


def test_cli_comm_sms_default_and_errors(capsys):
    import json
    code, out, _ = run_cli(capsys, "train", "llama2-7b", "-a", A100, "--seq-len", "128", "--dp", "2",
                           "--link-gb-s", "300", "--json")
    assert code == 0 and json.loads(out)["data_parallel"]["comm_sms"] == 24
    code, _, err = run_cli(capsys, "train", "llama2-7b", "-a", A100, "--seq-len", "128", "--comm-sms", "-1")
    assert code == 2 and err.startswith("error: --comm-sms") and err.count("\n") == 1
