"""Cross-check the GPU model against measured kernels: per-kernel error, MAPE, correlation, scatter.

Each measured kernel (`analysis.importers.MeasuredKernel`) becomes the trace op(s) PyTorch
would run for it: `gemm` / `gemv` -> a dense GEMM op; `gemm_2to4` -> a GEMM whose weights are
2:4-sparse; `sdpa` -> `attention_qk` + `attention_pv` (one fused kernel); `moe_gemm` -> one
GEMM per expert with tokens, each its own launch, because that is what the harness times
(`analysis.measure.harness` runs one `torch.matmul` per expert; PyTorch has no portable
grouped-GEMM op), not the engine's single-launch grouped kernel. Its dtype sets the op
precision (fp16/bf16 16 bits, int8 8 bits with int32 outputs as `torch._int_mm` writes
them, tf32/fp32 32 bits). The GPU engine predicts one
execution; error = (predicted - measured) / measured, MAPE = mean |error|.

A kernel the GPU spec cannot run (a dtype it lacks, operands larger than its HBM) is a
per-row warning and is left out of the MAPE, never dropped silently.

`fit_factors` is the calibration used for `arch_configs/gpu_mi210.yaml`: a coordinate
search over a few named spec fields minimising MAPE on one measured set (docs/gpu.md).

`regenerate_validation` is `sparsim validate-gpu`: every set listed in
`analysis/measured/sets.yaml` is cross-checked on its spec; the per-kernel reports, the
scatter plots and a markdown summary go to `analysis/measured/validation/`, and the
generated block of `docs/gpu.md` (between `VALIDATION_BEGIN` and `VALIDATION_END`) is
rewritten, so the docs' error tables and plots come from one command.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from simulator.engines import load_engine
from simulator.errors import SparsimInputError
from simulator.spec import Arch, apply_overrides, arch_from_dict, load_arch, read_yaml
from simulator.trace import Op

from analysis.importers import MeasuredKernel, MeasuredSet, load_measured
from analysis.timing import TimingMethod, from_mapping as timing_from_mapping

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
        return [Op(name=f"expert{i}", kind="gemm", dims={"M": t, "N": k.N, "K": k.K}, precision=precision)
                for i, t in enumerate(k.tokens_per_expert) if t > 0]
    raise SparsimInputError(f"cannot model kernel kind '{k.kernel}'", field="kernel")


def _without_launch(arch: Arch) -> Arch:
    return arch.model_copy(update={"compute": arch.compute.model_copy(update={"launch_overhead_us": 0.0})})


def default_timing(fmt: str) -> TimingMethod:
    """Profiler formats carry kernel durations; CSVs of framework calls default to synchronised CUDA events."""
    return TimingMethod("kernel") if fmt in ("ncu", "ncu_raw", "nsys", "torch_profiler") else TimingMethod("events_sync")


def predict_observed_s(k: MeasuredKernel, arch: Arch, timing: TimingMethod, model: float | None = None) -> float:
    """What `timing` would read for kernel `k` on `arch`: the model plus the method's per-call host time
    (`model`: `predict_s(k, arch)` when the caller already has it)."""
    model = predict_s(k, arch) if model is None else model
    kernel_only = predict_s(k, _without_launch(arch)) if timing.method == "kernel" else model
    return timing.observed_s(model, kernel_only, arch.compute.launch_overhead_us)


def predict_s(k: MeasuredKernel, arch: Arch) -> float:
    """Predicted seconds of one measured kernel on `arch` (SparsimInputError if it cannot run)."""
    spec = arch.compute
    alike = {"fp16": ("fp16", "bf16"), "bf16": ("bf16", "fp16"), "tf32": ("tf32", "fp32"),
             "fp32": ("fp32", "tf32")}.get(k.dtype, (k.dtype,))
    if not any(d in spec.tensor_math for d in alike):
        raise SparsimInputError(f"this GPU spec has no {k.dtype} tensor rate", field="compute.tensor_math",
                                hint="have: " + ", ".join(spec.tensor_math))
    estimate = load_engine(arch.compute.kind).estimate
    return sum(estimate(op, arch).cycles for op in ops_for(k)) / arch.clock_hz


@dataclass
class CrossCheck:
    rows: pd.DataFrame            # kernel, dtype, shape, measured_ms, predicted_ms, error_pct, source, model_ms
    warnings: list[str] = field(default_factory=list)
    timing: str = ""              # how the set was timed and what per-call time was added

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


def crosscheck(arch: Arch, measured: MeasuredSet, timing: TimingMethod | None = None) -> CrossCheck:
    """Per-kernel error of `arch` on a measured set; `timing` (else the set's own, else the format's
    default) says what per-call time the measurement adds to the model (`analysis.timing`)."""
    if arch.compute.kind != "gpu":
        raise SparsimInputError(f"crosscheck compares GPU kernels, but this arch's compute kind is "
                                f"'{arch.compute.kind}'", field="compute.kind", hint="use arch_configs/gpu_*.yaml")
    timing = timing or measured.timing or default_timing(measured.format)
    rows, warnings = [], list(measured.warnings)
    for k in measured.kernels:
        try:
            model = predict_s(k, arch)
            pred = predict_observed_s(k, arch, timing, model)
        except SparsimInputError as exc:
            warnings.append(f"{k.source}: {k.kernel} {k.dtype} {k.shape} cannot run on {arch.name}: "
                            f"{exc.message}; left out of the MAPE")
            continue
        rows.append({"kernel": k.kernel, "dtype": k.dtype, "shape": k.shape, "measured_ms": k.latency_s * 1e3,
                     "predicted_ms": pred * 1e3, "error_pct": (pred - k.latency_s) / k.latency_s * 100.0,
                     "source": k.source, "model_ms": model * 1e3})
    cols = ["kernel", "dtype", "shape", "measured_ms", "predicted_ms", "error_pct", "source", "model_ms"]
    return CrossCheck(pd.DataFrame(rows, columns=cols), warnings, timing.describe(arch.compute.launch_overhead_us))


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

    return coordinate_search(score, current, grids, rounds)


def coordinate_search(score, start: dict[str, float], grids: dict[str, list[float]],
                      rounds: int = 3) -> tuple[dict[str, float], float]:
    """Minimise `score(values)` one field at a time over its grid, up to `rounds` sweeps."""
    current, best = dict(start), score(start)
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


# ----------------------------------------------------------------------------- shipped validation sets

VALIDATION_BEGIN = ("<!-- validation:begin (generated by `sparsim validate-gpu` from analysis/measured/sets.yaml; "
                    "do not edit) -->")
VALIDATION_END = "<!-- validation:end -->"
ROLES = ("calibration", "held_out")


@dataclass(frozen=True)
class ValidationSet:
    name: str
    title: str
    arch: Path
    measured: Path
    dtype: str
    role: str
    source: str
    timing: TimingMethod | None = None     # how the set was timed (None: the file's own, else its format's default)
    set_on: tuple[str, ...] = ()           # the spec fields whose values were set with this set in view


@dataclass
class ValidationOutcome:
    set: ValidationSet
    result: CrossCheck | None          # None when the measured file is absent here
    report: Path | None = None
    plot: Path | None = None


def load_sets(manifest: str | Path) -> list[ValidationSet]:
    """The sets of a `sets.yaml` manifest; paths are resolved relative to the manifest."""
    manifest = Path(manifest)
    data = read_yaml(manifest, "validation manifest")
    if not isinstance(data, dict) or not isinstance(data.get("sets"), list) or not data["sets"]:
        raise SparsimInputError("expected a non-empty 'sets:' list", path=manifest, field="sets",
                                hint="each entry: name, title, arch, measured, dtype, role, source")
    out, seen = [], set()
    for i, entry in enumerate(data["sets"]):
        where = f"sets[{i}]"
        if not isinstance(entry, dict):
            raise SparsimInputError("each set must be a mapping", path=manifest, field=where)
        missing = [k for k in ("name", "arch", "measured") if not entry.get(k)]
        if missing:
            raise SparsimInputError(f"missing {', '.join(missing)}", path=manifest, field=where,
                                    hint="each entry needs name, arch and measured")
        known = {"name", "title", "arch", "measured", "dtype", "role", "source", "timing", "set_on"}
        unknown = sorted(set(entry) - known)
        if unknown:
            raise SparsimInputError(f"unknown key(s) {', '.join(unknown)}", path=manifest, field=where,
                                    hint="known: " + ", ".join(sorted(known)))
        try:
            timing = timing_from_mapping(entry["timing"], f"{where}.timing") if "timing" in entry else None
        except SparsimInputError as exc:
            raise exc.located(manifest) from None
        name = str(entry["name"])
        if not name.replace("_", "").replace("-", "").isalnum() or name in seen:
            raise SparsimInputError(f"set name '{name}' must be unique and use letters, digits, '_' or '-'",
                                    path=manifest, field=f"{where}.name")
        seen.add(name)
        role = entry.get("role", "held_out")
        if role not in ROLES:
            raise SparsimInputError(f"unknown role '{role}'", path=manifest, field=f"{where}.role",
                                    hint="one of " + ", ".join(ROLES))
        out.append(ValidationSet(name=name, title=str(entry.get("title") or name),
                                 arch=(manifest.parent / entry["arch"]).resolve(),
                                 measured=(manifest.parent / entry["measured"]).resolve(),
                                 dtype=str(entry.get("dtype") or "fp16"), role=role,
                                 source=" ".join(str(entry.get("source") or "").split()), timing=timing,
                                 set_on=tuple(str(f) for f in (entry.get("set_on") or []))))
    return out


def markdown_table(result: CrossCheck) -> str:
    lines = ["| kernel | dtype | shape (M x N x K) | measured ms | predicted ms | error % |",
             "|---|---|---|---|---|---|"]
    for r in result.rows.itertuples():
        lines.append(f"| {r.kernel} | {r.dtype} | {r.shape} | {r.measured_ms:.4g} | {r.predicted_ms:.4g} | "
                     f"{r.error_pct:+.1f} |")
    return "\n".join(lines)


def _validation_markdown(outcomes: list[ValidationOutcome], link_base: Path) -> str:
    parts = ["Regenerate everything below (tables, plots, MAPE lines) with `sparsim validate-gpu`; the sets "
             "are listed in `analysis/measured/sets.yaml`. A `calibration` set was used to set the spec's "
             "efficiency factors, so its MAPE measures fit quality, not prediction error."]
    for o in outcomes:
        parts.append(f"#### {o.set.title}")
        rel = lambda p: Path(os.path.relpath(p, link_base)).as_posix()  # noqa: E731
        parts.append(f"Spec `{rel(o.set.arch)}`, role **{o.set.role}**. Source: {o.set.source}")
        if o.result is None:
            parts.append(f"Not regenerated: `{o.set.measured.name}` is not present in this checkout.")
            continue
        parts.append(f"Timing: {o.result.timing}. Set on this data: "
                     + (", ".join(f"`{f}`" for f in o.set.set_on) if o.set.set_on else "nothing (held out)") + ".")
        parts.append(f"`MAPE: {o.result.mape_pct:.1f}% over {o.result.n} kernels` "
                     f"(log-log correlation {o.result.log_correlation:.3f})")
        for w in o.result.warnings:
            parts.append(f"- warning: {w}")
        parts.append(markdown_table(o.result))
        if o.plot is not None:
            parts.append(f"![{o.set.title}: predicted vs measured]({rel(o.plot)})")
    return "\n\n".join(parts) + "\n"


def prediction_tables(manifest: str | Path) -> str:
    """Markdown tables of model outputs named by the manifest's optional `predictions:` block:
    dense TFLOP/s per (M, N=K) and 2:4-over-dense speedups, per spec (no measurement behind them)."""
    manifest = Path(manifest)
    data = read_yaml(manifest, "validation manifest") or {}
    pred = data.get("predictions")
    if not pred:
        return ""
    try:
        archs = [(manifest.parent / a).resolve() for a in pred["archs"]]
        ms, nks = [int(m) for m in pred["M"]], [int(n) for n in pred["NK"]]
        sparse_ms = [int(m) for m in pred.get("sparse_M", [])]
    except (KeyError, TypeError, ValueError):
        raise SparsimInputError("predictions needs archs, M and NK lists (sparse_M optional)", path=manifest,
                                field="predictions") from None
    parts = ["#### Model outputs without a measurement (dense fp16 TFLOP/s; N = K)"]
    for path in archs:
        arch = load_arch(path)
        head = "| N = K | " + " | ".join(f"M = {m}" for m in ms) + " |"
        lines = [f"`{arch.name}`", "", head, "|---" * (len(ms) + 1) + "|"]
        for nk in nks:
            cells = []
            for m in ms:
                t = predict_s(MeasuredKernel(kernel="gemm", dtype="fp16", latency_s=1.0, M=m, N=nk, K=nk), arch)
                cells.append(f"{2.0 * m * nk * nk / t / 1e12:.0f}")
            lines.append(f"| {nk} | " + " | ".join(cells) + " |")
        if sparse_ms and any(r.sparse_2_4_flops_per_cycle_per_sm for r in arch.compute.tensor_math.values()):
            lines += ["", "2:4-sparse speedup over dense (same shapes):", "",
                      "| N = K | " + " | ".join(f"M = {m}" for m in sparse_ms) + " |",
                      "|---" * (len(sparse_ms) + 1) + "|"]
            for nk in nks:
                cells = []
                for m in sparse_ms:
                    dense = predict_s(MeasuredKernel(kernel="gemm", dtype="fp16", latency_s=1.0, M=m, N=nk, K=nk), arch)
                    sparse = predict_s(MeasuredKernel(kernel="gemm_2to4", dtype="fp16", latency_s=1.0, M=m, N=nk,
                                                      K=nk), arch)
                    cells.append(f"{dense / sparse:.2f}")
                lines.append(f"| {nk} | " + " | ".join(cells) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def replace_generated_block(doc: str, block: str, path: str | Path = "docs") -> str:
    """`doc` with the text between VALIDATION_BEGIN and VALIDATION_END replaced by `block`."""
    if doc.count(VALIDATION_BEGIN) != 1 or doc.count(VALIDATION_END) != 1 or \
            doc.index(VALIDATION_BEGIN) > doc.index(VALIDATION_END):
        raise SparsimInputError("the docs file lacks exactly one validation block", path=path,
                                hint=f"add the lines {VALIDATION_BEGIN} and {VALIDATION_END}")
    head, rest = doc.split(VALIDATION_BEGIN)
    _, tail = rest.split(VALIDATION_END)
    return f"{head}{VALIDATION_BEGIN}\n\n{block}\n{VALIDATION_END}{tail}"


def regenerate_validation(manifest: str | Path, out_dir: str | Path,
                          docs: str | Path | None = None, loso: list | None = None) -> list[ValidationOutcome]:
    """Cross-check every set of `manifest`; write reports, plots and validation.md; refresh `docs`.
    `loso`: leave-one-set-out results already computed for `manifest` (computed here when None)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    outcomes = []
    for vs in load_sets(manifest):
        if not vs.measured.exists():
            outcomes.append(ValidationOutcome(vs, None))
            continue
        result = crosscheck(load_arch(vs.arch), load_measured(vs.measured, default_dtype=vs.dtype), vs.timing)
        report = out_dir / f"{vs.name}_report.csv"
        result.rows.to_csv(report, index=False)
        plot = write_scatter(result, out_dir / f"{vs.name}_scatter.png", vs.title)
        outcomes.append(ValidationOutcome(vs, result, report, plot))
    from analysis.loso import leave_one_set_out, markdown as loso_markdown
    loso_md = loso_markdown(leave_one_set_out(manifest) if loso is None else loso)
    predictions = (loso_md + "\n" if loso_md else "") + prediction_tables(manifest)
    (out_dir / "validation.md").write_text("# GPU validation\n\n" + _validation_markdown(outcomes, out_dir)
                                           + ("\n" + predictions if predictions else ""))
    if docs is not None:
        docs = Path(docs)
        if not docs.exists():
            raise SparsimInputError("docs file not found", path=docs, hint="pass --docs docs/gpu.md or --no-docs")
        block = _validation_markdown(outcomes, docs.resolve().parent) + ("\n" + predictions if predictions else "")
        docs.write_text(replace_generated_block(docs.read_text(), block, docs))
    return outcomes


__all__ = ["ops_for", "predict_s", "predict_observed_s", "default_timing", "coordinate_search", "CrossCheck", "crosscheck", "write_scatter", "fit_factors", "ValidationSet",
           "ValidationOutcome", "load_sets", "markdown_table", "prediction_tables", "replace_generated_block",
           "regenerate_validation", "VALIDATION_BEGIN", "VALIDATION_END"]
