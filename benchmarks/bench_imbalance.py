"""Speed of the sparsity load-imbalance model on a 4096 x 4096 weight (issue: "milliseconds").

    python benchmarks/bench_imbalance.py

Times (best of 5, after numba warm-up): per-column nonzero counts of a real 4096 x 4096 mask plus
the per-fold maximum over 128-wide PE tiles; `tile_max_nnz` from exact measured counts, from the
binomial model and from a 256-row sample; and whole-op estimates of a 4096^3 unstructured GEMM on
the flexible N:M engine (extra passes) and on the zero-skipping systolic array.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import time  # noqa: E402

import numpy as np  # noqa: E402

from simulator.engines import nm_tensor_core, systolic  # noqa: E402
from simulator.kernels.imbalance import fold_max, row_nnz_from_mask, warm_up  # noqa: E402
from simulator.sparsity import tile_max_nnz  # noqa: E402
from simulator.spec import load_arch  # noqa: E402
from simulator.trace import Op, Sparsity  # noqa: E402

warm_up()
rng = np.random.default_rng(1)
mask = (rng.random((4096, 4096)) < 0.3).astype(np.uint8)


def best(f, n=5):
    """Best wall time of `n` calls, in ms."""
    times = []
    for _ in range(n):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return min(times) * 1e3


print("mask->per-column counts + per-fold max (4096x4096, tile 128): %.2f ms" % best(lambda: fold_max(row_nnz_from_mask(mask, 0).astype(np.float64), 128)))
counts = row_nnz_from_mask(mask, 0)
sp_exact = Sparsity(kind="unstructured", density=0.3, measured={"density": float(mask.mean()), "row_nnz": counts.tolist()})
print("tile_max_nnz exact measured 4096 counts: %.2f ms" % best(lambda: tile_max_nnz(sp_exact, 4096, 4096, 128)))
sp = Sparsity(kind="unstructured", density=0.3)
print("tile_max_nnz binomial model: %.2f ms" % best(lambda: tile_max_nnz(sp, 4096, 4096, 128)))
sp_s = Sparsity(kind="unstructured", density=0.3, measured={"density": 0.3, "row_nnz": counts[:256].tolist(), "row_nnz_is_sample": True})
print("tile_max_nnz 256-row sample: %.2f ms" % best(lambda: tile_max_nnz(sp_s, 4096, 4096, 128)))
veg = load_arch(str(ROOT / "arch_configs" / "vegeta_like_flexible_nm.yaml"))
op = Op.model_validate({"name": "g", "kind": "gemm", "dims": {"M": 4096, "N": 4096, "K": 4096}, "sparsity": {"weights": {"kind": "unstructured", "density": 0.3}}})
print("nm_tensor_core.estimate 4096^3 unstructured split (vegeta): %.2f ms" % best(lambda: nm_tensor_core.estimate(op, veg), 3))
sk = load_arch(str(ROOT / "arch_configs" / "sparse_systolic_skip_bitmap.yaml"))
print("systolic skip estimate 4096^3 (binomial): %.2f ms" % best(lambda: systolic.estimate(op, sk), 3))
