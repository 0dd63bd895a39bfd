"""GPU measurement harness (`sparsim measure`): PyTorch + CUDA kernel timings into one tidy CSV.

See `analysis.measure.harness`. Importing this package needs neither torch nor a GPU;
running a measurement needs both and says so clearly otherwise.
"""

from analysis.measure.harness import CSV_COLUMNS, SUITES, Case, Grid, build_cases, require_cuda, run

__all__ = ["CSV_COLUMNS", "SUITES", "Case", "Grid", "build_cases", "require_cuda", "run"]
