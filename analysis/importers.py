"""Importers for measured GPU kernel times: one canonical record per kernel, units parsed, not assumed.

Formats read (`load_measured` detects which):

- **harness** CSV written by `analysis.measure.harness` (`sparsim measure`): columns
  `kernel, dtype, M, N, K, batch, ..., latency_ms` (see `analysis.measure.harness.CSV_COLUMNS`).
- **minimal** CSV: `M,N,K` plus one time column whose name carries its unit
  (`latency_ms`, `time_us`, `duration_ns`, `latency_s`, ...), optionally `dtype`, `batch`,
  `kernel`, `tflops` (informative; ignored). The LLMCompass MI210 file is of this kind.
- **ncu** `--csv` output of Nsight Compute, long format (one row per metric, `Metric Name`,
  `Metric Unit`, `Metric Value`; the `Duration` / `gpu__time_duration.sum` metric) and
  `--page raw` (one row per kernel, metric names as columns, a second header row of units).
- **nsys** `stats` kernel summaries (`cuda_gpu_kern_sum`, older `gpukernsum`, and
  `nvtx_kern_sum`) as CSV; the unit comes from the header, e.g. `Med (ns)`.
- **torch.profiler** `key_averages().table()` text; every time cell carries its own unit
  (`12.3us`, `1.2ms`); the `CUDA time avg` / `Device time avg` column is used.

Profiler outputs carry kernel *names*, not shapes: the harness labels each measured call
with an NVTX range / `record_function` named like `sparsim gemm M=4096 N=4096 K=4096
dtype=fp16` (see `shape_label`), and with `ncu --nvtx --print-nvtx-rename kernel` or
`nsys stats -r nvtx_kern_sum` that label becomes the row's name. Rows whose name holds no
shape are reported in one warning (never dropped silently).

Numbers may be locale-formatted ("1,234.5", "1.234,5", "1 234"; a lone comma followed by
exactly three digits, "1,234", is read as a thousands separator); times must be positive;
a bad row becomes a per-row warning, an unreadable file one `SparsimInputError`.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from analysis.measure.harness import Case
from analysis.timing import TimingMethod
from simulator.errors import SparsimInputError

KERNEL_KINDS = ("gemm", "gemm_2to4", "gemv", "sdpa", "moe_gemm")
DTYPES = ("fp16", "bf16", "int8", "fp8", "tf32", "fp32")
UNIT_SECONDS = {
    "ns": 1e-9, "nsecond": 1e-9, "nanosecond": 1e-9, "nanoseconds": 1e-9,
    "us": 1e-6, "usecond": 1e-6, "µs": 1e-6, "μs": 1e-6, "microsecond": 1e-6, "microseconds": 1e-6,
    "ms": 1e-3, "msecond": 1e-3, "millisecond": 1e-3, "milliseconds": 1e-3,
    "s": 1.0, "second": 1.0, "sec": 1.0, "seconds": 1.0,
}
TIME_WORDS = ("latency", "time", "duration", "runtime", "elapsed", "median", "avg", "mean")
DTYPE_ALIASES = {
    "fp16": "fp16", "float16": "fp16", "half": "fp16", "f16": "fp16", "torch.float16": "fp16",
    "bf16": "bf16", "bfloat16": "bf16", "torch.bfloat16": "bf16",
    "int8": "int8", "i8": "int8", "s8": "int8", "torch.int8": "int8",
    "fp8": "fp8", "float8": "fp8", "e4m3": "fp8", "float8_e4m3fn": "fp8", "torch.float8_e4m3fn": "fp8",
    "tf32": "tf32", "fp32": "fp32", "float32": "fp32", "float": "fp32", "f32": "fp32", "torch.float32": "fp32",
}
MINIMAL_KNOWN = {"m", "n", "k", "dtype", "batch", "kernel", "name", "tflops", "tops", "gflops", "count"}


@dataclass(frozen=True)
class MeasuredKernel(Case):
    """One measured kernel (or labelled op): the harness's `Case` (kind, dtype, dims) plus its time."""
    latency_s: float = field(kw_only=True)
    name: str = ""
    source: str = ""                 # file:line for messages

    @property
    def shape(self) -> str:
        if self.kernel == "sdpa":
            return f"b{self.batch} h{self.heads}/{self.kv_heads or self.heads} q{self.q_len} kv{self.kv_len} d{self.head_dim}"
        if self.kernel == "moe_gemm":
            return f"experts {len(self.tokens_per_expert)} tokens {sum(self.tokens_per_expert)} N{self.N} K{self.K}"
        b = f"x{self.batch} " if self.batch > 1 else ""
        return f"{b}{self.M}x{self.N}x{self.K}"


@dataclass
class MeasuredSet:
    kernels: list[MeasuredKernel]
    format: str
    path: str
    warnings: list[str] = field(default_factory=list)
    timing: TimingMethod | None = None      # how the file says it was timed (harness: `timing`, `floor_us`)


# ----------------------------------------------------------------------------- number and unit parsing

def normalize_dtype(text: str) -> str:
    """'float16', 'half', 'torch.float16' -> 'fp16'; an unknown name is returned lower-cased as it is."""
    low = str(text).strip().lower()
    return DTYPE_ALIASES.get(low, low)


def parse_number(text: str) -> float:
    """A number as people and tools print it: '1,234.5', '1.234,5', '1 234', '12%'. ValueError if not."""
    s = str(text).strip().replace("\u00a0", "").replace("\u202f", "").replace(" ", "").replace("'", "")
    s = s.rstrip("%")
    if not s:
        raise ValueError("empty")
    if "," in s and "." in s:
        if s.rfind(",") > s.rfind("."):      # 1.234,5 -> decimal comma
            s = s.replace(".", "").replace(",", ".")
        else:                                # 1,234.5 -> thousands comma
            s = s.replace(",", "")
    elif "," in s:
        parts = s.lstrip("+-").split(",")
        # '1,234' or '12,345,678' are thousands groups; '0,5' or '12,25' a decimal comma.
        if len(parts) > 2 or (len(parts[-1]) == 3 and parts[0] not in ("0", "")):
            s = s.replace(",", "")
        else:
            s = s.replace(",", ".")
    return float(s)


_QUANTITY = re.compile(r"^\s*([-+]?[0-9][0-9.,\s'\u00a0]*)\s*([a-zA-Zµμ]+)\s*$")


def parse_duration_s(text: str, default_unit: str | None = None) -> float:
    """'12.3us' -> 1.23e-5. A bare number needs `default_unit` (from a header); ValueError otherwise."""
    m = _QUANTITY.match(str(text))
    if m:
        unit = m.group(2)
        if unit not in UNIT_SECONDS and unit.lower() not in UNIT_SECONDS:
            raise ValueError(f"unknown time unit '{unit}'")
        return parse_number(m.group(1)) * UNIT_SECONDS.get(unit, UNIT_SECONDS.get(unit.lower(), 0.0))
    value = parse_number(text)
    if default_unit is None:
        raise ValueError(f"'{text}' has no time unit")
    return value * UNIT_SECONDS[default_unit]


def unit_of_column(name: str) -> str | None:
    """The time unit a column name states: 'latency_ms' -> ms, 'Med (ns)' -> ns, 'time [us]' -> us."""
    low = name.strip().lower()
    m = re.search(r"[\(\[]\s*([a-zµμ]+)\s*[\)\]]\s*$", low)
    if m and m.group(1) in UNIT_SECONDS:
        return m.group(1)
    m = re.search(r"[_\s\-]([a-zµμ]+)$", low)
    if m and m.group(1) in UNIT_SECONDS:
        return m.group(1)
    return None


def shape_label(kernel: str, dtype: str, **dims) -> str:
    """The NVTX / record_function label the harness puts around a measured call."""
    parts = [f"sparsim {kernel}"]
    for key, value in dims.items():
        if key == "tokens_per_expert":
            parts.append("T=" + "/".join(str(t) for t in value))
        elif value:
            parts.append(f"{key}={value}")
    parts.append(f"dtype={dtype}")
    return " ".join(parts)


def parse_label(name: str) -> dict | None:
    """Fields of a `shape_label` string found anywhere in `name`; None when it has none."""
    m = re.search(r"sparsim\s+(gemm_2to4|gemm|gemv|sdpa|moe_gemm)\b(.*)", name)
    if not m:
        return None
    out: dict = {"kernel": m.group(1)}
    for key, value in re.findall(r"\b([A-Za-z_]+)=([^\s,;\]\)]+)", m.group(2)):
        if key == "dtype":
            out["dtype"] = normalize_dtype(value)
        elif key == "T":
            out["tokens_per_expert"] = tuple(int(t) for t in value.split("/") if t)
        elif key in ("batch", "heads", "kv_heads", "q_len", "kv_len", "head_dim", "M", "N", "K"):
            out[key] = int(value)
    return out


# ----------------------------------------------------------------------------- file reading

def _read_text(path: Path) -> str:
    from simulator.inputs import read_bytes
    data = read_bytes(path, "measured file", max_bytes=512 << 20)  # profiler exports can be large
    for enc in ("utf-8-sig", "utf-16", "latin-1"):
        try:
            text = data.decode(enc)
            if "\x00" not in text:
                return text
        except UnicodeDecodeError:
            continue
    raise SparsimInputError("cannot decode the file as text", path=path)


def _csv_rows(text: str) -> list[list[str]]:
    # ncu prints '==PROF==' banner lines before the CSV; skip lines before the header.
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("==")]
    sample = "\n".join(lines[:5])[:4096]  # the sniffer's regexes are slow on long lines
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    return [row for row in csv.reader(io.StringIO("\n".join(lines)), dialect) if any(c.strip() for c in row)]


def detect_format(text: str) -> str:
    head = text[:4000]
    if re.search(r"^-{5,}\s+-{5,}", head, re.M) and re.search(r"\bName\b", head) and re.search(
            r"(CUDA|Device|CPU) (time|total)", head, re.I):
        return "torch_profiler"
    rows = _csv_rows(text)
    if not rows:
        return "empty"
    header = [c.strip() for c in rows[0]]
    low = {c.lower() for c in header}
    if {"metric name", "metric value"} <= low:
        return "ncu"
    if "kernel name" in low and any(c in low for c in ("gpu__time_duration.sum", "duration")) or (
            "id" in low and "kernel name" in low and len(rows) > 1 and any("second" in c for c in rows[1])):
        return "ncu_raw"
    if any(c.lower().startswith(("med (", "avg (", "average", "total time")) for c in header) and (
            "name" in low or "kernel name" in low or "nvtx range" in low):
        return "nsys"
    if "kernel" in low and "latency_ms" in low and "dtype" in low:
        return "harness"
    if {"m", "n", "k"} <= low:
        return "minimal"
    return "unknown"


def load_measured(path: str | Path, *, default_dtype: str = "fp16") -> MeasuredSet:
    """Read any supported measured-data file into canonical records (see the module docstring)."""
    path = Path(path)
    default_dtype = normalize_dtype(default_dtype)
    if default_dtype not in DTYPES:
        raise SparsimInputError(f"unknown dtype '{default_dtype}'", field="--dtype", hint="one of " + ", ".join(DTYPES))
    text = _read_text(path)
    try:
        fmt = detect_format(text)
    except csv.Error as exc:
        raise SparsimInputError(f"not a readable CSV ({exc})", path=path, hint="check the file") from None
    readers = {"harness": _read_table, "minimal": _read_table, "ncu": _read_ncu_long, "ncu_raw": _read_ncu_raw,
               "nsys": _read_nsys, "torch_profiler": _read_torch_profiler}
    if fmt not in readers:
        raise SparsimInputError("unrecognised measured-data format" + (" (empty file)" if fmt == "empty" else ""),
                                path=path, hint="expected the sparsim harness CSV, an M,N,K,latency_ms CSV, "
                                "ncu --csv, nsys stats CSV or a torch.profiler key_averages table")
    try:
        result = readers[fmt](text, path, default_dtype)
    except csv.Error as exc:
        raise SparsimInputError(f"not a readable CSV ({exc})", path=path, hint="check the file") from None
    result.format = fmt
    if not result.kernels:
        detail = ("; " + "; ".join(result.warnings[:3])) if result.warnings else ""
        raise SparsimInputError(f"no usable kernels in the file ({fmt} format){detail}", path=path,
                                hint="see the warnings; every row needs a shape and a positive time")
    return result


def _check_time(value: float, where: str, warnings: list[str]) -> bool:
    if not math.isfinite(value) or value <= 0:
        warnings.append(f"{where}: time {value:g} s is not positive; row skipped")
        return False
    return True


def _record_from_fields(fields: dict, latency_s: float, default_dtype: str, name: str, source: str,
                        warnings: list[str]) -> MeasuredKernel | None:
    kernel = fields.get("kernel", "gemm")
    dtype = fields.get("dtype") or default_dtype
    if kernel not in KERNEL_KINDS:
        warnings.append(f"{source}: unknown kernel kind '{kernel}' (known: {', '.join(KERNEL_KINDS)}); row skipped")
        return None
    if dtype not in DTYPES:
        warnings.append(f"{source}: unknown dtype '{dtype}' (known: {', '.join(DTYPES)}); row skipped")
        return None
    if not _check_time(latency_s, source, warnings):
        return None
    rec = MeasuredKernel(kernel=kernel, dtype=dtype, latency_s=latency_s, name=name, source=source,
                         **{k: v for k, v in fields.items() if k not in ("kernel", "dtype")})
    need = {"sdpa": ("heads", "q_len", "kv_len", "head_dim"), "moe_gemm": ("N", "K", "tokens_per_expert")}.get(
        kernel, ("M", "N", "K"))
    missing = [k for k in need if not getattr(rec, k)]
    if missing:
        warnings.append(f"{source}: {kernel} row lacks {', '.join(missing)} (or they are 0); row skipped")
        return None
    return rec


def _read_table(text: str, path: Path, default_dtype: str) -> MeasuredSet:
    """Harness and minimal CSVs: named columns, one kernel per row."""
    rows = _csv_rows(text)
    header = [c.strip() for c in rows[0]]
    low = [c.lower() for c in header]
    from analysis.measure.harness import CSV_COLUMNS
    harness_known = {c.lower() for c in CSV_COLUMNS}
    is_harness = "kernel" in low and "latency_ms" in low and "dtype" in low
    time_cols = [c for c in header if unit_of_column(c) and any(w in c.lower() for w in TIME_WORDS)]
    if is_harness:
        time_col = "latency_ms"
        unknown = [c for c in header if c.lower() not in harness_known]
    else:
        if not time_cols:
            raise SparsimInputError("no time column with a unit in its name", path=path,
                                    field="header", hint="name it e.g. latency_ms, time_us or duration_ns")
        time_col = time_cols[0]
        unknown = [c for c in header if c.lower() not in MINIMAL_KNOWN and c not in time_cols]
    if unknown:
        raise SparsimInputError(f"unknown column(s): {', '.join(unknown)}", path=path, field="header",
                                hint="known: M, N, K, dtype, batch, kernel, tflops and one time column with a "
                                     "unit (latency_ms, time_us, ...)" if not is_harness else
                                     "the harness schema is analysis.measure.harness.CSV_COLUMNS")
    unit = unit_of_column(time_col)
    idx = {c.lower(): i for i, c in enumerate(header)}
    out, warnings = [], []
    int_fields = ("M", "N", "K", "batch", "heads", "kv_heads", "q_len", "kv_len", "head_dim")
    for line_no, row in enumerate(rows[1:], start=2):
        source = f"{path.name}:{line_no}"
        cell = lambda name: row[idx[name]].strip() if name in idx and idx[name] < len(row) else ""  # noqa: E731
        try:
            latency = parse_duration_s(cell(time_col.lower()), unit)
            fields: dict = {}
            for f in int_fields:
                raw = cell(f.lower())
                if raw not in ("", "nan"):
                    value = parse_number(raw)
                    if value != int(value) or value < 0:
                        raise ValueError(f"{f}={raw} is not a non-negative integer")
                    fields[f] = int(value)
            if cell("kernel"):
                fields["kernel"] = cell("kernel").lower()
            if cell("dtype"):
                fields["dtype"] = normalize_dtype(cell("dtype"))
            tpe = cell("tokens_per_expert")
            if tpe:
                fields["tokens_per_expert"] = tuple(int(parse_number(t)) for t in re.split(r"[;/ ]+", tpe) if t)
        except ValueError as exc:
            warnings.append(f"{source}: cannot read the row ({exc}); row skipped")
            continue
        rec = _record_from_fields(fields, latency, default_dtype, cell("name"), source, warnings)
        if rec is not None:
            out.append(rec)
    return MeasuredSet(out, "", str(path), warnings, _file_timing(rows, idx, path))


def _file_timing(rows: list[list[str]], idx: dict[str, int], path: Path) -> TimingMethod | None:
    """The timing method a harness CSV states (`timing` column, measured `floor_us`), or None."""
    if "timing" not in idx:
        return None
    cells = lambda name: {r[idx[name]].strip() for r in rows[1:] if idx[name] < len(r) and r[idx[name]].strip()}  # noqa: E731
    methods = cells("timing")
    if not methods:
        return None
    if len(methods) > 1:
        raise SparsimInputError(f"rows were timed in different ways ({', '.join(sorted(methods))})", path=path,
                                field="timing", hint="split the file by timing method")
    floors = [parse_number(f) for f in cells("floor_us")] if "floor_us" in idx else []
    return TimingMethod(methods.pop(), floor_us=sorted(floors)[len(floors) // 2] if floors else None)


def _labelled_records(samples: dict[str, list[tuple[float, str]]], default_dtype: str,
                      warnings: list[str], path: Path) -> list[MeasuredKernel]:
    """Turn {name: [(seconds, source), ...]} into records, the median per labelled name."""
    out, unlabelled = [], []
    for name, values in samples.items():
        fields = parse_label(name)
        if fields is None:
            unlabelled.append(name)
            continue
        times = sorted(v for v, _ in values)
        median = times[len(times) // 2] if len(times) % 2 else 0.5 * (times[len(times) // 2 - 1] + times[len(times) // 2])
        rec = _record_from_fields(fields, median, default_dtype, name, values[0][1], warnings)
        if rec is not None:
            out.append(rec)
    if unlabelled:
        shown = ", ".join(sorted(unlabelled)[:4]) + (" ..." if len(unlabelled) > 4 else "")
        warnings.append(f"{path.name}: {len(unlabelled)} kernel name(s) carry no 'sparsim <kernel> M=.. N=.. K=..' "
                        f"shape label and were skipped: {shown} (profile the harness with NVTX renaming)")
    return out


def _read_ncu_long(text: str, path: Path, default_dtype: str) -> MeasuredSet:
    rows = _csv_rows(text)
    header = [c.strip() for c in rows[0]]
    idx = {c: i for i, c in enumerate(header)}
    for need in ("Kernel Name", "Metric Name", "Metric Unit", "Metric Value"):
        if need not in idx:
            raise SparsimInputError(f"ncu CSV lacks the '{need}' column", path=path, field="header",
                                    hint="export with ncu --csv (details page) or --page raw")
    samples: dict[str, list[tuple[float, str]]] = {}
    warnings: list[str] = []
    found = False
    for line_no, row in enumerate(rows[1:], start=2):
        metric = row[idx["Metric Name"]].strip()
        if metric not in ("Duration", "gpu__time_duration.sum", "gpu__time_duration"):
            continue
        found = True
        source = f"{path.name}:{line_no}"
        unit = row[idx["Metric Unit"]].strip()
        try:
            if unit not in UNIT_SECONDS and unit.lower() not in UNIT_SECONDS:
                raise ValueError(f"unknown time unit '{unit}'")
            seconds = parse_number(row[idx["Metric Value"]]) * UNIT_SECONDS.get(unit, UNIT_SECONDS.get(unit.lower(), 0))
        except ValueError as exc:
            warnings.append(f"{source}: cannot read the duration ({exc}); row skipped")
            continue
        if _check_time(seconds, source, warnings):
            samples.setdefault(row[idx["Kernel Name"]].strip(), []).append((seconds, source))
    if not found:
        raise SparsimInputError("ncu CSV has no 'Duration' or 'gpu__time_duration.sum' metric", path=path,
                                hint="profile with --section SpeedOfLight or --metrics gpu__time_duration.sum")
    return MeasuredSet(_labelled_records(samples, default_dtype, warnings, path), "", str(path), warnings)


def _read_ncu_raw(text: str, path: Path, default_dtype: str) -> MeasuredSet:
    rows = _csv_rows(text)
    header = [c.strip() for c in rows[0]]
    idx = {c: i for i, c in enumerate(header)}
    col = next((c for c in ("gpu__time_duration.sum", "gpu__time_duration", "Duration") if c in idx), None)
    if col is None or "Kernel Name" not in idx:
        raise SparsimInputError("ncu raw CSV needs 'Kernel Name' and 'gpu__time_duration.sum' columns", path=path,
                                field="header", hint="add --metrics gpu__time_duration.sum")
    body = rows[1:]
    unit = None
    if body and not body[0][idx["Kernel Name"]].strip():     # the units row under the header
        unit = body[0][idx[col]].strip() or None
        body = body[1:]
    samples: dict[str, list[tuple[float, str]]] = {}
    warnings: list[str] = []
    for line_no, row in enumerate(body, start=3 if unit else 2):
        source = f"{path.name}:{line_no}"
        try:
            if unit is None:
                raise ValueError("no units row under the header, so the time unit is unknown")
            seconds = parse_duration_s(row[idx[col]], unit if unit in UNIT_SECONDS else unit.lower())
        except (ValueError, KeyError) as exc:
            warnings.append(f"{source}: cannot read the duration ({exc}); row skipped")
            continue
        if _check_time(seconds, source, warnings):
            samples.setdefault(row[idx["Kernel Name"]].strip(), []).append((seconds, source))
    return MeasuredSet(_labelled_records(samples, default_dtype, warnings, path), "", str(path), warnings)


def _read_nsys(text: str, path: Path, default_dtype: str) -> MeasuredSet:
    rows = _csv_rows(text)
    header = [c.strip() for c in rows[0]]
    low = [c.lower() for c in header]
    pick = next((i for i, c in enumerate(low) if c.startswith("med")), None)
    if pick is None:
        pick = next(i for i, c in enumerate(low) if c.startswith(("avg", "average")))
    unit = unit_of_column(header[pick])
    name_i = next((low.index(c) for c in ("nvtx range", "name", "kernel name") if c in low))
    nvtx = "nvtx range" in low
    inst_i = low.index("nvtx inst") if "nvtx inst" in low else None
    kinst_i = low.index("kern inst") if "kern inst" in low else None
    samples: dict[str, list[tuple[float, str]]] = {}
    warnings: list[str] = []
    for line_no, row in enumerate(rows[1:], start=2):
        source = f"{path.name}:{line_no}"
        try:
            if unit is None:
                raise ValueError(f"the column '{header[pick]}' states no unit")
            seconds = parse_duration_s(row[pick], unit)
            if nvtx and inst_i is not None and kinst_i is not None:
                # Per range: a range may launch several kernels (split-K + reduce); add them up.
                seconds *= parse_number(row[kinst_i]) / max(1.0, parse_number(row[inst_i]))
        except (ValueError, IndexError) as exc:
            warnings.append(f"{source}: cannot read the time ({exc}); row skipped")
            continue
        if not _check_time(seconds, source, warnings):
            continue
        name = row[name_i].strip().lstrip(":")
        if nvtx and name in samples:
            samples[name] = [(samples[name][0][0] + seconds, samples[name][0][1])]
        else:
            samples.setdefault(name, []).append((seconds, source))
    return MeasuredSet(_labelled_records(samples, default_dtype, warnings, path), "", str(path), warnings)


def _read_torch_profiler(text: str, path: Path, default_dtype: str) -> MeasuredSet:
    lines = text.splitlines()
    dash_i = next(i for i, ln in enumerate(lines) if re.match(r"^-{5,}\s+-{5,}", ln))
    spans = [(m.start(), m.end()) for m in re.finditer(r"-+", lines[dash_i])]
    header_line = lines[dash_i + 1]

    def cells(line: str) -> list[str]:
        out = []
        for j, (a, b) in enumerate(spans):
            end = spans[j + 1][0] if j + 1 < len(spans) else len(line)
            out.append(line[a:end].strip())
        return out

    header = cells(header_line)
    col = next((i for i, c in enumerate(header) if c.lower() in ("cuda time avg", "device time avg")), None)
    if col is None:
        raise SparsimInputError("torch.profiler table has no 'CUDA time avg' / 'Device time avg' column",
                                path=path, hint="profile with activities=[ProfilerActivity.CUDA]")
    samples: dict[str, list[tuple[float, str]]] = {}
    warnings: list[str] = []
    for line_no in range(dash_i + 3, len(lines)):
        line = lines[line_no]
        if re.match(r"^-{5,}", line) or not line.strip():
            break
        row = cells(line)
        source = f"{path.name}:{line_no + 1}"
        try:
            seconds = parse_duration_s(row[col])
        except (ValueError, IndexError) as exc:
            warnings.append(f"{source}: cannot read the time ({exc}); row skipped")
            continue
        name = row[0]
        if parse_label(name) is None:
            samples.setdefault(name, []).append((seconds, source))
            continue
        if _check_time(seconds, source, warnings):
            samples.setdefault(name, []).append((seconds, source))
    return MeasuredSet(_labelled_records(samples, default_dtype, warnings, path), "", str(path), warnings)


__all__ = ["MeasuredKernel", "MeasuredSet", "load_measured", "detect_format", "parse_number", "parse_duration_s",
           "unit_of_column", "shape_label", "parse_label", "normalize_dtype", "KERNEL_KINDS", "DTYPES"]
