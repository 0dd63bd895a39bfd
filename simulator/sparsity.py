"""Distribution models of operand zeros: what an engine may assume about where they are.

Engines ask two questions of an operand's `Sparsity`:

1. *Per M-group*: how many of the M consecutive values along the reduction (K) are nonzero?
   (`group_distribution`). N:M hardware needs this to know which groups fit its N slots.
2. *Per row/column*: how many nonzeros does each row of the reduction hold, and what is the
   largest count over the units mapped onto one fold of a PE array? (`tile_max_nnz`).
   Zero-skipping arrays wait for their busiest unit.

Each answer names the model used, in this order of preference:
- `measured`: the trace's measured statistics (per-group histogram for this M; per-row
  counts, exact when there is one count per unit, else an i.i.d. sample);
- `measured M'->M`: a histogram for another group size, split (hypergeometric, M' a
  multiple of M) or combined (independent groups, M a multiple of M');
- `exact N:M`: N:M data viewed in groups that are whole multiples of its own M;
- `hypergeometric`: N:M data viewed in smaller groups (N positions uniform within each
  M-group, as Sparseloop's fixed-structured model);
- `binomial`: uniform random zeros at the stated density (Sparseloop's default for
  unstructured data, with groups much smaller than the tensor, binomial ~ hypergeometric);
- `block`: zeros come in whole blocks; the number of nonzero blocks is binomial.

`nm_mode_choice` picks, for N:M hardware, the supported mode that minimises the expected
slots per group, with groups holding more than N nonzeros handled by the hardware's
overflow policy: `split` (extra passes, ceil(j/N) per group), `group_dense` (that group
runs at the dense rate) or `op_dense` (any overflowing group sends the whole op dense,
like Ampere's 2:4 path, which needs a 2:4-compliant matrix; Mishra et al. 2021).
`tile_max_slots` then gives the per-fold load imbalance of those extra passes: a unit's
slots are the sum over its groups (exact convolution of the per-group slot distribution),
and a fold waits for the busiest of its units (expected maximum of i.i.d. units).
Approximations: units (columns/rows) are independent draws from one distribution; groups
within a unit are independent (measured histograms are pooled over the whole tensor).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Callable

import numpy as np
from pydantic import BeforeValidator

from simulator.errors import SparsimInputError
from simulator.kernels.imbalance import binomial_pmf, expected_max_of_draws, fold_max
from simulator.trace import Sparsity

OVERFLOW_POLICIES = ("split", "group_dense", "op_dense")


# ----------------------------------------------------------------------------- patterns

def is_power_of_two(x: int) -> bool:
    return x >= 1 and (x & (x - 1)) == 0


def index_bits(m: int) -> int:
    """Bits of position metadata per kept value in an M-group: ceil(log2 M) (at least 1)."""
    return max(1, math.ceil(math.log2(m))) if m > 1 else 0


def check_nm(n: int, m: int, *, field: str, need_power_of_two: bool = False) -> tuple[int, int]:
    """Validate an N:M pair; one located SparsimInputError per mistake."""
    if m < 1:
        raise SparsimInputError(f"N:M group size m={m} must be >= 1", field=field)
    if n < 1:
        raise SparsimInputError(f"N:M needs n >= 1, got {n}:{m}", field=field, hint="0 keeps no values")
    if n > m:
        raise SparsimInputError(f"N:M needs n <= m, got {n}:{m}", field=field,
                                hint="n counts the values kept in each group of m")
    if need_power_of_two and not is_power_of_two(m):
        raise SparsimInputError(f"N:M group size m={m} is not a power of two, which this hardware's "
                                "index decoder needs", field=field, hint="use m in 2, 4, 8, 16, ...")
    return n, m


def split_nm(text) -> tuple[int, int] | None:
    """'2:4' -> (2, 4) as written (not yet validated); None when the text is not of the form N:M.
    The one reader of N:M text: callers that word their own errors use this, others `parse_pattern`."""
    try:
        n, m = (int(x) for x in str(text).split(":"))
    except ValueError:
        return None
    return n, m


def parse_pattern(text: str, *, field: str, need_power_of_two: bool = False) -> tuple[int, int]:
    """'2:4' -> (2, 4), validated."""
    pair = split_nm(text)
    if pair is None:
        raise SparsimInputError(f"pattern '{text}' is not of the form N:M", field=field, hint="e.g. '2:4'")
    n, m = pair
    return check_nm(n, m, field=field, need_power_of_two=need_power_of_two)


def refuse_unquoted_nm(value):
    """A spec's list of N:M patterns before parsing: YAML reads an unquoted 2:4 as the base-60
    integer 124, so a number there is refused with the fix (a pydantic `mode="before"` validator body)."""
    for item in value if isinstance(value, list) else []:
        if isinstance(item, int):
            raise ValueError(f"pattern {item} is a number: YAML reads an unquoted N:M such as 2:4 as the "
                             "base-60 integer 124; quote it: '2:4'")
    return value


# A spec field listing N:M patterns as text ('2:4'); an unquoted 2:4 is refused with its fix.
NMPatternTexts = Annotated[list[str], BeforeValidator(refuse_unquoted_nm)]


def check_nm_texts(texts: list[str], *, need_power_of_two: bool = False) -> list[str]:
    """A spec's list of N:M pattern strings, each checked by `parse_pattern`; the first bad one raises
    ValueError (a pydantic validator body, so the error is located at the spec's field)."""
    for text in texts:
        try:
            parse_pattern(text, field="patterns", need_power_of_two=need_power_of_two)
        except SparsimInputError as exc:
            raise ValueError(f"'{text}': {exc.message}" + (f" ({exc.hint})" if exc.hint else "")) from None
    return texts


# ----------------------------------------------------------------------------- per-group model

@dataclass(frozen=True)
class GroupDistribution:
    """P(j nonzeros in an M-group along K), j = 0..m, and the model that produced it."""
    m: int
    probs: tuple[float, ...]
    model: str
    measured_groups: float | None = None   # groups in the measured histogram (1.0 for fractions), if measured
    overflow_counts: tuple[float, ...] | None = None  # measured counts (or fractions) per bin, for exact overflow tests

    def prob_more_than(self, n: int) -> float:
        return float(sum(self.probs[n + 1:]))

    @property
    def density(self) -> float:
        return float(sum(j * p for j, p in enumerate(self.probs)) / self.m)


def _normalised(hist) -> np.ndarray:
    h = np.asarray(hist, dtype=np.float64)
    return h / h.sum()


def _split_hist(probs: np.ndarray, big: int, small: int) -> np.ndarray:
    """Distribution in aligned sub-groups of `small` of groups of `big` (nonzeros placed uniformly)."""
    from scipy.stats import hypergeom  # deferred: scipy costs ~0.5 s at CLI start-up
    out = np.zeros(small + 1)
    for j, p in enumerate(probs):
        if p == 0:
            continue
        out += p * hypergeom.pmf(np.arange(small + 1), big, j, small)
    return out / out.sum()


def _combine_hist(probs: np.ndarray, times: int) -> np.ndarray:
    """Distribution of the sum over `times` independent groups."""
    out = np.array([1.0])
    for _ in range(times):
        out = np.convolve(out, probs)
    return out


def group_distribution(sp: Sparsity, m: int, *, k_block: int = 1) -> GroupDistribution:
    """Nonzeros per M-group along K of an operand with sparsity `sp`.

    `k_block` is the operand's block extent along K (for block sparsity).
    """
    if sp.kind == "dense":
        probs = np.zeros(m + 1)
        probs[m] = 1.0
        return GroupDistribution(m, tuple(probs), "dense")
    measured = sp.measured
    if measured is not None and measured.group_histograms:
        hists = {int(k): v for k, v in measured.group_histograms.items()}
        if m in hists:
            hist = hists[m]
            return GroupDistribution(m, tuple(_normalised(hist)), f"measured M={m} histogram",
                                     measured_groups=float(sum(hist)), overflow_counts=tuple(float(c) for c in hist))
        for big in sorted(hists):
            if big > m and big % m == 0:
                probs = _split_hist(_normalised(hists[big]), big, m)
                return GroupDistribution(m, tuple(probs), f"measured M={big} histogram split to M={m} (hypergeometric)")
        for small in sorted(hists, reverse=True):
            if small < m and m % small == 0:
                probs = _combine_hist(_normalised(hists[small]), m // small)
                return GroupDistribution(m, tuple(probs), f"measured M={small} histogram combined to M={m} "
                                         "(independent groups)")
    if sp.kind == "nm":
        n_d, m_d = sp.n, sp.m
        if m % m_d == 0:
            probs = np.zeros(m + 1)
            probs[n_d * (m // m_d)] = 1.0
            return GroupDistribution(m, tuple(probs), f"exact {n_d}:{m_d}")
        if m_d % m == 0:
            base = np.zeros(m_d + 1)
            base[n_d] = 1.0
            return GroupDistribution(m, tuple(_split_hist(base, m_d, m)), f"{n_d}:{m_d} hypergeometric in groups of {m}")
    d = operand_density(sp)
    if sp.kind == "block" and k_block > 1:
        if k_block % m == 0 or k_block >= m:
            probs = np.zeros(m + 1)
            probs[0], probs[m] = 1.0 - d, d
            return GroupDistribution(m, tuple(probs), f"block (whole {k_block}-long blocks along K)")
        if m % k_block == 0:
            blocks = binomial_pmf(m // k_block, d)
            probs = np.zeros(m + 1)
            probs[::k_block] = blocks
            return GroupDistribution(m, tuple(probs), f"block (binomial over {m // k_block} blocks per group)")
    return GroupDistribution(m, tuple(binomial_pmf(m, d)), f"binomial d={d:.3g}")


# ----------------------------------------------------------------------------- N:M hardware

@dataclass(frozen=True)
class ModeChoice:
    """The N:M mode an op runs in on N:M hardware and what it costs per M-group."""
    n: int
    m: int
    slots_per_group: float          # expected array slots (MAC steps) per group of m values
    overflow_probability: float     # P(a group holds more than n nonzeros)
    model: str                      # distribution model used
    dense: bool                     # True when the op runs at the dense rate
    slot_pmf: tuple[float, ...] = (0.0, 1.0)  # P(a group takes s slots), s = 0.. (deterministic: one entry)

    @property
    def k_factor(self) -> float:
        """Fraction of the dense reduction length the array iterates."""
        return self.slots_per_group / self.m

    @property
    def label(self) -> str:
        return "dense" if self.dense else f"{self.n}:{self.m}"


def _group_slots(j: int, n: int, m: int, policy: str) -> int:
    if policy == "split":
        return n * max(1, math.ceil(j / n))
    if policy == "group_dense":
        return n if j <= n else m
    return n  # op_dense: only used when no group overflows


def slot_pmf(dist: GroupDistribution, n: int, policy: str) -> np.ndarray:
    """P(one group of `dist.m` values takes s array slots), s = 0..max, in an n-slot mode."""
    slots = [_group_slots(j, n, dist.m, policy) for j in range(dist.m + 1)]
    out = np.zeros(max(slots) + 1)
    for s, p in zip(slots, dist.probs):
        out[s] += p
    return out


def slots_per_group(dist: GroupDistribution, n: int, policy: str) -> float:
    """Expected array slots spent on one group of `dist.m` values in an n-slot mode."""
    pmf = slot_pmf(dist, n, policy)
    return float(np.arange(len(pmf)) @ pmf)


def _convolve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if len(a) * len(b) > 1 << 14:
        from scipy.signal import fftconvolve  # deferred: scipy costs ~0.5 s at CLI start-up
        out = fftconvolve(a, b)
    else:
        out = np.convolve(a, b)
    out = np.clip(out, 0.0, None)
    nz = np.nonzero(out > 1e-300)[0]
    out = out[: nz[-1] + 1] if len(nz) else out[:1]
    return out / out.sum()


def _convolution_power(pmf: np.ndarray, times: int) -> np.ndarray:
    """Distribution of the sum of `times` i.i.d. draws (binary exponentiation of convolutions)."""
    result = np.array([1.0])
    base = pmf.copy()
    while times:
        if times & 1:
            result = _convolve(result, base)
        times >>= 1
        if times:
            base = _convolve(base, base)
    return result


def tile_max_slots(choice: "ModeChoice", groups: int, units: int, tile: int) -> np.ndarray:
    """Expected maximum, over each fold's `tile` units, of a unit's slots over `groups` groups.

    Each unit (a weight column, an activation row) holds `groups` groups whose slot counts
    are i.i.d. from `choice.slot_pmf`; a fold waits for its busiest unit.
    """
    n_folds = math.ceil(units / tile)
    sizes = np.full(n_folds, tile)
    sizes[-1] = units - tile * (n_folds - 1)
    pmf = np.asarray(choice.slot_pmf, dtype=np.float64)
    support = np.nonzero(pmf)[0]
    if len(support) == 1:
        return np.full(n_folds, float(groups * support[0]))
    total = _convolution_power(pmf, groups)
    values = np.arange(len(total), dtype=np.float64)
    keep = total > 0
    values, probs = values[keep], total[keep]
    cache: dict[int, float] = {}
    out = np.empty(n_folds)
    for f, t in enumerate(sizes):
        if int(t) not in cache:
            cache[int(t)] = float(expected_max_of_draws(values, probs, int(t)))
        out[f] = cache[int(t)]
    return out


def nm_mode_choice(sp: Sparsity, modes: list[tuple[int, int]], policy: str, *,
                   groups_of_m: Callable[[int], float], k_block: int = 1) -> ModeChoice:
    """The usable mode with the fewest expected slots per element for operand sparsity `sp`
    (dense when none helps). Engines whose folds wait on the busiest PE should compare the
    `nm_mode_candidates` by their full cost instead: fewer mean slots can still mean a longer
    worst fold."""
    return nm_mode_candidates(sp, modes, policy, groups_of_m=groups_of_m, k_block=k_block)[0]


def nm_mode_candidates(sp: Sparsity, modes: list[tuple[int, int]], policy: str, *,
                       groups_of_m: Callable[[int], float], k_block: int = 1) -> list[ModeChoice]:
    """Every usable mode for `sp`, the dense mode included, fewest expected slots first.

    `groups_of_m(m)` is the number of m-groups in the op's operand (for `op_dense`: a mode is
    usable only if no measured group overflows, or fewer than 0.5 are expected to).
    """
    if policy not in OVERFLOW_POLICIES:
        raise SparsimInputError(f"unknown overflow policy '{policy}'", field="compute.overflow",
                                hint="one of " + ", ".join(OVERFLOW_POLICIES))
    dense = ModeChoice(1, 1, 1.0, 0.0, "dense", True)
    if sp.kind == "dense" or (sp.kind == "nm" and sp.n == sp.m):
        return [dense]
    candidates = [dense]
    for n, m in modes:
        if n == m:
            continue  # an m:m mode is the dense mode
        dist = group_distribution(sp, m, k_block=k_block)
        over = dist.prob_more_than(n)
        if policy == "op_dense":
            if dist.overflow_counts is not None:
                usable = sum(dist.overflow_counts[n + 1:]) == 0
            else:
                usable = over * groups_of_m(m) < 0.5
            if not usable:
                continue
            slots = float(n)
            pmf = np.zeros(n + 1)
            pmf[n] = 1.0
        else:
            pmf = slot_pmf(dist, n, policy)
            slots = float(np.arange(len(pmf)) @ pmf)
        candidates.append(ModeChoice(n, m, slots, over, dist.model, False, tuple(float(x) for x in pmf)))
    # Fastest first; on a tie prefer the mode without overflow, then the dense mode (no select logic).
    return sorted(candidates, key=mode_preference)


def mode_preference(choice: ModeChoice, cycles: float = 0.0) -> tuple:
    """Sort key among modes: fewer cycles, then fewer slots, then no overflow, then dense."""
    return (round(cycles, 9), round(choice.k_factor, 12), choice.overflow_probability, not choice.dense)


# ----------------------------------------------------------------------------- per-row model

def _unit_pmf(sp: Sparsity, K: int, k_block: int) -> tuple[np.ndarray, np.ndarray, str]:
    """(values, probabilities, model) of one unit's nonzeros over a K-long reduction."""
    d = operand_density(sp)
    if sp.kind == "nm":
        groups, rest = divmod(K, sp.m)
        nnz = groups * sp.n + min(rest, sp.n)
        return np.array([float(nnz)]), np.array([1.0]), f"exact {sp.n}:{sp.m}"
    if sp.kind == "block" and k_block > 1:
        blocks = math.ceil(K / k_block)
        pmf = binomial_pmf(blocks, d)
        values = np.minimum(np.arange(blocks + 1, dtype=np.float64) * k_block, K)
        return values, pmf, f"block (binomial over {blocks} blocks)"
    return np.arange(K + 1, dtype=np.float64), binomial_pmf(K, d), f"binomial d={d:.3g}"


def tile_max_nnz(sp: Sparsity, K: int, units: int, tile: int, *, k_block: int = 1,
                 unit_block: int = 1, operand: str = "weights") -> tuple[np.ndarray, str]:
    """Expected maximum, over each fold's `tile` consecutive units, of a unit's nonzeros along K.

    Returns one value per fold (ceil(units / tile) of them) and the model used. `unit_block`
    is the block extent across units (units in one block share their zeros); `operand` names
    the operand in errors.
    """
    n_folds = math.ceil(units / tile)
    sizes = np.full(n_folds, tile)
    sizes[-1] = units - tile * (n_folds - 1)
    if sp.kind == "dense":
        return np.full(n_folds, float(K)), "dense"
    measured = sp.measured
    if measured is not None and measured.row_nnz:
        counts = np.asarray(measured.row_nnz, dtype=np.float64)
        if counts.max() > K:
            raise SparsimInputError(f"row_nnz holds a count of {int(counts.max())}, more than the reduction "
                                    f"length K={K}", field=f"sparsity.{operand}.measured.row_nnz",
                                    hint="row_nnz counts nonzeros along K of each row/column")
        if len(counts) == units and not measured.row_nnz_is_sample:
            return fold_max(counts, tile), "measured per-row counts (exact)"
        values, inverse = np.unique(counts, return_inverse=True)
        probs = np.bincount(inverse).astype(np.float64)
        out = np.array([expected_max_of_draws(values, probs, int(s)) for s in sizes])
        why = "" if measured.row_nnz_is_sample else f", not one per unit ({units})"
        return out, f"measured per-row sample ({len(counts)} rows{why}, i.i.d. draws)"
    values, probs, model = _unit_pmf(sp, K, k_block)
    independent = np.maximum(1, np.ceil(sizes / max(1, unit_block))).astype(np.int64)
    cache: dict[int, float] = {}
    out = np.empty(n_folds)
    for f, t in enumerate(independent):
        if int(t) not in cache:
            cache[int(t)] = float(expected_max_of_draws(values, probs, int(t)))
        out[f] = cache[int(t)]
    return out, model


def block_extents(sp: Sparsity, operand: str) -> tuple[int, int]:
    """(extent along K, extent across units) of a block-sparse operand's blocks.

    Weights are stored K x N (block = [rows along K, cols along N]); activations M x K
    (block = [rows along M, cols along K]).
    """
    if sp.kind != "block" or sp.block is None:
        return 1, 1
    r, c = sp.block
    return (r, c) if operand == "weights" else (c, r)


def operand_density(sp: Sparsity, *, block_key: str | None = None) -> float:
    """Density, preferring a measured block density for this block shape when given."""
    if sp.kind == "block" and sp.measured is not None and sp.block is not None:
        key = block_key or f"{sp.block[0]}x{sp.block[1]}"
        if key in sp.measured.block_density:
            return float(sp.measured.block_density[key])
    return sp.effective_density


__all__ = ["GroupDistribution", "ModeChoice", "OVERFLOW_POLICIES", "block_extents", "check_nm",
           "group_distribution", "index_bits", "is_power_of_two", "mode_preference", "nm_mode_candidates",
           "nm_mode_choice", "operand_density",
           "parse_pattern", "slot_pmf", "slots_per_group", "tile_max_nnz", "tile_max_slots"]
