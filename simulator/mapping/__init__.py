"""Mapping engine: how an op's loop nest is unrolled onto an array and tiled through memory.

One concept per module: `spec` (the `compute.mapping` block), `loopnest` (an op's dims, operand
footprints and the spatial unrolling), `reuse` (analytical access counts and timing of one
mapping, numba), `search` (the exhaustive, capacity-pruned mapping search, memoised), `cost`
(the engines' entry point: traffic per level and stalls of the chosen mapping) and `explain`
(the loop nest as text). See docs/mapping.md.
"""


def clear_cache() -> None:
    """Forget every memoised mapping and per-arch fact (benchmarks time cold searches)."""
    from simulator.mapping import cost, search
    search._MEMO.clear()
    cost._RESULTS.clear()
    cost._FACTS.clear()
