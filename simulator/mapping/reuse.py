"""Analytical access counts and timing of one mapping (Timeloop-style reuse); numba-compiled for long runs.

A mapping of a loop nest (dims G, N, K, C, P, Q; R and S whole) at the on-chip tiling level is a
tile size per dim and a loop order of the tile loops. G (relevant to every operand) is always
outermost. The other dims fall into three reuse classes by the operand they are irrelevant to:
K (not in the input), C (not in the output: the reduction), and {N, P, Q} (not in the weights);
dims of one class always travel together, so 3! = 6 orders cover every distinct loop order.

Per operand X, the tile loops below X's innermost relevant loop (with more than one tile) leave
its tile on chip (reuse); every irrelevant loop above it refetches X: DRAM reads of X = its data
(input: with each tile's halo, (p-1)*stride + R rows for p output rows) x the tile counts of those
loops. When the reduction (C) loop sits above the output's innermost relevant loop the output tile
leaves the chip before its reduction ends: partial sums spill at accumulator width, written and
read back (m - 1) times for m reduction segments. An operand with no on-chip buffer bypasses the
tiling level and moves what the array demands.

Timing (double-buffered): transfers overlap compute across the whole tile schedule, limited by
one DRAM channel (all bytes but the first and last tile's must move during the compute) and by each
operand's buffer halves (an operand's next tile loads while its current tile lives, i.e. during the
compute between two of its fetches; an output tile drains while the next one computes). The array
starts once the first fold's operands are in and ends once the last fold's outputs are written back
(a tile's folds consume its data as it streams in). So every mapping whose transfers hide costs the
same cycles, and ties go to fewer DRAM bytes, then lower energy. Without double buffering every
transfer adds to the time. Each mapping's cycles are non-decreasing in cycles per DRAM byte, so the
searched optimum never gets slower with more bandwidth (or, as the legal set only grows, more buffer). On-chip bandwidth is part of the time searched: each
level's bytes are affine in the DRAM bytes of each kind, except that the innermost level holding an
operand serves the array max(demand, fetched) reads (a mapping that refetches an operand more often
than the array's fold order reads it re-reads every fetched copy), so the cycles minimised are the
cycles reported (`simulator.mapping.cost` recomputes the same bytes per level). Approximations: every
tile of a transition class moves the class's average bytes and computes the average tile time (edge
tiles are averaged in).
"""

from __future__ import annotations

import math

import numpy as np

from simulator.kernels.group import KernelGroup

# Indices into the parameter vector (one float64 array, so the numba kernels take few arguments).
D0 = 0                          # 0..5: sizes of G, N, K, C, P, Q
R_, S_, STRIDE, H_, W_ = 6, 7, 8, 9, 10
DB = 11                         # 11..13: DRAM bytes per element of input, weights, outputs
BB = 14                         # 14..16: bytes per element in the operand's tiling buffer
ACC = 17                        # accumulator bytes (partial sums)
BUF = 18                        # 18..20: tiling-buffer index of each operand (-1: bypass)
CAP = 21                        # 21..23: usable bytes of buffers 0..2
CPB, DBUF, COMPUTE, PSUM_IN_PE = 24, 25, 26, 27
DEM = 28                        # 28..29: DRAM bytes the array demands of a bypassing input / weights
OUTS, ROUNDS = 30, 31           # output elements; partial-sum rounds of the array (bypassing outputs)
E_FETCH = 32                    # 32..33: pJ per DRAM byte fetched of input, weights (read + buffer fill)
E_OW, E_OR, LEAK = 34, 35, 36   # pJ per output byte written / partial-sum byte read back; pJ per cycle
OBJECTIVE, HSCALE = 37, 38
FOLD_IN, FOLD_OUT = 39, 40      # DRAM bytes of the first fold's operands and of the last fold's outputs
ONCHIP = 41                     # 4 on-chip levels x (cycles of fixed traffic, cycles per DRAM byte of input,
ONCHIP_LEVELS = 4               #   weights, output writes, partial-sum reads, input and weights fetched
ONCHIP_STRIDE = 7               #   beyond the array's demand): a level's bandwidth need
SPATIAL = ONCHIP + ONCHIP_STRIDE * ONCHIP_LEVELS   # 6 flags: is G, N, K, C, P, Q unrolled on the array?
E_EXTRA = SPATIAL + 6           # 2: pJ per DRAM byte of input, weights fetched beyond the array's demand
SEG = E_EXTRA + 2               # 3: an output-stationary array's partial sums round-trip to the output buffer once
                                #   per extra C tile: that buffer's on-chip slot (-1: none), cycles and pJ per round trip
FOLD_X = SEG + 3                # 2: FOLD_IN's parts: DRAM bytes of the first fold's input, weights
N_PARAMS = FOLD_X + 2
N_TERMS = 14
# Relevance of each tiled dim (G, N, K, C, P, Q) to input, weights, outputs.
REL_DIM = np.array([[1, 1, 0, 1, 1, 1], [1, 0, 1, 1, 0, 0], [1, 1, 1, 0, 1, 1]], dtype=np.int64)

OBJECTIVES = {"latency": 0, "energy": 1, "edp": 2}
# Relevance of the three reuse classes (K, C, NPQ) to input, weights, outputs.
REL = np.array([[0, 1, 1], [1, 1, 0], [1, 0, 1]], dtype=np.int64)
ORDERS = np.array([[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]], dtype=np.int64)
CLASS_NAMES = ("K", "C", "NPQ")

# The kernels below call each other: one group, plain Python for short runs, compiled together
# for a search over MAX_INTERPRETED_WORK units, once INTERPRETED_SECONDS of CPU time were spent
# interpreted (about what importing numba and loading its cache costs: 0.6-0.9 s measured), or
# after `simulator.kernels.jit_now()`; see `simulator.kernels.group`.
MAX_INTERPRETED_WORK = 60_000.0   # ~0.1-1 s interpreted (1.5-18 us per unit measured)
INTERPRETED_SECONDS = 0.7
_group = KernelGroup(globals(), max_call_work=MAX_INTERPRETED_WORK, seconds=INTERPRETED_SECONDS)


def _search_work(cands, counts, p, best_t, best_out):
    """Budget units of one `search_kernel` call: an upper bound of the (K, C) steps it walks."""
    outer = 1.0
    for d in OUTER_DIMS:
        outer *= float(counts[d])
    return outer * float(counts[2] + counts[3])


def _params_as_list(args):
    """Interpreted calls read the (read-only) parameter vector, the third argument, as Python floats."""
    return args[:2] + (args[2].tolist(),) + args[3:]


N_OUT = 12   # evaluate() result fields, see `RESULT_FIELDS`
RESULT_FIELDS = ("feasible", "read_input", "read_weights", "read_outputs", "write_outputs", "stall_cycles",
                 "cycles", "energy_pj", "objective", "mult_input", "mult_weights", "mult_outputs")


@_group.member
def _ceil(a, b):
    return math.ceil(a / b - 1e-12)


@_group.member
def _extent(t, stride, r):
    """Input rows touched by t consecutive output rows."""
    return (t - 1.0) * stride + r if r >= stride else t * r


@_group.member
def _halo_sum(d, t, stride, r, limit):
    """Input rows fetched over all tiles of an output dim of size d in tiles of t (halos included)."""
    n = _ceil(d, t)
    last = d - (n - 1) * t
    return (n - 1) * min(_extent(t, stride, r), limit) + min(_extent(last, stride, r), limit)


@_group.member
def footprints(t, p):
    """Elements of each operand's tile (input with its halo) and the output tile's bytes per element."""
    n_c = _ceil(p[D0 + 3], t[3])
    f_in = t[0] * t[1] * t[3] * min(_extent(t[4], p[STRIDE], p[R_]), p[H_]) * \
        min(_extent(t[5], p[STRIDE], p[S_]), p[W_])
    f_w = t[0] * t[2] * t[3] * p[R_] * p[S_]
    f_out = t[0] * t[1] * t[2] * t[4] * t[5]
    out_width = p[ACC] if (n_c > 1 or p[PSUM_IN_PE] == 0.0) else p[BB + 2]
    return f_in, f_w, f_out, out_width


@_group.member
def fits(t, p):
    """Do the tiles fit every buffer (operands sharing a buffer share its usable capacity)?"""
    f_in, f_w, f_out, out_width = footprints(t, p)
    sizes = (f_in * p[BB], f_w * p[BB + 1], f_out * out_width)
    for b in range(3):
        need = 0.0
        for x in range(3):
            if int(p[BUF + x]) == b:
                need += sizes[x]
        if need > p[CAP + b] * (1 + 1e-12):
            return False
    return True


@_group.member
def tile_terms(t, p, s):
    """Order-independent terms of tile sizes `t` into scratch `s`: tile counts of G and the three
    classes, and the whole-op data of input (halos included), weights and outputs."""
    n_n, n_k, n_c = _ceil(p[D0 + 1], t[1]), _ceil(p[D0 + 2], t[2]), _ceil(p[D0 + 3], t[3])
    s[0] = _ceil(p[D0], t[0])
    s[1], s[2], s[3] = n_k, n_c, n_n * _ceil(p[D0 + 4], t[4]) * _ceil(p[D0 + 5], t[5])
    g, bn, k, c = p[D0], p[D0 + 1], p[D0 + 2], p[D0 + 3]
    s[4] = g * bn * c * _halo_sum(p[D0 + 4], t[4], p[STRIDE], p[R_], p[H_]) * \
        _halo_sum(p[D0 + 5], t[5], p[STRIDE], p[S_], p[W_]) * p[HSCALE]
    s[5] = g * k * c * p[R_] * p[S_]
    s[6] = g * bn * k * p[D0 + 4] * p[D0 + 5]
    for d in range(6):
        s[8 + d] = _ceil(p[D0 + d], t[d])


@_group.member
def _bypass_mult(x, s, p):
    """An operand with no on-chip buffer is streamed again for every tile of a temporal dim it does not
    depend on (splitting an unrolled dim only splits the folds the array demand already counts)."""
    m = 1.0
    for d in range(6):
        if REL_DIM[x, d] == 0 and p[SPATIAL + d] == 0.0:
            m *= s[8 + d]
    return m


@_group.member
def _bypass_outputs(s, p):
    """(partial-sum read bytes, write bytes) of outputs with no on-chip buffer."""
    rounds = p[ROUNDS] * _bypass_mult(2, s, p)
    return p[OUTS] * (rounds - 1.0) * p[ACC], p[OUTS] * ((rounds - 1.0) * p[ACC] + p[DB + 2])


@_group.entry(interpreted_args=_params_as_list)
def evaluate(t, o, p, out):
    """Fill `out` (see RESULT_FIELDS) for tile sizes `t` (G, N, K, C, P, Q) and class order `ORDERS[o]`."""
    out[:] = 0.0
    if not fits(t, p):
        return
    s = np.empty(N_TERMS)
    tile_terms(t, p, s)
    evaluate_order(s, o, p, out)


def _order_tables():
    """Per (order, pattern of which loops have more than one tile): which classes multiply each
    operand's fetches, at which tile-loop levels (0: G, 1..3: the classes in order) its tile changes,
    and whether the order is the canonical one of its equivalents (loops with one tile can sit
    anywhere: they are put innermost, in class order, so each distinct loop nest is costed once)."""
    mult = np.zeros((6, 16, 3, 3))
    changes = np.zeros((6, 16, 3, 4))
    canonical = np.zeros((6, 16), dtype=np.bool_)
    for o, order in enumerate(ORDERS):
        for pat in range(16):
            tiled = [bool(pat >> c & 1) for c in range(3)] + [bool(pat >> 3 & 1)]
            levels = [(tiled[3], None)] + [(tiled[c], c) for c in order]
            for x in range(3):
                rel = [c is None or REL[x, c] == 1 for _, c in levels]
                inner = max([j for j in range(1, 4) if levels[j][0] and rel[j]], default=-1)
                for j in range(1, inner):
                    if not rel[j]:
                        mult[o, pat, x, levels[j][1]] = 1.0
                for j in range(4):
                    changes[o, pat, x, j] = any(levels[k][0] and rel[k] for k in range(j, 4))
            ones = [c for c in order if not tiled[c]]
            canonical[o, pat] = list(order[len(order) - len(ones):]) == sorted(ones)
    return mult, changes, canonical


MULT, CHANGES, CANONICAL = _order_tables()


@_group.member
def pattern(s):
    return (s[1] > 1) * 1 + (s[2] > 1) * 2 + (s[3] > 1) * 4 + (s[0] > 1) * 8


@_group.member
def _mult(x, s, o, pat):
    """Refetch multiplier of operand x: tile counts of its irrelevant loops above its innermost relevant one."""
    m = 1.0
    for c in range(3):
        if MULT[o, pat, x, c] == 1.0:
            m *= s[1 + c]
    return m


@_group.member
def _fetches(x, s, o, pat):
    """How many times operand x's tile is (re)loaded over the tile schedule."""
    fetches = 1.0
    outer = 1.0
    for j in range(4):
        n = s[0] if j == 0 else s[1 + ORDERS[o, j - 1]]
        fetches += outer * (n - 1.0) * CHANGES[o, pat, x, j]
        outer *= n
    return fetches


@_group.member
def evaluate_order(s, o, p, out):
    """Traffic, stalls, energy and objective of class order `ORDERS[o]`, given `tile_terms` in `s`."""
    pat = pattern(s)
    m_in, m_w, m_out = _mult(0, s, o, pat), _mult(1, s, o, pat), _mult(2, s, o, pat)
    read_in = s[4] * m_in * p[DB] if p[BUF] >= 0 else p[DEM] * _bypass_mult(0, s, p)
    read_w = s[5] * m_w * p[DB + 1] if p[BUF + 1] >= 0 else p[DEM + 1] * _bypass_mult(1, s, p)
    if p[BUF + 2] >= 0:
        read_out = s[6] * (m_out - 1.0) * p[ACC]
        write_out = s[6] * ((m_out - 1.0) * p[ACC] + p[DB + 2])
    else:
        read_out, write_out = _bypass_outputs(s, p)
    segs = s[2] - 1.0 if p[PSUM_IN_PE] != 0.0 else 0.0     # PE partial sums parked between C tiles
    stall = max(_stall(s, o, pat, read_in, read_w, read_out, write_out, p),
                _onchip_need(read_in, read_w, write_out, read_out, segs, p) - p[COMPUTE])
    cycles = p[COMPUTE] + stall
    energy = read_in * p[E_FETCH] + read_w * p[E_FETCH + 1] + write_out * p[E_OW] + read_out * p[E_OR] \
        + p[E_EXTRA] * max(0.0, read_in - p[DEM]) + p[E_EXTRA + 1] * max(0.0, read_w - p[DEM + 1]) \
        + p[SEG + 2] * segs + p[LEAK] * cycles
    out[0], out[1], out[2], out[3], out[4] = 1.0, read_in, read_w, read_out, write_out
    out[5], out[6], out[7] = stall, cycles, energy
    out[9], out[10], out[11] = m_in, m_w, m_out
    obj = p[OBJECTIVE]
    out[8] = cycles if obj == 0.0 else (energy if obj == 1.0 else energy * cycles)


@_group.member
def _onchip_need(read_in, read_w, write_out, read_out, segs, p):
    """Cycles the busiest on-chip level needs for its traffic (fills follow the DRAM traffic; a fetch
    beyond the array's demand, `DEM`, is one more read at the operand's innermost level; `segs` partial-sum
    round trips of an output-stationary array at the output buffer)."""
    need = 0.0
    extra_in, extra_w = max(0.0, read_in - p[DEM]), max(0.0, read_w - p[DEM + 1])
    for lv in range(ONCHIP_LEVELS):
        q = ONCHIP + ONCHIP_STRIDE * lv
        need = max(need, p[q] + p[q + 1] * read_in + p[q + 2] * read_w + p[q + 3] * write_out + p[q + 4] * read_out
                   + p[q + 5] * extra_in + p[q + 6] * extra_w + (p[SEG + 1] * segs if p[SEG] == lv else 0.0))
    return need


@_group.member
def _stall(s, o, pat, read_in, read_w, read_out, write_out, p):
    """DRAM stall cycles of the tile schedule (see the module docstring)."""
    cpb = p[CPB]
    if cpb == 0.0:
        return 0.0
    total = read_in + read_w + read_out + write_out
    if p[DBUF] == 0.0:
        return total * cpb
    compute = p[COMPUTE]
    # Each operand's next tile loads into the other half of its buffer while its current tile lives
    # (its lifetime: compute / fetches); outputs likewise drain while the next output tile computes.
    # The first tile's first-fold slice (the last tile's last-fold outputs) is in `edges` below: only
    # the rest of that tile must hide behind its own lifetime.
    worst = 0.0
    amounts = (read_in, read_w, read_out + write_out)
    for x in range(3):
        if p[BUF + x] >= 0 and amounts[x] > 0.0:
            fetches = _fetches(x, s, o, pat)
            per = amounts[x] / fetches * cpb - compute / fetches
            edge = (p[FOLD_X + x] if x < 2 else p[FOLD_OUT]) * cpb
            worst = max(worst, (fetches - 1.0) * max(0.0, per) + max(0.0, per - edge))
    # The array starts once the first fold's operands are in and ends once the last fold's outputs are
    # out; everything else shares one channel during the compute (a fold streams its tile's data).
    edges = (p[FOLD_IN] + p[FOLD_OUT]) * cpb
    channel = max(0.0, (total - p[FOLD_IN] - p[FOLD_OUT]) * cpb - compute)
    return edges + max(channel, worst)


# Enumeration nesting (outer to inner) in `search_kernel` of the tiled dims other than K and C.
OUTER_DIMS = np.array([0, 1, 4, 5], dtype=np.int64)


TIE = 1e-9    # relative: values this close are equal (floating-point sums of the same terms in another order)


@_group.member
def _better(key, moved, energy, best):
    """Lower objective; at an equal objective fewer DRAM bytes; then lower energy."""
    if key < best[0] * (1 - TIE):
        return True
    if key > best[0] * (1 + TIE):
        return False
    if moved < best[1] * (1 - TIE):
        return True
    if moved > best[1] * (1 + TIE):
        return False
    return energy < best[2] * (1 - TIE)


@_group.member
def _consider(t, p, terms, out, best, best_t, best_out):
    """Evaluate tiles `t` under each distinct order; keep the best in `best` = [objective, bytes, energy, order]."""
    tile_terms(t, p, terms)
    pat = pattern(terms)
    for o in range(6):
        if not CANONICAL[o, pat]:
            continue
        evaluate_order(terms, o, p, out)
        key, energy, moved = out[8], out[7], out[1] + out[2] + out[3] + out[4]
        if _better(key, moved, energy, best):
            best[0], best[1], best[2], best[3] = key, moved, energy, o
            best_t[:] = t
            best_out[:] = out


@_group.member
def _fits_kc(t, p, cands, k, c):
    t[2] = cands[2, k]
    t[3] = cands[3, c]
    return fits(t, p)


@_group.member
def _can_grow(t, p, cands, counts, idx):
    """Does the tile still fit with one of the outer dims one size larger? (Then it is dominated.)"""
    for d in OUTER_DIMS:
        if idx[d] + 1 < counts[d]:
            keep = t[d]
            t[d] = cands[d, idx[d] + 1]
            ok = fits(t, p)
            t[d] = keep
            if ok:
                return True
    return False


@_group.member
def _staircase(t, p, cands, counts, idx, terms, out, best, best_t, best_out):
    """Cost the maximal fitting (K, C) tile pairs for the other dims in `t`: walking K up, the largest
    C that fits (below the whole C) only falls; a pair is maximal when neither tile can grow. The whole
    C (narrower final outputs) is a separate staircase of one step. A pair is skipped when an outer
    dim could grow instead (a larger fitting tile is at least as good). Returns whether anything fit."""
    last_k, last_c = counts[2] - 1, counts[3] - 1
    found = False
    # The whole C: the largest K that fits it (by bisection: footprints grow with K).
    k = -1
    if _fits_kc(t, p, cands, 0, last_c):
        lo, hi = 0, last_k
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if _fits_kc(t, p, cands, mid, last_c):
                lo = mid
            else:
                hi = mid - 1
        k = lo
    if k >= 0:
        found = True
        _fits_kc(t, p, cands, k, last_c)
        if not _can_grow(t, p, cands, counts, idx):
            _consider(t, p, terms, out, best, best_t, best_out)
    if last_c == 0:
        return found
    c = last_c - 1
    for k in range(last_k + 1):
        while c >= 0 and not _fits_kc(t, p, cands, k, c):
            c -= 1
        if c < 0:
            break
        found = True
        if k == last_k or not _fits_kc(t, p, cands, k + 1, c):
            _fits_kc(t, p, cands, k, c)
            if not _can_grow(t, p, cands, counts, idx):
                _consider(t, p, terms, out, best, best_t, best_out)
    return found


@_group.entry(work=_search_work, interpreted_args=_params_as_list)
def search_kernel(cands, counts, p, best_t, best_out):
    """The best mapping over every candidate tile size and distinct order (ties: fewer DRAM bytes, then
    lower energy); returns its order's index, -1 if nothing fits.

    For a fixed order every metric (traffic, stalls, on-chip need, energy) is non-increasing in every
    tile size, so for each choice of the other dims only the maximal fitting (K, C) pairs are costed
    (`_staircase`). A choice of the other dims where nothing fits makes every larger size of the
    innermost dim moved unfit too (footprints grow with every tile size)."""
    idx = np.zeros(6, dtype=np.int64)
    t = np.empty(6)
    terms = np.empty(N_TERMS)
    out = np.empty(N_OUT)
    best = np.array([np.inf, np.inf, np.inf, -1.0])
    n_outer = OUTER_DIMS.shape[0]
    while True:
        for d in OUTER_DIMS:
            t[d] = cands[d, idx[d]]
        pos = n_outer - 1
        if not _staircase(t, p, cands, counts, idx, terms, out, best, best_t, best_out):
            q = n_outer - 1
            while q > 0 and idx[OUTER_DIMS[q]] == 0:
                q -= 1
            if q == 0:
                break
            idx[OUTER_DIMS[q]] = 0
            pos = q - 1
        while pos >= 0:
            d = OUTER_DIMS[pos]
            idx[d] += 1
            if idx[d] < counts[d]:
                break
            idx[d] = 0
            pos -= 1
        if pos < 0:
            break
    return int(best[3])
