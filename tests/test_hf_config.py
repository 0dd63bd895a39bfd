"""Traces from Hugging Face configs: shapes and MAC totals derived by hand from the config numbers."""

import json

import pytest
from typer.testing import CliRunner

from simulator.errors import SparsimInputError
from simulator.trace import load_trace
from workloads.extract import trace_summary
from workloads.extract.hf_config import expert_token_counts, model_shape, trace_from_hf_config

from conftest import ROOT, TRACE_DIR

CONFIGS = ROOT / "workloads" / "hf_configs"


def gemms(trace):
    return {op.name.split(".", 1)[1] if op.name.startswith("layers.") else op.name: op
            for op in trace.ops if op.kind == "gemm"}


def by_suffix(trace, suffix):
    found = [op for op in trace.ops if op.name.endswith(suffix)]
    assert len(found) == 1, [o.name for o in found]
    return found[0]


# ----------------------------------------------------------------------------- LLaMA-2-7B

def test_llama2_7b_prefill_has_every_projection_with_the_config_shapes():
    S = 2048
    t = trace_from_hf_config(CONFIGS / "llama2-7b.json", phase="prefill", seq_len=S)
    for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
        op = by_suffix(t, f"self_attn.{proj}")
        assert (op.dims.M, op.dims.K, op.dims.N, op.repeat) == (S, 4096, 4096, 32)
        assert op.phase == "prefill" and op.layer == "layers.0-31"
    for proj, (K, N) in {"gate_proj": (4096, 11008), "up_proj": (4096, 11008), "down_proj": (11008, 4096)}.items():
        op = by_suffix(t, f"mlp.{proj}")
        assert (op.dims.M, op.dims.K, op.dims.N, op.repeat) == (S, K, N, 32)
    lm = by_suffix(t, "lm_head")
    assert (lm.dims.M, lm.dims.K, lm.dims.N, lm.repeat) == (S, 4096, 32000, 1)
    qk, pv = by_suffix(t, "attn_qk"), by_suffix(t, "attn_pv")
    for op in (qk, pv):
        assert (op.dims.heads, op.dims.n_kv_heads, op.dims.q_len, op.dims.kv_len, op.dims.head_dim) == (32, 32, S, S, 128)
    assert [op.kind for op in t.ops if not op.is_vector].count("gemm") == 8  # 7 projections per block + lm_head


def test_llama2_7b_prefill_total_macs_by_hand():
    S, h, f, L, V = 2048, 4096, 11008, 32, 32000
    per_layer_linear = S * (4 * h * h + 3 * h * f)
    per_layer_attention = 2 * 32 * S * S * 128          # QK^T and PV, 32 heads of 128
    expected = L * (per_layer_linear + per_layer_attention) + S * h * V
    t = trace_from_hf_config(CONFIGS / "llama2-7b.json", phase="prefill", seq_len=S)
    assert t.dense_macs == expected == 14_630_806_093_824


def test_llama2_7b_decode_is_one_query_token_against_the_kv_cache():
    t = trace_from_hf_config("llama2-7b", phase="decode", kv_len=2048, batch=4)
    q = by_suffix(t, "self_attn.q_proj")
    assert (q.dims.M, q.phase) == (4, "decode")
    qk = by_suffix(t, "attn_qk")
    assert (qk.dims.batch, qk.dims.q_len, qk.dims.kv_len) == (4, 1, 2048)
    linear = 4 * (32 * (4 * 4096 * 4096 + 3 * 4096 * 11008) + 4096 * 32000)
    attention = 32 * 2 * 4 * 32 * 2048 * 128
    assert t.dense_macs == linear + attention


def test_weight_recipe_prunes_block_linears_but_not_the_lm_head():
    t = trace_from_hf_config("llama2-7b", weights="2:4", activations=0.5, kv=0.3)
    q = by_suffix(t, "self_attn.q_proj")
    assert (q.sparsity.weights.kind, q.sparsity.weights.n, q.sparsity.weights.m) == ("nm", 2, 4)
    assert q.sparsity.activations.effective_density == 0.5
    assert by_suffix(t, "lm_head").sparsity.weights.kind == "dense"
    qk = by_suffix(t, "attn_qk")
    assert qk.sparsity.weights.effective_density == 0.3   # the KV cache is the B operand of attention
    dense = trace_from_hf_config("llama2-7b", weights=0.5)
    assert by_suffix(dense, "mlp.up_proj").sparsity.weights.density == 0.5


# ----------------------------------------------------------------------------- GQA and MoE

def test_gqa_k_and_v_projections_use_kv_heads():
    t = trace_from_hf_config("llama3-8b", seq_len=16)
    for proj in ("k_proj", "v_proj"):
        op = by_suffix(t, f"self_attn.{proj}")
        assert (op.dims.K, op.dims.N) == (4096, 8 * 128)
    assert by_suffix(t, "self_attn.q_proj").dims.N == 4096
    assert by_suffix(t, "attn_qk").dims.kv_heads == 8
    assert by_suffix(t, "lm_head").dims.N == 128256


def test_mixtral_routed_ffn_macs_per_token_are_top_k_times_three_expert_gemms():
    S = 512
    t = trace_from_hf_config("mixtral-8x7b", seq_len=S)
    moe = [op for op in t.ops if op.kind == "moe_gemm"]
    assert len(moe) == 3 and all(op.repeat == 32 for op in moe)
    per_token_per_layer = sum(op.dense_macs for op in moe) / S
    assert per_token_per_layer == 2 * 3 * 4096 * 14336
    router = by_suffix(t, "block_sparse_moe.gate")
    assert (router.dims.K, router.dims.N) == (4096, 8)
    assert moe[0].dims.tokens_per_expert == [S * 2 // 8] * 8


def test_mixtral_decode_batch1_routes_one_token_to_two_experts():
    t = trace_from_hf_config("mixtral-8x7b", phase="decode", kv_len=2048)
    w1 = by_suffix(t, "experts.w1")
    assert sorted(w1.dims.tokens_per_expert, reverse=True) == [1, 1, 0, 0, 0, 0, 0, 0]


def test_zipf_routing_skews_tokens_and_keeps_the_total():
    counts = expert_token_counts(1000, 8, 2, "zipf", zipf_skew=1.0)
    assert sum(counts) == 2000
    assert counts == sorted(counts, reverse=True) and counts[0] > 2 * counts[-1]
    # shares 1/r normalised by H_8 = 2.7179: rank 1 gets 2000/2.7179 = 735.9 tokens
    assert abs(counts[0] - 736) <= 1
    assert expert_token_counts(1000, 8, 2, "zipf", zipf_skew=0.0) == [250] * 8
    # no expert takes a token twice: with 4 tokens and top-2, the top expert is capped at 4
    assert max(expert_token_counts(4, 8, 2, "zipf", zipf_skew=3.0)) == 4


def test_expert_counts_from_a_file_make_layers_differ(tmp_path):
    # 4 tokens x top-2 = 8 assignments per layer; layer i sends all of them to experts i and i+1 (mod 8)
    rows = [[4 if e in (i % 8, (i + 1) % 8) else 0 for e in range(8)] for i in range(32)]
    path = tmp_path / "counts.json"
    path.write_text(json.dumps({"layers": rows}))
    t = trace_from_hf_config("mixtral-8x7b", seq_len=4, routing="file", expert_counts=path)
    w2 = [op for op in t.ops if op.name.endswith("experts.w2")]
    assert len(w2) == 32 and all(op.repeat == 1 for op in w2)
    assert w2[3].layer == "layers.3" and w2[3].dims.tokens_per_expert == rows[3]


def test_qwen2_moe_shared_expert_and_dense_layers():
    cfg = {"model_type": "qwen2_moe", "hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2,
           "num_hidden_layers": 4, "vocab_size": 100, "intermediate_size": 96, "num_experts": 4,
           "num_experts_per_tok": 2, "moe_intermediate_size": 32, "shared_expert_intermediate_size": 48,
           "decoder_sparse_step": 2}
    t = trace_from_hf_config(cfg, seq_len=8)
    # layers 1 and 3 are sparse ((i + 1) % 2 == 0), layers 0 and 2 have a dense 96-wide MLP
    assert {op.layer for op in t.ops if op.kind == "moe_gemm"} == {"layers.1", "layers.3"}
    assert by_suffix(t, "layers.0.mlp.gate_proj").dims.N == 96
    assert by_suffix(t, "layers.1.mlp.shared_expert.up_proj").dims.N == 48
    per_layer = 8 * (3 * 64 * 48 + 64 * 1 + 64 * 4) + 8 * 2 * 3 * 64 * 32   # shared + gates + routed
    mlp = sum(op.dense_macs for op in t.ops if op.layer == "layers.1" and ".mlp." in op.name)
    assert mlp == per_layer


# ----------------------------------------------------------------------------- other families

def test_opt_6_7b_layer_shapes():
    t = trace_from_hf_config("opt-6.7b", seq_len=16)
    assert (by_suffix(t, "fc1").dims.K, by_suffix(t, "fc1").dims.N) == (4096, 16384)
    assert by_suffix(t, "self_attn.out_proj").dims.N == 4096
    assert by_suffix(t, "lm_head").dims.N == 50272
    S = 16
    assert t.dense_macs == 32 * (S * (4 * 4096 ** 2 + 2 * 4096 * 16384) + 2 * 32 * S * S * 128) + S * 4096 * 50272


def test_gpt2_fused_qkv():
    cfg = {"model_type": "gpt2", "n_embd": 768, "n_head": 12, "n_layer": 12, "vocab_size": 50257}
    t = trace_from_hf_config(cfg, seq_len=10)
    assert (by_suffix(t, "attn.c_attn").dims.N, by_suffix(t, "mlp.c_fc").dims.N) == (3 * 768, 4 * 768)


def test_bert_base_seq128_encoder_and_pooler():
    t = trace_from_hf_config("bert-base-uncased", seq_len=128, lm_head=False)
    h, f = 768, 3072
    expected = 12 * (128 * (4 * h * h + 2 * h * f) + 2 * 12 * 128 * 128 * 64) + h * h   # + pooler on [CLS]
    assert t.dense_macs == expected
    with pytest.raises(SparsimInputError, match="encoder"):
        trace_from_hf_config("bert-base-uncased", phase="decode")


def test_both_phases_in_one_trace():
    t = trace_from_hf_config("llama2-7b", phase="both", seq_len=64, kv_len=128)
    phases = {op.phase for op in t.ops}
    assert phases == {"prefill", "decode"}
    assert by_suffix(t, "decode.layers.self_attn.attn_qk").dims.kv_len == 128
    assert by_suffix(t, "prefill.layers.self_attn.attn_qk").dims.kv_len == 64


def test_expanded_layers_carry_their_layer_names():
    t = trace_from_hf_config("llama2-7b", seq_len=4, repeat_layers=False)
    q3 = by_suffix(t, "layers.3.self_attn.q_proj")
    assert q3.layer == "layers.3" and q3.repeat == 1
    assert t.dense_macs == trace_from_hf_config("llama2-7b", seq_len=4).dense_macs


# ----------------------------------------------------------------------------- bad input

def test_missing_hidden_size_is_named(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "llama", "num_attention_heads": 32}))
    with pytest.raises(SparsimInputError) as exc:
        trace_from_hf_config(path)
    assert exc.value.field == "hidden_size" and "hidden_size" in str(exc.value) and str(path) in str(exc.value)


def test_unknown_model_type_suggests_a_supported_one():
    with pytest.raises(SparsimInputError, match="unknown model_type 'mixtrall'.*did you mean 'mixtral'"):
        model_shape({"model_type": "mixtrall", "hidden_size": 8})
    with pytest.raises(SparsimInputError, match="no 'model_type'"):
        model_shape({"hidden_size": 8})


@pytest.mark.parametrize("kwargs, field", [({"weights": "5:4"}, "weights"), ({"activations": 1.5}, "activations"),
                                           ({"kv": "lots"}, "kv"), ({"phase": "train"}, "phase"),
                                           ({"routing": "random"}, "routing")])
def test_bad_recipes_raise_one_located_error(kwargs, field):
    with pytest.raises(SparsimInputError) as exc:
        trace_from_hf_config("mixtral-8x7b", seq_len=8, **kwargs)
    assert exc.value.field == field


# ----------------------------------------------------------------------------- CLI and shipped files

def test_cli_writes_a_trace_and_prints_the_summary(tmp_path):
    from simulator.cli import _register_commands, app
    _register_commands()
    out = tmp_path / "t.yaml"
    res = CliRunner().invoke(app, ["extract", "hf-config", "llama2-7b", "--phase", "decode", "--kv-len", "2048",
                                   "--weights", "2:4", "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    t = load_trace(out)
    assert summary["totals"]["dense_macs"] == t.dense_macs
    # 2:4 keeps 2 of 4 fp16 values plus a 2-bit index each: 2/4 * (16 + 2) = 9 bits per dense value;
    # the LM head stays dense
    gemm = summary["kinds"]["gemm"]
    lm = 4096 * 32000
    assert gemm["param_bytes"] == (32 * (4 * 4096 ** 2 + 3 * 4096 * 11008) + lm) * 2
    assert gemm["param_bytes_compressed"] == 32 * (4 * 4096 ** 2 + 3 * 4096 * 11008) * 9 / 8 + lm * 2


def test_cli_bad_config_exits_2_without_writing(tmp_path):
    import subprocess
    import sys
    bad = tmp_path / "config.json"
    bad.write_text(json.dumps({"model_type": "llama"}))
    out = tmp_path / "t.yaml"
    res = subprocess.run([sys.executable, "-c", "from simulator.cli import main; main()", "extract", "hf-config",
                          str(bad), "--out", str(out)], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 2 and "hidden_size" in res.stderr
    assert not out.exists() and not list(tmp_path.glob(".t.yaml*"))


SHIPPED = ["llama2_7b_prefill2048", "llama2_7b_prefill2048_2to4", "llama2_7b_decode_kv2048",
           "llama2_7b_decode_kv2048_2to4", "mixtral_8x7b_prefill2048", "mixtral_8x7b_decode_kv2048",
           "llama31_8b_decode_kv32768_kv70pruned", "llama31_8b_prefill32768_blocksparse_attn90",
           "bert_base_seq128", "bert_base_seq128_2to4"]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_config_traces_load_and_are_small(name):
    path = TRACE_DIR / f"{name}.yaml"
    assert path.stat().st_size < 200_000
    t = load_trace(path)
    assert t.dense_macs > 0


def test_shipped_llama_2to4_matches_dense_shapes():
    dense = load_trace(TRACE_DIR / "llama2_7b_prefill2048.yaml")
    sparse = load_trace(TRACE_DIR / "llama2_7b_prefill2048_2to4.yaml")
    assert dense.dense_macs == sparse.dense_macs
    s = trace_summary(sparse)["totals"]
    linear = 32 * 2048 * (4 * 4096 ** 2 + 3 * 4096 * 11008)
    assert s["dense_macs"] - s["effective_macs"] == linear / 2


def test_mistral_sliding_window_caps_the_decode_kv_length():
    cfg = {"model_type": "mistral", "hidden_size": 4096, "num_attention_heads": 32, "num_key_value_heads": 8,
           "num_hidden_layers": 32, "intermediate_size": 14336, "vocab_size": 32000, "sliding_window": 4096}
    assert by_suffix(trace_from_hf_config(cfg, phase="decode", kv_len=16384), "attn_qk").dims.kv_len == 4096
    assert by_suffix(trace_from_hf_config(cfg, phase="decode", kv_len=1000), "attn_qk").dims.kv_len == 1000


def test_model_type_can_come_from_architectures():
    cfg = json.loads((CONFIGS / "llama2-7b.json").read_text())
    del cfg["model_type"]
    assert model_shape(cfg).model_type == "llama"          # architectures: LlamaForCausalLM


# ----------------------------------------------------------------------------- every family, totals by hand
# Each expected number is built from the config keys with the model code's layer shapes; none is
# read back from the extractor.

def attention_macs(layers, batch, heads, q_len, kv_len, head_dim):
    """QK^T plus PV: each is heads x q_len x kv_len x head_dim MACs per sequence."""
    return layers * 2 * batch * heads * q_len * kv_len * head_dim


def test_llama3_8b_prefill_total_with_gqa_and_untied_head():
    S, h, kv, f, L, V = 2048, 4096, 8 * 128, 14336, 32, 128256
    linear = S * (2 * h * h + 2 * h * kv + 3 * h * f)         # q, o: h x h; k, v: h x (kv_heads x head_dim)
    expected = L * linear + attention_macs(L, 1, 32, S, S, 128) + S * h * V
    assert trace_from_hf_config("llama3-8b", seq_len=S).dense_macs == expected


def test_explicit_head_dim_overrides_hidden_over_heads():
    # hidden 2048 with 32 heads would give 64; the config says 128, so q is 2048 -> 4096 and o 4096 -> 2048
    cfg = {"model_type": "llama", "hidden_size": 2048, "num_attention_heads": 32, "num_key_value_heads": 8,
           "head_dim": 128, "intermediate_size": 8192, "num_hidden_layers": 2, "vocab_size": 1000,
           "tie_word_embeddings": False}
    t = trace_from_hf_config(cfg, seq_len=16)
    assert (by_suffix(t, "q_proj").dims.N, by_suffix(t, "k_proj").dims.N, by_suffix(t, "o_proj").dims.K) == (4096, 1024, 4096)
    S, h = 16, 2048
    expected = 2 * S * (h * 4096 + 2 * h * 1024 + 4096 * h + 3 * h * 8192) + attention_macs(2, 1, 32, S, S, 128) + S * h * 1000
    assert t.dense_macs == expected


def test_mixtral_prefill_total_router_experts_attention_and_head():
    S, h, kv, f, L = 2048, 4096, 8 * 128, 14336, 32
    per_layer = S * (2 * h * h + 2 * h * kv) + S * h * 8 + S * 2 * 3 * h * f   # attention linears, router, top-2 experts
    expected = L * per_layer + attention_macs(L, 1, 32, S, S, 128) + S * h * 32000
    assert trace_from_hf_config("mixtral-8x7b", seq_len=S).dense_macs == expected


QWEN2_05B = {"model_type": "qwen2", "hidden_size": 896, "num_attention_heads": 14, "num_key_value_heads": 2,
             "intermediate_size": 4864, "num_hidden_layers": 24, "vocab_size": 151936, "tie_word_embeddings": True,
             "sliding_window": 32768, "max_window_layers": 21, "use_sliding_window": False}


def test_qwen2_prefill_and_decode_totals():
    h, hd, f, L, V = 896, 64, 4864, 24, 151936                 # head_dim = 896 / 14
    kv = 2 * hd
    S = 512
    linear = S * (2 * h * h + 2 * h * kv + 3 * h * f)
    assert trace_from_hf_config(QWEN2_05B, seq_len=S).dense_macs == \
        L * linear + attention_macs(L, 1, 14, S, S, hd) + S * h * V
    B, KV = 8, 40000                                           # use_sliding_window false: the whole cache is read
    decode = trace_from_hf_config(QWEN2_05B, phase="decode", batch=B, kv_len=KV)
    assert decode.dense_macs == L * B * (2 * h * h + 2 * h * kv + 3 * h * f) + attention_macs(L, B, 14, 1, KV, hd) + B * h * V


def test_qwen2_sliding_window_applies_only_from_max_window_layers():
    cfg = dict(QWEN2_05B, use_sliding_window=True)
    t = trace_from_hf_config(cfg, phase="decode", kv_len=40000)
    kv_lens = {op.layer: op.dims.kv_len for op in t.ops if op.kind == "attention_qk"}
    assert len(kv_lens) == 24                                  # layers differ, so each is its own op
    assert {kv_lens[f"layers.{i}"] for i in range(21)} == {40000}
    assert {kv_lens[f"layers.{i}"] for i in range(21, 24)} == {32768}
    # without the key, Qwen2Config's use_sliding_window defaults to false
    no_key = {k: v for k, v in cfg.items() if k != "use_sliding_window"}
    assert {op.dims.kv_len for op in trace_from_hf_config(no_key, phase="decode", kv_len=40000).ops
            if op.kind == "attention_qk"} == {40000}


def test_qwen2_moe_total_with_shared_expert_and_a_dense_first_layer():
    # Qwen1.5-MoE-A2.7B widths, 4 layers; layer 0 is listed in mlp_only_layers
    cfg = {"model_type": "qwen2_moe", "hidden_size": 2048, "num_attention_heads": 16, "num_key_value_heads": 16,
           "num_hidden_layers": 4, "vocab_size": 151936, "intermediate_size": 5632, "moe_intermediate_size": 1408,
           "shared_expert_intermediate_size": 5632, "num_experts": 60, "num_experts_per_tok": 4,
           "decoder_sparse_step": 1, "mlp_only_layers": [0], "tie_word_embeddings": False}
    S, h, hd = 64, 2048, 128
    attn_linear = S * 4 * h * h
    dense_mlp = S * 3 * h * 5632
    moe_mlp = S * (h * 60 + h * 1 + 3 * h * 5632 + 4 * 3 * h * 1408)   # router, shared gate, shared expert, top-4
    expected = 4 * attn_linear + dense_mlp + 3 * moe_mlp + attention_macs(4, 1, 16, S, S, hd) + S * h * 151936
    t = trace_from_hf_config(cfg, seq_len=S)
    assert t.dense_macs == expected
    assert {op.layer for op in t.ops if op.kind == "moe_gemm"} == {"layers.1", "layers.2", "layers.3"}


def test_gpt2_total_with_tied_head_and_default_n_inner():
    cfg = {"model_type": "gpt2", "n_embd": 768, "n_head": 12, "n_layer": 12, "vocab_size": 50257, "n_inner": None,
           "tie_word_embeddings": True}
    S, h = 1024, 768
    per_layer = S * (h * 3 * h + h * h + 2 * h * 4 * h)          # c_attn, c_proj, c_fc, mlp.c_proj
    expected = 12 * per_layer + attention_macs(12, 1, 12, S, S, 64) + S * h * 50257   # the tied head still multiplies
    t = trace_from_hf_config(cfg, seq_len=S)
    assert t.dense_macs == expected
    assert by_suffix(t, "lm_head").dims.N == 50257
    assert by_suffix(t, "attn.c_proj").precision.weights == 32       # no torch_dtype: GPT-2 checkpoints are fp32


def test_gpt2_explicit_n_inner_and_decode():
    cfg = {"model_type": "gpt2", "n_embd": 1024, "n_head": 16, "n_layer": 24, "vocab_size": 50257, "n_inner": 3000}
    B, KV, h = 2, 300, 1024
    expected = 24 * B * (h * 3 * h + h * h + 2 * h * 3000) + attention_macs(24, B, 16, 1, KV, 64) + B * h * 50257
    assert trace_from_hf_config(cfg, phase="decode", batch=B, kv_len=KV).dense_macs == expected


MISTRAL_7B = {"model_type": "mistral", "hidden_size": 4096, "num_attention_heads": 32, "num_key_value_heads": 8,
              "num_hidden_layers": 32, "intermediate_size": 14336, "vocab_size": 32000, "sliding_window": 4096}


def test_mistral_sliding_window_prefill_attends_to_the_window_only():
    S, W, h, kv, f = 8192, 4096, 4096, 1024, 14336
    linear = S * (2 * h * h + 2 * h * kv + 3 * h * f)
    expected = 32 * linear + attention_macs(32, 1, 32, S, W, 128) + S * h * 32000   # each query sees W keys
    t = trace_from_hf_config(MISTRAL_7B, seq_len=S)
    assert t.dense_macs == expected
    assert "sliding window 4096" in t.description
    # shorter than the window: the window changes nothing
    short = trace_from_hf_config(MISTRAL_7B, seq_len=1024)
    assert by_suffix(short, "attn_qk").dims.kv_len == 1024
    # null sliding_window (Mistral v0.2+) is full attention
    full = trace_from_hf_config(dict(MISTRAL_7B, sliding_window=None), seq_len=S)
    assert by_suffix(full, "attn_qk").dims.kv_len == S


def test_opt_350m_total_with_word_embed_projection():
    cfg = {"model_type": "opt", "hidden_size": 1024, "num_attention_heads": 16, "ffn_dim": 4096,
           "num_hidden_layers": 24, "vocab_size": 50272, "word_embed_proj_dim": 512}
    S, h, p = 128, 1024, 512
    expected = (24 * S * (4 * h * h + 2 * h * 4096) + attention_macs(24, 1, 16, S, S, 64)
                + S * p * h + S * h * p + S * p * 50272)           # project_in, project_out, lm_head from 512
    t = trace_from_hf_config(cfg, seq_len=S)
    assert t.dense_macs == expected
    assert (by_suffix(t, "lm_head").dims.K, by_suffix(t, "project_in").dims.K) == (512, 512)


def test_bert_config_dict_total_with_pooler_and_optional_mlm_head():
    cfg = {"model_type": "bert", "hidden_size": 1024, "num_attention_heads": 16, "intermediate_size": 4096,
           "num_hidden_layers": 24, "vocab_size": 30522}
    B, S, h = 2, 384, 1024
    T = B * S
    encoder = 24 * T * (4 * h * h + 2 * h * 4096) + attention_macs(24, B, 16, S, S, 64)
    pooler = B * h * h                                                # dense on each sequence's [CLS]
    assert trace_from_hf_config(cfg, seq_len=S, batch=B).dense_macs == encoder + pooler
    mlm = dict(cfg, architectures=["BertForMaskedLM"])               # transform dense + decoder over every token
    assert trace_from_hf_config(mlm, seq_len=S, batch=B).dense_macs == encoder + pooler + T * h * h + T * h * 30522


def test_unreadable_config_and_bad_window_are_located_errors(tmp_path):
    with pytest.raises(SparsimInputError, match="cannot read the config|is a directory"):
        model_shape(tmp_path)                                          # a directory, not a file
    with pytest.raises(SparsimInputError) as exc:
        model_shape(dict(MISTRAL_7B, sliding_window=0))
    assert exc.value.field == "sliding_window"
    with pytest.raises(SparsimInputError) as exc:
        model_shape(dict(MISTRAL_7B, num_key_value_heads=0))
    assert exc.value.field == "num_key_value_heads"


def test_layer_skipping_and_block_sparse_attention_recipes():
    S = 256
    t = trace_from_hf_config("llama2-7b", seq_len=S, skip_layers=0.25, attention=0.1)
    qk, pv = by_suffix(t, "attn_qk"), by_suffix(t, "attn_pv")
    assert qk.skip_probability == 0.25 and by_suffix(t, "lm_head").skip_probability == 0.0
    assert (qk.sparsity.outputs.kind, qk.sparsity.outputs.block, qk.sparsity.outputs.density) == ("block", (64, 64), 0.1)
    assert pv.sparsity.activations.density == 0.1 and pv.sparsity.weights.kind == "dense"
    attention = trace_summary(t)["kinds"]["attention_qk"]
    # 32 layers x 32 heads x S x S x 128, a tenth of the blocks kept, a quarter of the layer runs skipped
    assert attention["effective_macs"] == pytest.approx(32 * 32 * S * S * 128 * 0.1 * 0.75)


@pytest.mark.parametrize("model", ["llama2-7b", "opt-6.7b", "mixtral-8x7b", "bert-base-uncased"])
def test_residual_adds_read_the_tensor_they_skip_over(model):
    """Each residual add has two producers: the branch it closes and the tensor that skipped the
    branch (the block input, or the first residual), so the op graph has real residual branches."""
    from simulator.graph import build_graph
    trace = trace_from_hf_config(model, phase="prefill", seq_len=16, repeat_layers=False)
    graph = build_graph(trace)
    names = [op.name for op in trace.ops]
    first, second = (("attention.output.LayerNorm", "output.LayerNorm") if model.startswith("bert")
                     else ("residual_attn", "residual_mlp"))
    for layer in (0, 1):
        block = f"layers.{layer}."
        block_input = names[names.index(next(n for n in names if n.startswith(block))) - 1]
        assert block_input in set(graph.predecessors(block + first))
        assert block + first in set(graph.predecessors(block + second))
        assert graph.in_degree(block + first) == 2 and graph.in_degree(block + second) == 2
        # the block input now feeds two ops (the branch and the add): it is not fusable into one consumer
        assert graph.out_degree(block_input) >= 2
