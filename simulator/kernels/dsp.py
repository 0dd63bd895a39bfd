"""Hot loops of the FPGA DSP-chain engine (numba, cached).

- `chain_folds`: per-fold issue cycles (bounded by on-chip read ports), DRAM load and store
  bytes of one GEMM tiled as activation-row chunks x N tiles x K tiles x M tiles (see
  `simulator.engines.dsp_chain` for the meaning of each argument).

The tiling `chain_folds` walks: row chunks (outer) x N tiles of p_n columns x K tiles x M tiles
of p_m rows.

A chunk of `chunk_rows` activation rows is loaded once (when it fits its buffer) and every N
tile streams its rows past a weight tile that stays in the weight buffer (when it fits), so
weights are fetched once per chunk. A fold holds p_m rows of which the hardware takes p_m_hw
at a time (p_m = p_m_hw x rows kept weight-stationary in the chains): it issues
k_steps x ceil(rows / p_m_hw) times but reads its weights only k_steps times.

K tiling: the k_steps issues of a dot product are cut into `k_tiles` near-equal tiles; a fold
reduces one K tile, and the partial sums of the chunk's rows x p_n columns stay on chip across
K tiles (the caller only offers K tilings whose partial sums fit). A K tile's weights and
activations are that tile's share of the per-column / per-row DRAM bytes; outputs are stored
after the last K tile. With k_tiles = 1 every fold reduces the full K. `k_outer` swaps the K and
N tile loops (chunks > K tiles > N tiles > M tiles): the chunk's current K slice of activations
is loaded once and every N tile streams past it, so the partial sums of the chunk's rows x all
N columns stay on chip. In K-tiled schemes a tile is fetched while the previous one computes
(the caller sizes tiles to half of a double-buffered level), modelled by spreading a weight
tile's DRAM bytes over its M-tile folds and (k_outer) an activation slice's over its N tiles;
k_tiles = 1 keeps the fold-by-fold fetch of the untiled scheme unchanged.
"""

import numpy as np
from simulator.kernels import jit_now, lazy_njit as njit


@njit(cache=True)
def chain_folds(M, N, K, p_m, p_n, k_steps, act_bytes_per_row_issue, w_bytes_per_col_issue,
                act_port_bpc, w_port_bpc, shared_port,
                a_dram_bytes_per_row, w_dram_bytes_per_col, out_bytes_per_elem,
                w_tile_fits, a_chunk_fits, a_resident, out_resident, pe_cols, p_m_hw, chunk_rows,
                k_tiles=1, k_outer=False):
    """Fold arrays of one GEMM in the tiling the module docstring describes (row chunks x N tiles x
    K tiles x M tiles; `k_outer` puts K tiles outside N tiles). One kernel, not split: kernels here
    do not call each other (see `simulator.kernels`).
    Returns (issue, cycles, load, store, act_reads, w_reads): per-fold issue cycles, per-fold
    cycles after the on-chip port bound, DRAM bytes loaded before / stored after each fold,
    and total bytes the chains read from the activation and weight buffers.
    Port rates <= 0 mean "no on-chip buffer for that operand" (read straight from the stream).
    """
    n_tiles = -(-N // p_n)
    n_chunks = -(-M // chunk_rows)
    k_tiles = max(1, min(k_tiles, k_steps))
    base, extra = k_steps // k_tiles, k_steps % k_tiles
    n_folds = 0
    for c in range(n_chunks):
        rows_c = min(chunk_rows, M - c * chunk_rows)
        n_folds += n_tiles * k_tiles * (-(-rows_c // p_m))
    issue = np.empty(n_folds)
    cycles = np.empty(n_folds)
    load = np.empty(n_folds)
    store = np.empty(n_folds)
    act_reads = 0.0
    w_reads = 0.0
    f = 0
    for c in range(n_chunks):
        rows_c = min(chunk_rows, M - c * chunk_rows)
        m_tiles = -(-rows_c // p_m)
        for outer in range(n_tiles * k_tiles):
            tn = outer % n_tiles if k_outer else outer // k_tiles
            tk = outer // n_tiles if k_outer else outer % k_tiles
            cols = min(p_n, N - tn * p_n)
            pes = -(-cols // pe_cols)
            steps = base + (1 if tk < extra else 0)
            share = steps / k_steps
            for tm in range(m_tiles):
                rows = min(p_m, rows_c - tm * p_m)
                n_issue = steps * (-(-rows // p_m_hw))
                a_rd = rows * steps * act_bytes_per_row_issue * pes
                w_rd = cols * steps * w_bytes_per_col_issue
                act_reads += a_rd
                w_reads += w_rd
                bound = float(n_issue)
                if shared_port and act_port_bpc > 0.0:
                    bound = max(bound, (a_rd + w_rd) / act_port_bpc)
                else:
                    if act_port_bpc > 0.0:
                        bound = max(bound, a_rd / act_port_bpc)
                    if w_port_bpc > 0.0:
                        bound = max(bound, w_rd / w_port_bpc)
                issue[f] = n_issue
                cycles[f] = bound
                ld = 0.0
                if not w_tile_fits:
                    ld += cols * w_dram_bytes_per_col * share
                elif k_tiles > 1:     # tile fetched while the previous one computes: spread over its folds
                    ld += cols * w_dram_bytes_per_col * share / m_tiles
                elif tm == 0:
                    ld += cols * w_dram_bytes_per_col
                if not a_resident:
                    if k_outer:       # slice fetched during the previous K tile: spread over its N tiles
                        ld += rows * a_dram_bytes_per_row * share / n_tiles
                    elif (not a_chunk_fits) or tn == 0:
                        ld += rows * a_dram_bytes_per_row * share
                load[f] = ld
                last = tk == k_tiles - 1
                store[f] = 0.0 if (out_resident or not last) else rows * cols * out_bytes_per_elem
                f += 1
    return issue, cycles, load, store, act_reads, w_reads


def warm_up() -> None:
    """Compile outside timed regions."""
    jit_now()
    chain_folds(2, 2, 4, 1, 1, 2, 1.0, 1.0, 1.0, 1.0, False, 4.0, 4.0, 1.0, True, True, False, False, 1, 1, 2, 2, True)
