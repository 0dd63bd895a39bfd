"""Cross-check the GPU model against measured kernels: per-kernel error, MAPE, correlation, scatter.

Each measured kernel (`analysis.importers.MeasuredKernel`) becomes the trace op(s) PyTorch
would run for it: `gemm` / `gemv` -> a dense GEMM op; `gemm_2to4` -> a GEMM whose weights are
2:4-sparse; `sdpa` -> `attention_qk` + `attention_pv` (one fused kernel); `moe_gemm` -> a
grouped GEMM. Its dtype sets the op precision (fp16/bf16 16 bits, int8 8 bits with int32
outputs as `torch._int_mm` writes them, tf32/fp32 32 bits). The GPU engine predicts one
execution; error = (predicted - measured) / measured, MAPE = mean |error|.

A kernel the GPU spec cannot run (a dtype it lacks, operands larger than its HBM) is a
per-row warning and is left out of the MAPE, never dropped silently.

`fit_factors` is the calibration used for `arch_configs/gpu_mi210.yaml`: a coordinate
search over a few named spec fields minimising MAPE on one measured set (docs/gpu.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from simulator.engines import engine_module
from simulator.errors import SparsimInputError
from simulator.spec import Arch, apply_overrides, arch_from_dict, read_yaml
from simulator.trace import Op

from analysis.importers import MeasuredKernel, MeasuredSet

BITS = {"fp16": 16, "bf16": 16, "fp8": 8, "int8": 8, "tf32": 32, "fp32": 32}


def ops_for(k: MeasuredKernel) -> list[Op]:
    """The trace ops that model one measured kernel."""
    bits = BITS[k.dtype]
    out_bits = 32 if k.dtype == "int8" else bits
    precision = {"activations": bits, "weights": bits, "outputs": out_bits}
    if k.kernel in ("gemm", "gemv", "gemm_2to4"):
        sparsity = {"weights": {"kind": "nm", "n": 2, "m": 4}} if k.kernel == "gemm_2to4" else {}
        return [Op(name=k.kernel, kind="gemm", dims={"M": k.M, "N": k.N, "K": k.K, "batch": max(1, k.batch)},
                   precision=precision, sparsity=sparsity)]
    if k.kernel == "sdpa":
        dims = {"batch": max(1, k.batch), "heads": k.heads, "kv_heads": k.kv_heads or None, "q_len": k.q_len,
                "kv_len": k.kv_len, "head_dim": k.head_dim}
        return [Op(name="qk", kind="attention_qk", dims=dims, precision=precision),
                Op(name="pv", kind="attention_pv", dims=dims, precision=precision)]
    if k.kernel == "moe_gemm":
        return [Op(name="moe", kind="moe_gemm", dims={"tokens_per_expert": list(k.tokens_per_expert), "N": k.N,
                                                      "K": k.K}, precision=precision)]
    raise SparsimInputError(f"cannot model kernel kind '{k.kernel}'", field="kernel")


def predict_s(k: MeasuredKernel, arch: Arch) -> float:
    """Predicted seconds of one measured kernel on `arch` (SparsimInputError if it cannot run)."""
    spec = arch.compute
    alike = {"fp16": ("fp16", "bf16"), "bf16": ("bf16", "fp16"), "tf32": ("tf32", "fp32"),
             "fp32": ("fp32", "tf32")}.get(k.dtype, (k.dtype,))
    if not any(d in spec.tensor_math for d in alike):
        raise SparsimInputError(f"this GPU spec has no {k.dtype} tensor rate", field="compute.tensor_math",
                                hint="have: " + ", ".join(spec.tensor_math))
    estimate = engine_module(arch.compute.kind).estimate
    return sum(estimate(op, arch).cycles for op in ops_for(k)) / arch.clock_hz


@dataclass
class CrossCheck:
    rows: pd.DataFrame            # kernel, dtype, shape, measured_ms, predicted_ms, error_pct, source
    warnings: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.rows)

    @property
    def mape_pct(self) -> float:
        return float(self.rows["error_pct"].abs().mean()) if self.n else math.nan

    @property
    def log_correlation(self) -> float:
        """Pearson correlation of log(measured) and log(predicted)."""
        if self.n < 2:
            return math.nan
        x, y = np.log(self.rows["measured_ms"]), np.log(self.rows["predicted_ms"])
        if np.std(x) == 0 or np.std(y) == 0:
            return math.nan
        return float(np.corrcoef(x, y)[0, 1])

    def by_kernel(self) -> pd.DataFrame:
        g = self.rows.assign(abs_err=self.rows["error_pct"].abs()).groupby(["kernel", "dtype"])
        return g.agg(kernels=("abs_err", "size"), mape_pct=("abs_err", "mean")).reset_index()


def crosscheck(arch: Arch, measured: MeasuredSet) -> CrossCheck:
    if arch.compute.kind != "gpu":
        raise SparsimInputError(f"crosscheck compares GPU kernels, but this arch's compute kind is "
                                f"'{arch.compute.kind}'", field="compute.kind", hint="use arch_configs/gpu_*.yaml")
    rows, warnings = [], list(measured.warnings)
    for k in measured.kernels:
        try:
            pred = predict_s(k, arch)
        except SparsimInputError as exc:
            warnings.append(f"{k.source}: {k.kernel} {k.dtype} {k.shape} cannot run on {arch.name}: "
                            f"{exc.message}; left out of the MAPE")
            continue
        rows.append({"kernel": k.kernel, "dtype": k.dtype, "shape": k.shape, "measured_ms": k.latency_s * 1e3,
                     "predicted_ms": pred * 1e3, "error_pct": (pred - k.latency_s) / k.latency_s * 100.0,
                     "source": k.source})
    cols = ["kernel", "dtype", "shape", "measured_ms", "predicted_ms", "error_pct", "source"]
    return CrossCheck(pd.DataFrame(rows, columns=cols), warnings)


def write_scatter(result: CrossCheck, path: str | Path, title: str) -> Path:
    """Log-log scatter of predicted vs measured with the y = x line, one colour per kernel kind."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5.5, 5.0), dpi=120)
    df = result.rows
    for (kernel, dtype), part in df.groupby(["kernel", "dtype"]):
        ax.scatter(part["measured_ms"], part["predicted_ms"], s=18, label=f"{kernel} {dtype}")
    lo = float(min(df["measured_ms"].min(), df["predicted_ms"].min())) * 0.7
    hi = float(max(df["measured_ms"].max(), df["predicted_ms"].max())) * 1.4
    ax.plot([lo, hi], [lo, hi], "k-", lw=1, label="y = x")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("measured (ms)")
    ax.set_ylabel("predicted (ms)")
    ax.set_title(f"{title}\nMAPE {result.mape_pct:.1f}% over {result.n} kernels", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def fit_factors(arch_path: str | Path, measured: MeasuredSet, grids: dict[str, list[float]],
                rounds: int = 3) -> tuple[dict[str, float], float]:
    """Coordinate search over dotted spec fields (e.g. 'compute.efficiency.tensor') minimising MAPE.

    Returns the best values and the MAPE they reach. Used once, offline, to calibrate a spec;
    the values are then written into the YAML with their provenance.
    """
    base = read_yaml(arch_path, "arch spec")
    current: dict[str, float] = {}
    for dotted, values in grids.items():
        node = base
        for key in dotted.split("."):
            node = node.get(key) if isinstance(node, dict) else None
        current[dotted] = node if node is not None else values[0]

    def score(values: dict[str, float]) -> float:
        arch = arch_from_dict(apply_overrides(base, values, path=arch_path), path=arch_path)
        return crosscheck(arch, measured).mape_pct

    best = score(current)
    for _ in range(rounds):
        improved = False
        for dotted, values in grids.items():
            for v in values:
                trial = {**current, dotted: v}
                s = score(trial)
                if s < best - 1e-9:
                    best, current, improved = s, trial, True
        if not improved:
            break
    return current, best


__all__ = ["ops_for", "predict_s", "CrossCheck", "crosscheck", "write_scatter", "fit_factors"]
