"""End-to-end LLM inference: decode bounds, TTFT growth, speculative break-even, CLI.

A tiny Llama-style config keeps the numbers derivable by hand: hidden 256, 4 heads of 64
(2 KV heads), FFN 512, 2 layers, vocabulary 1000. Parameters per block: q 256x256 +
k, v 256x128 + o 256x256 + gate, up, down 3x256x512 = 589,824; two blocks 1,179,648;
LM head 256x1000 = 256,000 -> 1,435,648 weights. The edge NPU's datapath is 8-bit, so
that is 1,435,648 bytes; its LPDDR4 moves 16 B/cycle at 800 MHz = 12.8 GB/s. The KV
cache of batch 2 at length L: 2 (K, V) x 2 layers x 2 KV heads x 64 x L x 2 sequences
= 1,024 L bytes.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from simulator import load_arch
from simulator.errors import SparsimInputError
from simulator.llm import Speculative, breakeven_acceptance, expected_tokens_per_cycle, simulate_llm
from simulator.system import replicate

from conftest import ARCH_DIR, ROOT

TINY = {"model_type": "llama", "hidden_size": 256, "intermediate_size": 512, "num_attention_heads": 4,
        "num_key_value_heads": 2, "num_hidden_layers": 2, "vocab_size": 1000, "torch_dtype": "float16"}
WEIGHT_BYTES = 1_435_648
DRAM_BYTES_PER_S = 16 * 800e6


def kv_bytes(L, batch=2):
    return 2 * 2 * 2 * 64 * L * batch


@pytest.fixture(scope="module")
def edge():
    return load_arch(ARCH_DIR / "edge_npu_32x32_os.yaml")


@pytest.mark.parametrize("cores", [1, 2, 4])
def test_decode_time_per_token_is_at_least_weights_plus_kv_over_bandwidth(edge, cores):
    result = simulate_llm(TINY, edge, prompt_len=100, output_len=33, batch=2, cores=cores)
    for sample in result.decode_samples:
        bound = (WEIGHT_BYTES + kv_bytes(sample["kv_len"])) / DRAM_BYTES_PER_S
        assert sample["step_s"] >= bound
    assert result.tpot_s >= (WEIGHT_BYTES + kv_bytes(101)) / DRAM_BYTES_PER_S


def test_decode_step_grows_with_the_kv_cache(edge):
    result = simulate_llm(TINY, edge, prompt_len=256, output_len=257, batch=2)
    steps = [s["step_s"] for s in result.decode_samples]
    nbytes = [s["dram_bytes"] for s in result.decode_samples]
    assert [s["kv_len"] for s in result.decode_samples] == [257, 321, 384, 448, 512]
    assert steps == sorted(steps) and steps[-1] > steps[0]
    assert nbytes == sorted(nbytes) and nbytes[-1] - nbytes[0] >= kv_bytes(512) - kv_bytes(257)


def test_totals_are_consistent(edge):
    r = simulate_llm(TINY, edge, prompt_len=64, output_len=17, batch=2)
    assert r.total_s == pytest.approx(r.ttft_s + 16 * r.tpot_s, rel=1e-12)
    assert r.tokens_per_s == pytest.approx(2 * 17 / r.total_s, rel=1e-12)
    assert r.energy_per_token_j == pytest.approx((r.prefill_energy_j + r.decode_energy_j) / 34, rel=1e-12)
    assert r.ttft_s == pytest.approx(r.prefill.makespan_s)


def test_interpolated_decode_sum_matches_stepping_every_token(edge):
    # 9 steps simulated one by one vs 3 samples + linear interpolation: within 0.5%.
    exact = simulate_llm(TINY, edge, prompt_len=500, output_len=10, samples=9)
    sampled = simulate_llm(TINY, edge, prompt_len=500, output_len=10, samples=3)
    assert len(exact.decode_samples) == 9
    assert sampled.tpot_s == pytest.approx(exact.tpot_s, rel=5e-3)


def test_ttft_grows_with_prompt_length(edge):
    ttft = [simulate_llm(TINY, edge, prompt_len=p, output_len=2).ttft_s for p in (32, 128, 512)]
    assert ttft[0] < ttft[1] < ttft[2]


def test_expected_tokens_and_breakeven_by_hand():
    assert expected_tokens_per_cycle(0.5, 2) == pytest.approx(1 + 0.5 + 0.25)
    assert expected_tokens_per_cycle(1.0, 4) == 5
    assert expected_tokens_per_cycle(0.0, 4) == 1
    assert breakeven_acceptance(1.75, 2) == pytest.approx(0.5, abs=1e-9)
    assert breakeven_acceptance(5.0, 4) is None          # a cycle costing k + 1 steps never pays
    assert breakeven_acceptance(0.9, 4) == 0.0


def test_layer_skip_speculation_helps_only_above_the_breakeven_acceptance(edge):
    kw = dict(prompt_len=128, output_len=65, batch=1)
    plain = simulate_llm(TINY, edge, **kw)
    probe = simulate_llm(TINY, edge, speculative=Speculative(draft_tokens=4, acceptance_rate=0.5, skip_fraction=0.5), **kw)
    a_star = probe.speculative["breakeven_acceptance"]
    assert a_star is not None and 0.0 < a_star < 1.0
    # At a*, E(a*) equals the cycle cost in plain steps: speculation breaks exactly even.
    even = simulate_llm(TINY, edge, speculative=Speculative(4, a_star, 0.5), **kw)
    assert even.tpot_s == pytest.approx(plain.tpot_s, rel=1e-6)
    above = simulate_llm(TINY, edge, speculative=Speculative(4, min(1.0, a_star + 0.1), 0.5), **kw)
    below = simulate_llm(TINY, edge, speculative=Speculative(4, max(0.0, a_star - 0.1), 0.5), **kw)
    assert above.tpot_s < plain.tpot_s and above.speculative["helps"]
    assert below.tpot_s > plain.tpot_s and not below.speculative["helps"]
    # the draft (half the blocks skipped) is cheaper than a full decode step
    assert probe.speculative["draft_step_s"] < plain.decode_samples[-1]["step_s"]


def test_llm_runs_on_a_gpu_spec_as_one_core():
    gpu = load_arch(ARCH_DIR / "gpu_a100_sxm4_80gb.yaml")
    result = simulate_llm(TINY, replicate(gpu, 1), prompt_len=128, output_len=9, batch=2)
    hbm_bytes_per_s = 1446 * 1410e6                  # 2039 GB/s, fp16 weights: 2 bytes each
    assert result.tpot_s >= (2 * WEIGHT_BYTES + 2 * kv_bytes(129)) / hbm_bytes_per_s
    assert result.ttft_s > 0 and result.tokens_per_s > 0 and result.energy_per_token_j > 0


def test_bad_llm_arguments_are_clear_errors(edge):
    with pytest.raises(SparsimInputError, match="output-len"):
        simulate_llm(TINY, edge, prompt_len=8, output_len=0)
    with pytest.raises(SparsimInputError, match="core count"):
        simulate_llm(TINY, edge, prompt_len=8, output_len=2, cores=0)
    with pytest.raises(SparsimInputError, match="acceptance"):
        simulate_llm(TINY, edge, prompt_len=8, output_len=2, speculative=Speculative(2, 1.5, 0.5))


def _cli(*args):
    # the `sparsim` console script, run from this interpreter
    code = "import sys; from simulator.cli import main; sys.argv[0] = 'sparsim'; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_cli_llm_json_and_timeline(tmp_path):
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps(TINY))
    chrome = tmp_path / "t.json"
    proc = _cli("llm", "--arch", str(ARCH_DIR / "edge_npu_32x32_os.yaml"), "--model", str(cfg), "--prompt-len", "64",
                "--output-len", "8", "--batch", "2", "--cores", "2", "--weights", "2:4", "--json",
                "--timeline", str(chrome))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    for key in ("ttft_s", "tpot_s", "total_s", "tokens_per_s", "energy_per_token_j"):
        assert data[key] > 0
    events = json.loads(chrome.read_text())["traceEvents"]
    assert {e["tid"] for e in events if e["ph"] == "X"} == {0, 1}


def test_cli_core_count_zero_exits_2(tmp_path):
    proc = _cli("llm", "--arch", str(ARCH_DIR / "edge_npu_32x32_os.yaml"), "--model", "llama2-7b",
                "--prompt-len", "8", "--output-len", "2", "--cores", "0")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error:") and "core count must be at least 1" in proc.stderr
