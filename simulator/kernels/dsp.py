"""Hot loops of the FPGA DSP-chain engine (numba, cached).

- `chain_folds`: per-fold issue cycles (bounded by on-chip read ports), DRAM load and store
  bytes of one GEMM tiled as activation-row chunks x N tiles x M tiles, the full K reduced inside a
  fold (see `simulator.engines.dsp_chain` for the meaning of each argument).
"""

import numpy as np
from simulator.kernels import jit_now, lazy_njit as njit


@njit(cache=True)
def chain_folds(M, N, K, p_m, p_n, k_steps, act_bytes_per_row_issue, w_bytes_per_col_issue,
                act_port_bpc, w_port_bpc, shared_port,
                a_dram_bytes_per_row, w_dram_bytes_per_col, out_bytes_per_elem,
                w_tile_fits, a_chunk_fits, a_resident, out_resident, pe_cols, p_m_hw, chunk_rows):
    """Fold arrays of one GEMM tiled as: row chunks (outer) x N tiles of p_n columns x M tiles of p_m rows.

    A chunk of `chunk_rows` activation rows is loaded once (when it fits its buffer) and every N
    tile streams its rows past a weight tile that stays in the weight buffer (when it fits), so
    weights are fetched once per chunk. A fold holds p_m rows of which the hardware takes p_m_hw
    at a time (p_m = p_m_hw x rows kept weight-stationary in the chains): it issues
    k_steps x ceil(rows / p_m_hw) times but reads its weights only k_steps times.
    Returns (issue, cycles, load, store, act_reads, w_reads): per-fold issue cycles, per-fold
    cycles after the on-chip port bound, DRAM bytes loaded before / stored after each fold,
    and total bytes the chains read from the activation and weight buffers.
    Port rates <= 0 mean "no on-chip buffer for that operand" (read straight from the stream).
    """
    n_tiles = -(-N // p_n)
    n_chunks = -(-M // chunk_rows)
    n_folds = 0
    for c in range(n_chunks):
        rows_c = min(chunk_rows, M - c * chunk_rows)
        n_folds += n_tiles * (-(-rows_c // p_m))
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
        for tn in range(n_tiles):
            cols = min(p_n, N - tn * p_n)
            pes = -(-cols // pe_cols)
            for tm in range(m_tiles):
                rows = min(p_m, rows_c - tm * p_m)
                n_issue = k_steps * (-(-rows // p_m_hw))
                a_rd = rows * k_steps * act_bytes_per_row_issue * pes
                w_rd = cols * k_steps * w_bytes_per_col_issue
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
                if tm == 0 or not w_tile_fits:
                    ld += cols * w_dram_bytes_per_col
                if not a_resident:
                    if (not a_chunk_fits) or tn == 0:
                        ld += rows * a_dram_bytes_per_row
                load[f] = ld
                store[f] = 0.0 if out_resident else rows * cols * out_bytes_per_elem
                f += 1
    return issue, cycles, load, store, act_reads, w_reads


def warm_up() -> None:
    """Compile outside timed regions."""
    jit_now()
    chain_folds(2, 2, 4, 1, 1, 1, 1.0, 1.0, 1.0, 1.0, False, 4.0, 4.0, 1.0, True, True, False, False, 1, 1, 2)
