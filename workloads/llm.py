"""The LLM runner on a Hugging Face config: `simulate_llm` (what `sparsim llm` runs).

`simulator.llm.run_llm` simulates prefill, the decode loop and speculation for any model that
builds a trace per pass; `HFModel` is that model for a config.json plus a sparsity recipe
(`workloads.extract.hf_config`, the same recipe as `sparsim extract hf-config`). Measured
expert counts are read as a routing distribution and rescaled to each pass's token count
(prefill, decode and verify route different numbers of tokens), capped at one assignment per
token and expert (`simulator.split`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from simulator.llm import LLMResult, Speculative, run_llm
from simulator.split import largest_remainder
from simulator.trace import Trace


@dataclass
class HFModel:
    """Traces of a Hugging Face config's passes under one sparsity recipe."""
    config: Any                       # config.json path, shipped name or dict
    recipe: dict = field(default_factory=dict)   # weights, activations, kv, attention, routing, zipf_skew, bits
    expert_counts: Any = None         # measured per-expert token counts (a routing distribution)
    shape: Any = None
    distribution: list[list[int]] | None = None

    def load(self) -> None:
        from workloads.extract.hf_config import load_expert_counts, model_shape
        self.shape = model_shape(self.config)
        if self.expert_counts is not None and self.shape.experts:
            self.distribution = load_expert_counts(self.expert_counts, self.shape.experts, self.shape.layers)

    def trace(self, *, batch: int, skip_layers: float, **kw) -> Trace:
        from workloads.extract.hf_config import trace_from_hf_config
        routed = {}
        if self.distribution is not None:
            tokens = batch * (kw["seq_len"] if kw["phase"] == "prefill" else 1)
            routed = {"routing": "file",
                      "expert_counts": [largest_remainder(tokens * self.shape.top_k, row, cap=tokens)
                                        for row in self.distribution]}
        return trace_from_hf_config(self.config, batch=batch, skip_layers=skip_layers, **{**self.recipe, **routed},
                                    shape=self.shape, **kw)


def simulate_llm(config, target, *, prompt_len: int, output_len: int, batch: int = 1, cores: int = 1,
                 weights=None, activations=None, kv=None, attention=None, skip_layers: float = 0.0,
                 routing: str = "uniform", zipf_skew: float = 1.0, expert_counts=None, bits: int | None = None,
                 speculative: Speculative | None = None, samples: int = 5, policy: str | None = None,
                 fusion: bool = False, progress: Callable[[str], None] | None = None) -> LLMResult:
    """Prefill + decode of `output_len` tokens for `batch` prompts of `prompt_len` tokens.

    `config` is a Hugging Face config.json path, a shipped config name, or a dict; `target` a
    `System` or an `Arch` (then `cores` copies of it share its DRAM). The sparsity recipe
    (`weights`, `activations`, `kv`, `attention`, `skip_layers`, `routing`, `zipf_skew`,
    `expert_counts`, `bits`) is `workloads.extract.hf_config`'s, applied to every pass."""
    recipe = dict(weights=weights, activations=activations, kv=kv, attention=attention, routing=routing,
                  zipf_skew=zipf_skew, bits=bits)
    model = HFModel(config, recipe, expert_counts)
    return run_llm(model, target, prompt_len=prompt_len, output_len=output_len, batch=batch, cores=cores,
                   skip_layers=skip_layers, speculative=speculative, samples=samples, policy=policy,
                   fusion=fusion, progress=progress)
