"""Serving-stack profiles (simulator/serving_stack.py): the added time by hand, the estimate from a
tensor-parallel latency table, the shipped profile's provenance, and clear errors."""

from __future__ import annotations

import json
import sys

import pytest
from hypothesis import given, strategies as st

from simulator import load_arch
from simulator.errors import SparsimInputError
from simulator.serving_stack import (ServingStack, apply_profile, inconsistent_entries, load_stack,
                                     per_sequence_token_from_tp_table, tp_split, with_stack)
from workloads.llm import simulate_llm

from conftest import ARCH_DIR, ROOT

TINY = {"model_type": "llama", "hidden_size": 256, "intermediate_size": 512, "num_attention_heads": 4,
        "num_hidden_layers": 2, "vocab_size": 1000, "torch_dtype": "float16"}


def _synthetic_table(t_ms: float, output_len: int, per_request: float = 30.0) -> dict:
    """latency(tp, B) = per-TP constant + kernel growth(B) / TP + (B - 1) x output_len x t."""
    kernel_growth = {1: 0.0, 2: 11.0, 4: 35.0, 8: 90.0}
    base = {1: 200.0, 2: 150.0, 4: 130.0, 8: 125.0}
    return {tp: {b: base[tp] + per_request + kernel_growth[b] / tp + (b - 1) * output_len * t_ms
                 for b in kernel_growth} for tp in base}


def test_tp_split_recovers_a_and_b():
    a, b = tp_split({tp: 7.0 + 40.0 / tp for tp in (1, 2, 4, 8)})
    assert a == pytest.approx(7.0) and b == pytest.approx(40.0)


@given(st.floats(min_value=0.0, max_value=2.0), st.integers(min_value=2, max_value=64))
def test_estimate_recovers_the_per_sequence_token_time_of_a_synthetic_table(t_ms, output_len):
    table = _synthetic_table(t_ms, output_len)
    assert per_sequence_token_from_tp_table(table, output_len) == pytest.approx(t_ms, abs=1e-9)


def test_an_entry_above_a_larger_batch_is_flagged_and_does_not_move_the_estimate():
    table = _synthetic_table(0.25, 20)
    clean = per_sequence_token_from_tp_table(table, 20)
    table[2][4] = 10 * table[2][8]          # a misprint: batch 4 slower than batch 8 at the same TP
    assert inconsistent_entries(table) == {(2, 4)}
    assert per_sequence_token_from_tp_table(table, 20) == pytest.approx(clean, rel=1e-12)


def test_a_table_with_one_tp_cannot_be_split():
    with pytest.raises(ValueError, match="two tensor-parallel sizes"):
        per_sequence_token_from_tp_table({1: {1: 100.0, 8: 150.0}}, 20)


@pytest.fixture(scope="module")
def a100_run():
    arch = load_arch(ARCH_DIR / "gpu_a100_sxm4_80gb.yaml")
    return arch, simulate_llm(TINY, arch, prompt_len=16, output_len=5, batch=3)


def test_no_profile_leaves_the_kernel_times_unchanged(a100_run):
    arch, r = a100_run
    for out in (with_stack(r, None), apply_profile(r, "none", [arch])):
        assert out.serving_stack == "none" and out.stack_s == 0.0
        assert (out.ttft_s, out.tpot_s, out.total_s, out.energy_j) == (r.ttft_s, r.tpot_s, r.total_s, r.energy_j)


def test_the_added_time_and_idle_energy_by_hand(a100_run):
    arch, r = a100_run
    stack = ServingStack("x", arch.name, per_request_s=2e-3, per_sequence_token_s=0.5e-3)
    out = with_stack(r, stack, idle_w=80.0, tdp_w=400.0)
    added = 2e-3 + 3 * 5 * 0.5e-3                       # per request + batch x output tokens x t
    assert out.stack_s == pytest.approx(added) and out.total_s == pytest.approx(r.total_s + added)
    assert out.ttft_s == pytest.approx(r.ttft_s + 2e-3 + 3 * 0.5e-3)
    assert out.tpot_s == pytest.approx(r.tpot_s + 3 * 0.5e-3)
    assert out.total_s == pytest.approx(out.ttft_s + 4 * out.tpot_s)
    assert out.energy_j == pytest.approx(r.energy_j + 80.0 * added)
    assert out.tokens_per_s == pytest.approx(15 / out.total_s)
    assert out.to_dict()["serving_stack"] == "x" and out.to_dict()["stack_s"] == pytest.approx(added)


def test_shipped_nemo_profile_is_the_estimate_from_the_published_7b_rows():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from nemo_table import NEMO_ARCH, NEMO_MS, NEMO_OUTPUT
    for gpu, arch in NEMO_ARCH.items():
        t_ms = per_sequence_token_from_tp_table(NEMO_MS["llama2-7b"][gpu], NEMO_OUTPUT)
        assert load_stack("nemo-trtllm", arch).per_sequence_token_s * 1e3 == pytest.approx(t_ms, abs=5e-4)


def test_bad_profiles_are_one_line_errors(tmp_path, a100_run):
    arch, _ = a100_run
    with pytest.raises(SparsimInputError, match="no serving-stack profile 'nemo'"):
        load_stack("nemo", arch.name)
    with pytest.raises(SparsimInputError, match="no entry for platform 'gpu_mi210'"):
        load_stack("nemo-trtllm", "gpu_mi210")
    bad = tmp_path / "s.yaml"
    bad.write_text("platforms: {gpu_a100_sxm4_80gb: {per_sequence_token_ms: -1}}")
    with pytest.raises(SparsimInputError, match="per_sequence_token_ms: must be a number"):
        load_stack(str(bad), arch.name)
    bad.write_text("platforms: {gpu_a100_sxm4_80gb: {per_seq_token_ms: 1}}")   # a misspelt key is not ignored
    with pytest.raises(SparsimInputError, match="must be a mapping with keys"):
        load_stack(str(bad), arch.name)
    bad.write_text("name: s")
    with pytest.raises(SparsimInputError, match="platforms"):
        load_stack(str(bad), arch.name)


def test_cli_llm_stack_flag(tmp_path, capsys):
    from cli_helpers import run_cli
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps(TINY))
    base = ["llm", "--arch", ARCH_DIR / "gpu_a100_sxm4_80gb.yaml", "--model", cfg, "-p", "16", "-t", "5", "-b", "3",
            "--json"]
    code, out, err = run_cli(capsys, *base)
    assert code == 0, err
    plain = json.loads(out)
    code, out, err = run_cli(capsys, *base, "--stack", "nemo-trtllm")
    assert code == 0, err
    stacked = json.loads(out)
    added = 3 * 5 * load_stack("nemo-trtllm", "gpu_a100_sxm4_80gb").per_sequence_token_s
    assert plain["serving_stack"] == "none" and stacked["serving_stack"] == "nemo-trtllm"
    assert stacked["total_s"] == pytest.approx(plain["total_s"] + added)
    code, _, err = run_cli(capsys, "llm", "--arch", ARCH_DIR / "gpu_mi210.yaml", "--model", cfg, "-p", "16", "-t", "5",
                           "--stack", "nemo-trtllm")
    assert code == 2 and err.startswith("error:") and len(err.strip().splitlines()) == 1 and "gpu_mi210" in err


def test_holdout_tp_shard_divides_heads_ffn_and_vocab_and_keeps_head_size():
    import importlib.util
    spec = importlib.util.spec_from_file_location("serving_stack_holdout", ROOT / "benchmarks" / "serving_stack_holdout.py")
    holdout = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(holdout)
    cfg = holdout._config("llama2-13b")
    shard = holdout.tp_shard(cfg, 4)
    assert (shard["num_attention_heads"], shard["num_key_value_heads"], shard["intermediate_size"],
            shard["vocab_size"], shard["head_dim"], shard["hidden_size"]) == (10, 10, 3456, 8000, 128, 5120)
    assert holdout.tp_shard(cfg, 1)["num_attention_heads"] == cfg["num_attention_heads"]
