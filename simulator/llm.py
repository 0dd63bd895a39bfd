"""End-to-end LLM inference: prefill, a decode loop with a growing KV cache, self-speculation.

What is modelled
- Prefill: one forward pass over `batch` prompts of `prompt_len` tokens (LM head on the
  last position only, as serving engines do) on the system (`simulator.system`); it
  yields the first output token, so time-to-first-token = prefill time.
- Decode: output tokens 2..T each take one decode step (one query token per sequence)
  whose attention reads a KV cache of `prompt_len + j` positions at step j, so KV traffic
  grows with length; KV pruning (`kv`), sparse attention (`attention`), weight and
  activation sparsity, layer skipping (`skip_layers`), MoE routing and operand bits apply
  through the trace the model builds (`workloads.llm`: the same recipe as `sparsim extract`).
  Measured expert counts (`expert_counts`) are read as a routing distribution and
  rescaled to each pass's token count (prefill, decode and verify route different numbers
  of tokens), capped at one assignment per token and expert.
  tpot = (total - ttft) / (T - 1); tokens/s = batch x T / total. Under layer pipelining
  the batch is split into the system's `microbatches` (at most one sequence each).
- Self-speculative decoding with layer skipping (Draft & Verify, Zhang et al. ACL 2024;
  SWIFT, Xia et al. 2024): the draft is the same model with a fraction `skip_fraction`
  of its blocks skipped (on top of any `skip_layers` of the model itself: the draft skips
  1 - (1 - skip_layers)(1 - skip_fraction)); it proposes k tokens one step at a time, then the full model
  verifies them in one pass over k + 1 positions. With a per-token acceptance rate a,
  independent across positions, a cycle yields E(a) = (1 - a^(k+1)) / (1 - a) tokens
  (Leviathan et al., ICML 2023), so speculation pays iff
  E(a) > (k·t_draft + t_verify) / t_decode; `breakeven_acceptance` solves that equality.

Approximation (speed): decode is not simulated step by step. The step time and energy
are simulated at `samples` KV lengths spread over [prompt_len + 1, prompt_len + T - 1]
and the sum over all steps is the sum of the piecewise-linear interpolation through
them. Step time is close to linear in the KV length (weights are a constant, KV traffic
and attention MACs are linear); the fold/tile rounding of the engines makes it slightly
stepwise, which the interpolation smooths. Speculative decoding is costed with the same
sampling, per generated token position; every draft step of a cycle is costed at the
cycle's starting KV length (the k - 1 extra cached positions are neglected).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from simulator.errors import SparsimInputError
from simulator.power import summary as power_summary, system_tdp_w
from simulator.system import Interval, System, SystemResult, replicate, simulate_system
from simulator.trace import Trace


@dataclass(frozen=True)
class Speculative:
    """Self-speculative decoding: draft `draft_tokens` tokens with `skip_fraction` of the blocks skipped."""
    draft_tokens: int = 4
    acceptance_rate: float = 0.8
    skip_fraction: float = 0.5

    def check(self) -> None:
        if self.draft_tokens < 1:
            raise SparsimInputError(f"draft tokens must be >= 1 (got {self.draft_tokens})", field="--draft-tokens")
        if not 0.0 <= self.acceptance_rate <= 1.0:
            raise SparsimInputError(f"acceptance rate {self.acceptance_rate} must be in [0, 1]", field="--acceptance")
        if not 0.0 < self.skip_fraction < 1.0:
            raise SparsimInputError(f"draft skip fraction {self.skip_fraction} must be in (0, 1)",
                                    field="--draft-skip",
                                    hint="the fraction of transformer blocks the draft skips, e.g. 0.5")


def expected_tokens_per_cycle(acceptance: float, k: int) -> float:
    """E = 1 + a + ... + a^k: accepted drafts plus the verifier's own token (Leviathan et al. 2023)."""
    if acceptance >= 1.0:
        return k + 1.0
    return (1.0 - acceptance ** (k + 1)) / (1.0 - acceptance)


def breakeven_acceptance(cost_ratio: float, k: int) -> float | None:
    """The acceptance a* with E(a*) = cost_ratio (cycle cost / plain decode step cost).

    0 when even a = 0 pays; None when even a = 1 cannot pay (cost_ratio >= k + 1)."""
    if cost_ratio <= 1.0:
        return 0.0
    if cost_ratio >= k + 1:
        return None
    lo, hi = 0.0, 1.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if expected_tokens_per_cycle(mid, k) < cost_ratio:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


@dataclass
class LLMResult:
    model: str
    system: str
    prompt_len: int
    output_len: int
    batch: int
    ttft_s: float
    tpot_s: float
    total_s: float
    tokens_per_s: float
    energy_j: float
    energy_per_token_j: float
    prefill_energy_j: float
    decode_energy_j: float
    decode_samples: list[dict] = field(default_factory=list)   # kv_len, step_s, step_energy_j
    speculative: dict | None = None
    prefill: SystemResult | None = None
    decode_step: SystemResult | None = None
    power: dict = field(default_factory=dict)   # average_power_w, board_tdp_w, within_tdp (simulator.power)
    serving_stack: str = "none"   # "none" = GPU/accelerator kernels only; else a profile (simulator.serving_stack)
    stack_s: float = 0.0          # time that profile adds (included in ttft/tpot/total)

    def to_dict(self) -> dict:
        return {"model": self.model, "system": self.system, "prompt_len": self.prompt_len,
                "output_len": self.output_len, "batch": self.batch, "ttft_s": self.ttft_s, "tpot_s": self.tpot_s,
                "total_s": self.total_s, "tokens_per_s": self.tokens_per_s, "energy_j": self.energy_j,
                "energy_per_token_j": self.energy_per_token_j, "prefill_energy_j": self.prefill_energy_j,
                "decode_energy_j": self.decode_energy_j, "decode_samples": self.decode_samples,
                "speculative": self.speculative, "serving_stack": self.serving_stack, "stack_s": self.stack_s,
                **self.power}

    def timeline(self) -> list[Interval]:
        """Prefill followed by the last simulated decode step (per-core intervals)."""
        out = list(self.prefill.intervals) if self.prefill else []
        if self.decode_step is not None:
            offset = self.ttft_s
            for iv in self.decode_step.intervals:
                out.append(Interval(iv.core, f"decode: {iv.name}", iv.op, iv.start_s + offset, iv.end_s + offset,
                                    iv.category))
        return out


MAX_SAMPLES = 256  # decode steps simulated (the rest are interpolated)


def _sample_points(first: int, last: int, samples: int) -> list[int]:
    if last <= first or samples <= 1:
        return sorted({first, last})
    return sorted({int(round(x)) for x in np.linspace(first, last, samples)})


def _sum_interpolated(points: list[int], values: list[float], first: int, last: int) -> float:
    """Sum over every integer L in [first, last] of the piecewise-linear curve through (points, values)."""
    if last < first:
        return 0.0
    # closed form per segment (no array of every step, so a long generation costs nothing extra);
    # like np.interp, the curve is flat beyond its first and last points
    total = values[0] * max(0, min(points[0], last + 1) - first) + values[-1] * max(0, last - max(points[-1], first - 1))
    for (a, va), (b, vb) in zip(zip(points, values), zip(points[1:], values[1:])):
        lo, hi = max(a, first), min(b - 1, last)  # the integers of [a, b)
        if hi >= lo:
            n = hi - lo + 1
            total += n * va + (vb - va) / (b - a) * ((lo + hi) * n / 2 - n * a)
    if first <= points[-1] <= last:
        total += values[-1]
    return float(total)


class LLMModel(Protocol):
    """What the LLM runner needs of a model: one trace per forward pass.

    `workloads.llm.HFModel` builds them from a Hugging Face config with a sparsity recipe."""

    def load(self) -> None:
        """Read and check the model (called once, after the run's own arguments are checked)."""

    def trace(self, *, batch: int, skip_layers: float, phase: str, seq_len: int, kv_len: int | None = None,
              logits: str = "last") -> Trace:
        """The trace of one pass of `batch` sequences (`phase` prefill or decode)."""


def _speculative_decode(run: Callable[..., SystemResult], speculative: Speculative, skip_layers: float,
                        prompt_len: int, output_len: int, points: list[int], decode_s: float):
    """(the speculation summary, decode time, decode energy) when every cycle drafts k tokens with
    blocks skipped and verifies them in one pass, costed at the sampled KV lengths `points`."""
    first, last = prompt_len + 1, prompt_len + output_len - 1
    k = speculative.draft_tokens
    draft_skip = 1.0 - (1.0 - skip_layers) * (1.0 - speculative.skip_fraction)
    draft = {L: run(phase="decode", seq_len=prompt_len, kv_len=L, skip=draft_skip) for L in points}
    verify = {L: run(phase="prefill", seq_len=k + 1, kv_len=L + k, logits="all") for L in points}
    cycle_s = [k * draft[L].makespan_s + verify[L].makespan_s for L in points]
    cycle_j = [(k * draft[L].energy_pj + verify[L].energy_pj) * 1e-12 for L in points]
    cycle_total_s = _sum_interpolated(points, cycle_s, first, last)
    cycle_total_j = _sum_interpolated(points, cycle_j, first, last)
    per_cycle = expected_tokens_per_cycle(speculative.acceptance_rate, k)
    ratio = cycle_total_s / decode_s if decode_s > 0 else math.inf
    spec_decode_s = cycle_total_s / per_cycle
    info = {"draft_tokens": k, "acceptance_rate": speculative.acceptance_rate,
            "skip_fraction": speculative.skip_fraction, "draft_skip_probability": draft_skip,
            "tokens_per_cycle": per_cycle,
            "draft_step_s": draft[points[-1]].makespan_s, "verify_s": verify[points[-1]].makespan_s,
            "cycle_cost_ratio": ratio, "breakeven_acceptance": breakeven_acceptance(ratio, k),
            "plain_tpot_s": decode_s / (output_len - 1), "speedup": decode_s / spec_decode_s,
            "helps": spec_decode_s < decode_s}
    return info, spec_decode_s, cycle_total_j / per_cycle


def run_llm(model: LLMModel, target: System | object, *, prompt_len: int, output_len: int, batch: int = 1,
            cores: int = 1, skip_layers: float = 0.0, speculative: Speculative | None = None, samples: int = 5,
            policy: str | None = None, fusion: bool = False,
            progress: Callable[[str], None] | None = None) -> LLMResult:
    """Prefill + decode of `output_len` tokens for `batch` prompts of `prompt_len` tokens.

    `target` is a `System` or an `Arch` (then `cores` copies of it share its DRAM); `model` builds
    each pass's trace. `fusion` keeps fusable outputs on chip on a one-core system
    (`simulator.graph`). `progress`, when given, is called with a short label before each pass."""
    for label, v in (("--prompt-len", prompt_len), ("--output-len", output_len), ("--batch", batch)):
        if not isinstance(v, int) or v < 1:
            raise SparsimInputError(f"{label.lstrip('-')} must be a positive integer (got {v!r})", field=label)
    if not 2 <= samples <= MAX_SAMPLES:
        raise SparsimInputError(f"samples must be in 2..{MAX_SAMPLES} (got {samples})", field="--samples",
                                hint="each sample simulates one decode step")
    system = target if isinstance(target, System) else replicate(target, cores)
    if policy is not None:
        system = system.with_(policy=policy)
    if speculative is not None:
        speculative.check()
    if not 0.0 <= skip_layers < 1.0:
        raise SparsimInputError(f"skip layers {skip_layers} must be in [0, 1)", field="--skip-layers",
                                hint="the fraction of block executions the model skips (0 = none)")
    model.load()

    # Layer pipelining splits the batch into micro-batches that follow each other through the stages.
    micro = batch
    if system.policy == "pipeline" and system.microbatches > 1:
        system = system.with_(microbatches=min(system.microbatches, batch))
        micro = math.ceil(batch / system.microbatches)
    elif system.policy == "pipeline":
        system = system.with_(microbatches=1)

    def run(*, skip: float = skip_layers, **kw) -> SystemResult:
        if progress is not None:
            progress(f"{kw['phase']} seq {kw['seq_len']}" + (f" kv {kw['kv_len']}" if "kv_len" in kw else ""))
        trace = model.trace(batch=micro, skip_layers=skip, **kw)
        try:
            return simulate_system(trace, system, fusion=fusion)
        except SparsimInputError as exc:  # an op of the generated trace: the sizes come from the flags
            if exc.path is None and (exc.field or "").startswith("ops["):
                raise SparsimInputError(f"{exc.field}: {exc.message}", field="--prompt-len/--output-len/--batch",
                                        hint=exc.hint) from None
            raise

    prefill = run(phase="prefill", seq_len=prompt_len, logits="last")
    ttft = prefill.makespan_s
    prefill_energy = prefill.energy_pj * 1e-12

    first, last = prompt_len + 1, prompt_len + output_len - 1
    points = _sample_points(first, last, samples) if output_len > 1 else []
    steps: dict[int, SystemResult] = {L: run(phase="decode", seq_len=prompt_len, kv_len=L) for L in points}
    decode_s = _sum_interpolated(points, [steps[L].makespan_s for L in points], first, last)
    decode_j = _sum_interpolated(points, [steps[L].energy_pj * 1e-12 for L in points], first, last)
    samples_out = [{"kv_len": L, "step_s": steps[L].makespan_s, "step_energy_j": steps[L].energy_pj * 1e-12,
                    "dram_bytes": steps[L].dram_bytes} for L in points]

    spec_info = None
    if speculative is not None and output_len > 1:
        spec_info, decode_s, decode_j = _speculative_decode(run, speculative, skip_layers, prompt_len, output_len,
                                                            points, decode_s)

    total = ttft + decode_s
    tokens = batch * output_len
    energy = prefill_energy + decode_j
    power = power_summary(energy, total, system_tdp_w([c.arch for c in system.cores]))
    return LLMResult(model=prefill.workload, system=system.name, prompt_len=prompt_len, output_len=output_len,
                     batch=batch, ttft_s=ttft, tpot_s=decode_s / (output_len - 1) if output_len > 1 else 0.0,
                     total_s=total, tokens_per_s=tokens / total, energy_j=energy, energy_per_token_j=energy / tokens,
                     prefill_energy_j=prefill_energy, decode_energy_j=decode_j, decode_samples=samples_out,
                     speculative=spec_info, prefill=prefill, decode_step=steps[points[-1]] if points else None,
                     power=power)


__all__ = ["run_llm", "LLMModel", "LLMResult", "Speculative", "expected_tokens_per_cycle", "breakeven_acceptance"]
