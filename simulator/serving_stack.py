"""Serving-stack time: work a measured LLM serving stack adds to the GPU kernels, as data of that stack.

sparsim's `llm` command costs the kernels of prefill and decode on the accelerator. A published
end-to-end latency also contains what the serving software does around them: per request (setup,
tokenisation, scheduling) and per sequence and generated token (sampling, stop checks, host-side
token handling; work every tensor-parallel rank repeats). Like the per-call floor of a kernel-timing
method (`analysis/measured`), this belongs to how a figure was measured, not to the GPU, so it is a
profile of the stack on a platform (`arch_configs/serving_stacks/*.yaml`), applied only when asked
(`sparsim llm --stack NAME`); the default is kernels only.

A profile has, per platform (arch spec name), two times:

- `per_request_ms`: once per request batch, before the first token;
- `per_sequence_token_ms`: once per sequence for every output token (first token included).

`with_stack` adds them to an `LLMResult`: ttft += per_request + batch x per_sequence_token, each
decode step += batch x per_sequence_token. During that time the GPU waits, so the energy grows by the
board's idle power x the added time where the spec has a power block (an approximation: host power
is not charged). `per_sequence_token_from_tp_table` is how the shipped values are derived from a
published latency table that lists several tensor-parallel sizes (docs/gpu.md, "Serving stack").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from simulator.errors import SparsimInputError
from simulator.power import summary as power_summary

NONE = "none"


@dataclass(frozen=True)
class ServingStack:
    """One stack's added times on one platform."""
    name: str
    platform: str
    per_request_s: float = 0.0
    per_sequence_token_s: float = 0.0
    source: str = ""

    def added_s(self, batch: int) -> tuple[float, float]:
        """(time added before the first token, time added to each later decode step)."""
        per_token = batch * self.per_sequence_token_s
        return self.per_request_s + per_token, per_token

    def total_added_s(self, batch: int, output_len: int) -> float:
        first, step = self.added_s(batch)
        return first + step * max(output_len - 1, 0)


def stack_folder() -> Path:
    from simulator.shipped import folder
    return folder("stacks")


def load_stack(name: str, platform: str) -> ServingStack | None:
    """The profile `name` (a shipped name or a YAML path) for the arch spec named `platform`; None for 'none'."""
    if name == NONE:
        return None
    from simulator.shipped import find, names
    path = Path(name) if Path(name).is_file() else find("stacks", name)
    if path is None:
        raise SparsimInputError(f"no serving-stack profile '{name}'", field="--stack",
                                hint=f"one of: {', '.join([NONE] + names('stacks'))}, or a YAML path")
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise SparsimInputError(f"cannot read the profile ({exc.__class__.__name__})", path=path) from None
    except yaml.YAMLError as exc:
        raise SparsimInputError(f"not valid YAML ({str(exc).splitlines()[0]})", path=path) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("platforms"), dict) or not doc["platforms"]:
        raise SparsimInputError("a serving-stack profile needs a non-empty 'platforms' mapping", path=path,
                                field="platforms", hint="platforms: {ARCH_NAME: {per_sequence_token_ms: 0.2}}")
    entry = doc["platforms"].get(platform)
    if entry is None:
        raise SparsimInputError(f"no entry for platform '{platform}'", path=path, field="platforms",
                                hint=f"the profile was measured on: {', '.join(map(str, doc['platforms']))}")
    keys = ("per_request_ms", "per_sequence_token_ms")
    if not isinstance(entry, dict) or set(entry) - set(keys):
        raise SparsimInputError(f"must be a mapping with keys {' / '.join(keys)} (got {entry!r})"[:300], path=path,
                                field=f"platforms.{platform}", hint="e.g. {per_sequence_token_ms: 0.2}")
    return ServingStack(name=str(doc.get("name", path.stem)), platform=platform,
                        per_request_s=_ms(entry, "per_request_ms", path, platform) * 1e-3,
                        per_sequence_token_s=_ms(entry, "per_sequence_token_ms", path, platform) * 1e-3,
                        source=str(doc.get("source", "")))


def _ms(entry, key: str, path: Path, platform: str) -> float:
    value = entry.get(key, 0.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
        raise SparsimInputError(f"must be a number of milliseconds >= 0 (got {value!r})", path=path,
                                field=f"platforms.{platform}.{key}")
    return float(value)


def with_stack(result, stack: ServingStack | None, idle_w: float | None = None, tdp_w: float | None = None):
    """`result` (an `LLMResult`, kernels only) with the stack's time added; unchanged when `stack` is None."""
    if stack is None:
        return replace(result, serving_stack=NONE, stack_s=0.0)
    first, step = stack.added_s(result.batch)
    added = stack.total_added_s(result.batch, result.output_len)
    total = result.total_s + added
    energy = result.energy_j + (idle_w or 0.0) * added
    tokens = result.batch * result.output_len
    steps = result.output_len - 1
    return replace(result, serving_stack=stack.name, stack_s=added, ttft_s=result.ttft_s + first,
                   tpot_s=result.tpot_s + step if steps > 0 else 0.0, total_s=total, tokens_per_s=tokens / total,
                   energy_j=energy, energy_per_token_j=energy / tokens,
                   prefill_energy_j=result.prefill_energy_j + (idle_w or 0.0) * first,
                   decode_energy_j=result.decode_energy_j + (idle_w or 0.0) * step * steps,
                   power=power_summary(energy, total, tdp_w))


def apply_profile(result, name: str, archs: list):
    """`result` with the profile `name` for the platform of `archs` (the system's cores, one spec name)."""
    from simulator.power import system_tdp_w
    if name == NONE:
        return with_stack(result, None)
    platforms = sorted({a.name for a in archs})
    if len(platforms) != 1:
        raise SparsimInputError(f"a serving-stack profile is per platform; this system mixes {', '.join(platforms)}",
                                field="--stack", hint="use --stack none with a heterogeneous system")
    idle = [getattr(a.compute, "power", None) for a in archs]
    idle_w = sum(p.idle_w for p in idle) if all(p is not None for p in idle) else None
    return with_stack(result, load_stack(name, platforms[0]), idle_w=idle_w, tdp_w=system_tdp_w(list(archs)))


def tp_split(growth_by_tp: dict[int, float]) -> tuple[float, float]:
    """(a, b): least-squares fit of y(TP) = a + b / TP. b is what more GPUs share, a what each repeats."""
    if len(growth_by_tp) < 2:
        raise ValueError("a + b/TP needs at least two tensor-parallel sizes")
    x = [1.0 / tp for tp in growth_by_tp]
    y = list(growth_by_tp.values())
    mx, my = sum(x) / len(x), sum(y) / len(y)
    b = sum((xi - mx) * (yi - my) for xi, yi in zip(x, y)) / sum((xi - mx) ** 2 for xi in x)
    return my - b * mx, b


def inconsistent_entries(table: dict[int, dict[int, float]]) -> set[tuple[int, int]]:
    """(tp, batch) entries of a latency table {tp: {batch: ms}} that exceed a larger batch's latency at the
    same TP: more sequences through the same engine cannot finish sooner, so such an entry is a misprint
    or a disturbed run and is left out of the estimate."""
    return {(tp, b) for tp, row in table.items() for b, ms in row.items()
            if any(b2 > b and ms2 < ms for b2, ms2 in row.items())}


def per_sequence_token_from_tp_table(table: dict[int, dict[int, float]], output_len: int) -> float:
    """Per-sequence, per-output-token stack time (ms) from a published latency table {tp: {batch: ms}}.

    For every batch B > 1, the growth over batch 1 at each TP is split as a_B + b_B / TP (`tp_split`);
    a_B is growth that more GPUs do not shrink. The stack's share of it is (B - 1) x output_len x t, so
    t is the least-squares slope of a_B on (B - 1) x output_len through the origin. Entries flagged by
    `inconsistent_entries` are left out; a batch needs two TPs with both it and batch 1."""
    bad = inconsistent_entries(table)
    num = den = 0.0
    batches = sorted({b for row in table.values() for b in row if b > 1})
    for B in batches:
        growth = {tp: row[B] - row[1] for tp, row in table.items()
                  if B in row and 1 in row and (tp, B) not in bad and (tp, 1) not in bad}
        if len(growth) < 2:
            continue
        a, _ = tp_split(growth)
        x = (B - 1) * output_len
        num, den = num + a * x, den + x * x
    if den == 0:
        raise ValueError("no batch > 1 has two tensor-parallel sizes to split")
    return num / den


__all__ = ["NONE", "ServingStack", "load_stack", "with_stack", "apply_profile", "tp_split", "inconsistent_entries",
           "per_sequence_token_from_tp_table"]
