"""The system and LLM runners as plain functions: progress callbacks, and an LLM model that is not
a Hugging Face config (the runner only needs a trace per pass)."""

from __future__ import annotations

import pytest

from simulator import load_arch
from simulator.llm import run_llm
from simulator.system import replicate, simulate_system
from simulator.trace import trace_from_dict

from conftest import ARCH_DIR

EDGE = ARCH_DIR / "edge_npu_32x32_os.yaml"


def _chain(n: int, M: int = 64):
    ops = [{"name": f"g{i}", "kind": "gemm", "dims": {"M": M, "N": 128, "K": 128}} for i in range(n)]
    return trace_from_dict({"schema_version": 2, "name": "chain", "ops": ops})


@pytest.mark.parametrize("policy", ["layer_by_layer", "graph"])
def test_system_progress_names_every_op_in_order(policy):
    seen: list[str] = []
    quiet = simulate_system(_chain(3), replicate(load_arch(EDGE), 2), policy=policy)
    told = simulate_system(_chain(3), replicate(load_arch(EDGE), 2), policy=policy, progress=seen.append)
    assert seen == ["g0", "g1", "g2"]
    assert told.makespan_s == quiet.makespan_s   # telling progress changes nothing


class ChainModel:
    """A toy model: one GEMM per token position, nothing else (M = batch x positions in the pass)."""

    def __init__(self):
        self.loaded = 0

    def load(self) -> None:
        self.loaded += 1

    def trace(self, *, batch, skip_layers, phase, seq_len, kv_len=None, logits="last"):
        rows = batch * (seq_len if phase == "prefill" else 1)
        return _chain(1, M=rows)


def test_llm_runner_takes_any_trace_builder():
    model, seen = ChainModel(), []
    r = run_llm(model, load_arch(EDGE), prompt_len=8, output_len=4, samples=3, progress=seen.append)
    assert model.loaded == 1
    assert seen[0] == "prefill seq 8" and all(s.startswith("decode seq 8 kv ") for s in seen[1:])
    # prefill is one pass over the chain trace; the three decode steps are identical one-row passes
    step = simulate_system(_chain(1, M=1), replicate(load_arch(EDGE), 1)).makespan_s
    assert r.ttft_s == pytest.approx(simulate_system(_chain(1, M=8), replicate(load_arch(EDGE), 1)).makespan_s)
    assert r.tpot_s == pytest.approx(step)
    assert r.total_s == pytest.approx(r.ttft_s + 3 * step)
