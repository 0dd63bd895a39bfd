"""GPU measurement harness: time real kernels with PyTorch on a CUDA GPU, write one tidy CSV.

Suites (shape grids are plain functions, testable without a GPU):
- dense GEMMs `torch.matmul` over an M x N x K grid, fp16 / bf16, and int8 via
  `torch._int_mm` where the build supports it (int8 needs M > 16 and K, N multiples of 8);
- 2:4 semi-structured GEMMs: the weight pruned 2:4 and converted with
  `torch.sparse.to_sparse_semi_structured` (cuSPARSELt or CUTLASS), timed as `F.linear`;
- decode GEMV shapes M = 1..16 (dense, and 2:4 when supported);
- scaled-dot-product attention `F.scaled_dot_product_attention` over sequence lengths;
- MoE grouped GEMMs: one `torch.matmul` per expert with its token count, timed together.

Timing: CUDA events around each call, `warmup` untimed calls first, `repeats` timed calls,
the median reported with min/max; an L2-flushing write between repeats is optional
(`flush_l2`). Each call is wrapped in an NVTX range named by `shape_label`, so runs under
`ncu`/`nsys`/`torch.profiler` can be imported with shapes (`analysis.importers`).
Recorded per row: device name, SM count, SM and memory clocks sampled by nvidia-smi right
after the case's timed repeats (empty without nvidia-smi), driver, CUDA, cuDNN, torch and
cuSPARSELt versions, date. No GPU, or no torch: `SparsimInputError`.
"""

from __future__ import annotations

import csv
import datetime as _dt
import logging
import shutil
import statistics
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from simulator.errors import SparsimInputError, install_hint

log = logging.getLogger(__name__)

CSV_COLUMNS = (
    "kernel", "dtype", "M", "N", "K", "batch", "heads", "kv_heads", "q_len", "kv_len", "head_dim",
    "tokens_per_expert", "latency_ms", "latency_min_ms", "latency_max_ms", "repeats", "warmup", "tflops",
    "timing", "floor_us",
    "name", "device", "sm_count", "sm_clock_mhz", "mem_clock_mhz", "driver", "cuda", "cudnn", "torch",
    "sparse_backend", "date_utc",
)
SUITES = ("gemm", "gemm_2to4", "gemv", "sdpa", "moe_gemm")
HARNESS_DTYPES = ("fp16", "bf16", "int8")


@dataclass(frozen=True)
class Case:
    """One measurement: a kernel kind, a dtype and its dims (unused dims are 0)."""
    kernel: str
    dtype: str
    M: int = 0
    N: int = 0
    K: int = 0
    batch: int = 1
    heads: int = 0
    kv_heads: int = 0
    q_len: int = 0
    kv_len: int = 0
    head_dim: int = 0
    tokens_per_expert: tuple[int, ...] = ()

    @property
    def flops(self) -> float:
        if self.kernel == "sdpa":
            return 4.0 * self.batch * self.heads * self.q_len * self.kv_len * self.head_dim
        if self.kernel == "moe_gemm":
            return 2.0 * sum(self.tokens_per_expert) * self.N * self.K
        return 2.0 * self.M * self.N * self.K * self.batch

    @property
    def label(self) -> str:
        from analysis.importers import shape_label
        if self.kernel == "sdpa":
            return shape_label("sdpa", self.dtype, batch=self.batch, heads=self.heads, kv_heads=self.kv_heads,
                               q_len=self.q_len, kv_len=self.kv_len, head_dim=self.head_dim)
        if self.kernel == "moe_gemm":
            return shape_label("moe_gemm", self.dtype, N=self.N, K=self.K, tokens_per_expert=self.tokens_per_expert)
        return shape_label(self.kernel, self.dtype, M=self.M, N=self.N, K=self.K,
                           batch=self.batch if self.batch > 1 else 0)


@dataclass(frozen=True)
class Grid:
    """What to measure. `quick` is a minutes-long subset; the defaults are the full grid."""
    gemm_m: tuple[int, ...] = (64, 128, 256, 512, 1024, 2048, 4096, 8192)
    gemm_nk: tuple[tuple[int, int], ...] = ((4096, 4096), (8192, 8192), (12288, 12288), (4096, 14336),
                                            (14336, 4096), (1024, 1024), (2048, 2048))
    square: tuple[int, ...] = (256, 512, 1024, 2048, 4096, 8192, 16384)
    dtypes: tuple[str, ...] = ("fp16", "bf16", "int8")
    gemv_m: tuple[int, ...] = (1, 2, 4, 8, 16)
    gemv_nk: tuple[tuple[int, int], ...] = ((4096, 4096), (14336, 4096), (4096, 14336), (12288, 12288))
    sdpa_seq: tuple[int, ...] = (128, 256, 512, 1024, 2048, 4096, 8192)
    sdpa_heads: int = 32
    sdpa_head_dim: int = 128
    sdpa_tokens: int = 16384          # batch = tokens // seq, so every length does similar work
    moe_experts: int = 8
    moe_tokens: tuple[int, ...] = (64, 512, 4096)
    moe_nk: tuple[tuple[int, int], ...] = ((14336, 4096), (4096, 14336))

    @classmethod
    def quick(cls) -> "Grid":
        return cls(gemm_m=(64, 1024, 8192), gemm_nk=((4096, 4096), (12288, 12288)), square=(1024, 8192),
                   gemv_m=(1, 16), gemv_nk=((4096, 4096),), sdpa_seq=(512, 4096), moe_tokens=(512,),
                   moe_nk=((14336, 4096),))


def _int8_ok(c: Case) -> bool:
    # torch._int_mm: M > 16, and K, N multiples of 8 (PyTorch docs for _int_mm / cuBLASLt int8).
    return c.M > 16 and c.K % 8 == 0 and c.N % 8 == 0


def _semi_structured_ok(c: Case) -> bool:
    # to_sparse_semi_structured needs the sparse (weight) dims to be multiples of 64/128; the
    # dense input's rows are padded by PyTorch, so small M is allowed.
    return c.N % 64 == 0 and c.K % 128 == 0


def moe_token_split(total: int, experts: int) -> tuple[int, ...]:
    """A skewed but deterministic router outcome: expert i gets a share proportional to (experts - i)."""
    weights = [experts - i for i in range(experts)]
    raw = [total * w / sum(weights) for w in weights]
    counts = [int(r) for r in raw]
    for i in range(total - sum(counts)):
        counts[i % experts] += 1
    return tuple(counts)


def build_cases(grid: Grid, suites: Iterable[str] = SUITES, dtypes: Iterable[str] | None = None) -> list[Case]:
    """Every case of the chosen suites and dtypes, unsupported combinations left out by rule."""
    suites = tuple(suites)
    dtypes = tuple(dtypes or grid.dtypes)
    for s in suites:
        if s not in SUITES:
            raise SparsimInputError(f"unknown suite '{s}'", field="--suite", hint="one of " + ", ".join(SUITES))
    for d in dtypes:
        if d not in HARNESS_DTYPES:
            raise SparsimInputError(f"unknown dtype '{d}'", field="--dtype", hint="one of " + ", ".join(HARNESS_DTYPES))
    cases: list[Case] = []
    shapes = [(m, n, k) for m in grid.gemm_m for n, k in grid.gemm_nk] + [(s, s, s) for s in grid.square]
    shapes = list(dict.fromkeys(shapes))
    float_dtypes = [d for d in dtypes if d != "int8"]
    if "gemm" in suites:
        for d in dtypes:
            for m, n, k in shapes:
                c = Case("gemm", d, M=m, N=n, K=k)
                if d != "int8" or _int8_ok(c):
                    cases.append(c)
    if "gemm_2to4" in suites:
        for d in float_dtypes:
            for m, n, k in shapes:
                c = Case("gemm_2to4", d, M=m, N=n, K=k)
                if _semi_structured_ok(c):
                    cases.append(c)
    if "gemv" in suites:
        for d in float_dtypes:
            for m in grid.gemv_m:
                for n, k in grid.gemv_nk:
                    cases.append(Case("gemv", d, M=m, N=n, K=k))
                    if _semi_structured_ok(Case("gemm_2to4", d, M=m, N=n, K=k)):
                        cases.append(Case("gemm_2to4", d, M=m, N=n, K=k))
    if "sdpa" in suites:
        for d in float_dtypes:
            for s in grid.sdpa_seq:
                cases.append(Case("sdpa", d, batch=max(1, grid.sdpa_tokens // s), heads=grid.sdpa_heads,
                                  kv_heads=grid.sdpa_heads, q_len=s, kv_len=s, head_dim=grid.sdpa_head_dim))
    if "moe_gemm" in suites:
        for d in float_dtypes:
            for t in grid.moe_tokens:
                for n, k in grid.moe_nk:
                    cases.append(Case("moe_gemm", d, N=n, K=k, tokens_per_expert=moe_token_split(t, grid.moe_experts)))
    return cases


# ----------------------------------------------------------------------------- environment

def require_cuda():
    """The torch module, or a SparsimInputError saying why this machine cannot measure."""
    try:
        import torch
    except ImportError:
        raise SparsimInputError("PyTorch is not installed, so nothing can be measured", field="measure",
                                hint=install_hint("torch") + " on a machine with a CUDA GPU") from None
    if not torch.cuda.is_available():
        raise SparsimInputError("no CUDA GPU is visible to PyTorch; the harness must run on a GPU machine",
                                field="measure", hint="run `sparsim measure` on a host with an NVIDIA GPU and a CUDA build of "
                                "PyTorch; check nvidia-smi and torch.version.cuda")
    return torch


def _nvidia_smi(query: str) -> str:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return ""
    try:
        out = subprocess.run([exe, f"--query-gpu={query}", "--format=csv,noheader,nounits", "-i", "0"],
                             capture_output=True, text=True, timeout=20)
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def environment(torch) -> dict:
    """Device name, clocks, driver and library versions, recorded in every row."""
    props = torch.cuda.get_device_properties(0)
    smi = _nvidia_smi("clocks.sm,clocks.mem,driver_version").split(", ")
    sparse_backend = ""
    try:
        from torch.sparse import SparseSemiStructuredTensor
        sparse_backend = "cutlass" if getattr(SparseSemiStructuredTensor, "_FORCE_CUTLASS", False) else "cusparselt"
        if sparse_backend == "cusparselt":
            try:
                version = torch.backends.cusparselt.version()
            except (AttributeError, RuntimeError):
                version = None
            sparse_backend += f" {version}" if version else " (not available in this build)"
    except ImportError:
        sparse_backend = "unavailable"
    return {
        "device": props.name, "sm_count": props.multi_processor_count,
        "sm_clock_mhz": smi[0] if len(smi) > 0 else "", "mem_clock_mhz": smi[1] if len(smi) > 1 else "",
        "driver": smi[2] if len(smi) > 2 else "", "cuda": torch.version.cuda or "",
        "cudnn": str(torch.backends.cudnn.version() or ""), "torch": torch.__version__,
        "sparse_backend": sparse_backend,
        "date_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


# ----------------------------------------------------------------------------- timing

@dataclass
class Timing:
    median_ms: float
    min_ms: float
    max_ms: float
    samples_ms: list[float] = field(default_factory=list)


def time_call(torch, fn: Callable[[], object], *, warmup: int, repeats: int, label: str = "",
              flush: Callable[[], object] | None = None) -> Timing:
    """Median of `repeats` CUDA-event timings of `fn()` after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    samples = []
    for _ in range(repeats):
        if flush is not None:
            flush()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.nvtx.range_push(label)
        with torch.profiler.record_function(label):   # the same label for torch.profiler tables
            start.record()
            fn()
            end.record()
        torch.cuda.nvtx.range_pop()
        end.synchronize()
        samples.append(start.elapsed_time(end))
    return Timing(statistics.median(samples), min(samples), max(samples), samples)


def measure_floor_us(torch, *, warmup: int, repeats: int, flush=None) -> float:
    """This machine's per-call floor under `time_call`: a one-element add timed the same way (host
    dispatch + one tiny kernel). `analysis.timing` subtracts the GPU's launch time from it."""
    x = torch.zeros(1, device="cuda")
    return time_call(torch, lambda: x.add_(1), warmup=warmup, repeats=repeats, label="sparsim floor",
                     flush=flush).median_ms * 1e3


def _torch_dtype(torch, name: str):
    return {"fp16": torch.float16, "bf16": torch.bfloat16, "int8": torch.int8}[name]


def prune_2_4(torch, w):
    """Keep the 2 largest-magnitude values of every 4 along the last dim (a valid 2:4 mask)."""
    groups = w.reshape(-1, 4)
    keep = groups.abs().topk(2, dim=1).indices
    mask = torch.zeros_like(groups, dtype=torch.bool).scatter_(1, keep, True)
    return (groups * mask).reshape(w.shape)


def make_callable(torch, case: Case) -> Callable[[], object]:
    """A zero-argument function that launches the case's kernel(s) on fresh device tensors."""
    dev = "cuda"
    dt = _torch_dtype(torch, case.dtype)
    F = torch.nn.functional
    if case.kernel in ("gemm", "gemv") and case.dtype == "int8":
        a = torch.randint(-8, 8, (case.M, case.K), device=dev, dtype=torch.int8)
        b = torch.randint(-8, 8, (case.K, case.N), device=dev, dtype=torch.int8)
        return lambda: torch._int_mm(a, b)
    if case.kernel in ("gemm", "gemv"):
        a = torch.randn(case.M, case.K, device=dev, dtype=dt)
        b = torch.randn(case.K, case.N, device=dev, dtype=dt)
        return lambda: torch.matmul(a, b)
    if case.kernel == "gemm_2to4":
        from torch.sparse import to_sparse_semi_structured
        w = prune_2_4(torch, torch.randn(case.N, case.K, device=dev, dtype=dt))
        ws = to_sparse_semi_structured(w)
        x = torch.randn(case.M, case.K, device=dev, dtype=dt)
        return lambda: F.linear(x, ws)
    if case.kernel == "sdpa":
        q = torch.randn(case.batch, case.heads, case.q_len, case.head_dim, device=dev, dtype=dt)
        k = torch.randn(case.batch, case.kv_heads or case.heads, case.kv_len, case.head_dim, device=dev, dtype=dt)
        v = torch.randn_like(k)
        return lambda: F.scaled_dot_product_attention(q, k, v)
    if case.kernel == "moe_gemm":
        xs = [torch.randn(t, case.K, device=dev, dtype=dt) for t in case.tokens_per_expert if t]
        ws = [torch.randn(case.K, case.N, device=dev, dtype=dt) for t in case.tokens_per_expert if t]
        return lambda: [torch.matmul(x, w) for x, w in zip(xs, ws)]
    raise SparsimInputError(f"unknown kernel '{case.kernel}'", field="kernel")


def row_for(case: Case, timing: Timing, env: dict, warmup: int, repeats: int) -> dict:
    row = {c: "" for c in CSV_COLUMNS}
    row.update({"kernel": case.kernel, "dtype": case.dtype, "M": case.M, "N": case.N, "K": case.K,
                "batch": case.batch, "heads": case.heads, "kv_heads": case.kv_heads, "q_len": case.q_len,
                "kv_len": case.kv_len, "head_dim": case.head_dim,
                "tokens_per_expert": ";".join(str(t) for t in case.tokens_per_expert),
                "latency_ms": f"{timing.median_ms:.6g}", "latency_min_ms": f"{timing.min_ms:.6g}",
                "latency_max_ms": f"{timing.max_ms:.6g}", "repeats": repeats, "warmup": warmup,
                "tflops": f"{case.flops / (timing.median_ms * 1e-3) / 1e12:.6g}", "name": case.label})
    row.update({k: v for k, v in env.items() if k in CSV_COLUMNS})
    return row


def write_csv(rows: list[dict], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(CSV_COLUMNS))
        writer.writeheader()
        for r in rows:
            writer.writerow({c: r.get(c, "") for c in CSV_COLUMNS})
    return path


def run(out: str | Path, *, grid: Grid | None = None, suites: Iterable[str] = SUITES,
        dtypes: Iterable[str] | None = None, warmup: int = 10, repeats: int = 50, flush_l2: bool = False,
        progress: Callable[[int, int, Case], None] | None = None) -> list[dict]:
    """Measure every case on GPU 0 and write the tidy CSV to `out`. Needs CUDA."""
    if warmup < 0 or repeats < 1:
        raise SparsimInputError("need warmup >= 0 and repeats >= 1", field="--repeats")
    cases = build_cases(grid or Grid(), suites, dtypes)
    torch = require_cuda()
    env = environment(torch)
    flush = None
    if flush_l2:
        scratch = torch.empty(256 * 2 ** 20, dtype=torch.uint8, device="cuda")
        flush = scratch.zero_
    floor_us = measure_floor_us(torch, warmup=warmup, repeats=repeats, flush=flush)
    env = dict(env, timing="events_sync", floor_us=f"{floor_us:.4g}")
    rows = []
    for i, case in enumerate(cases):
        if progress:
            progress(i, len(cases), case)
        try:
            fn = make_callable(torch, case)
            timing = time_call(torch, fn, warmup=warmup, repeats=repeats, label=case.label, flush=flush)
        except (RuntimeError, NotImplementedError) as exc:   # unsupported on this GPU/build: say so, go on
            log.warning("skipped %s: %s", case.label, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            continue
        finally:
            torch.cuda.empty_cache()
        # Clocks right after the timed repeats (nvidia-smi at the start of a run shows idle clocks).
        clocks = _nvidia_smi("clocks.sm,clocks.mem").split(", ")
        row_env = dict(env, **({"sm_clock_mhz": clocks[0], "mem_clock_mhz": clocks[1]} if len(clocks) == 2 else {}))
        rows.append(row_for(case, timing, row_env, warmup, repeats))
        write_csv(rows, out)        # rewrite as we go: a killed run keeps what it measured
    write_csv(rows, out)
    return rows


__all__ = ["CSV_COLUMNS", "SUITES", "Case", "Grid", "build_cases", "require_cuda", "environment", "time_call",
           "measure_floor_us",
           "make_callable", "prune_2_4", "row_for", "write_csv", "run", "moe_token_split"]
