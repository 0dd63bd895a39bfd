"""Integer shares of a total: the capped largest-remainder split.

One home for the rounding that shards an op over cores (`simulator.system`), rescales
measured expert counts to a pass's token count (`simulator.llm`) and routes tokens to
experts by a Zipf law (`workloads.extract.hf_config`). Each share is the floor of its
proportional ideal; the units that rounding leaves over go to the largest fractional parts
(ties to the lower index), so the shares sum to the total exactly (Hamilton's method).
"""

from __future__ import annotations

import math
from typing import Sequence


def largest_remainder(total: int, weights: Sequence[float] | None = None, parts: int | None = None,
                      cap: int | None = None) -> list[int]:
    """`total` units over `len(weights)` (or `parts` equal) shares in proportion to the weights.

    With `cap`, no share exceeds it (at most `cap x parts` units are placed): what a full share
    cannot take goes to the others in proportion, then to shares of weight zero. Zero weights
    (or none) split evenly. Returns integers summing to min(total, cap x parts)."""
    n = len(weights) if weights else parts
    if not weights:
        if cap is None:
            base, extra = divmod(total, n)
            return [base + (1 if i < extra else 0) for i in range(n)]
        weights = [1.0] * n
    counts = [0] * n
    weight = [float(w) for w in weights] if any(weights) else [1.0] * n
    left = total if cap is None else min(total, cap * n)
    while left > 0:
        open_ = [e for e in range(n) if (cap is None or counts[e] < cap) and weight[e] > 0]
        if not open_:
            weight = [1.0] * n
            continue
        wsum = sum(weight[e] for e in open_)
        ideal = {e: left * weight[e] / wsum for e in open_}
        add = {e: math.floor(ideal[e]) if cap is None else min(cap - counts[e], math.floor(ideal[e]))
               for e in open_}
        spare = left - sum(add.values())
        for e in sorted(open_, key=lambda e: (-(ideal[e] - math.floor(ideal[e])), e)):
            if spare == 0:
                break
            if cap is None or counts[e] + add[e] < cap:
                add[e] += 1
                spare -= 1
        for e in open_:
            counts[e] += add[e]
        left -= sum(add.values())
    return counts
