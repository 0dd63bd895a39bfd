"""The sweep's results store: an append-only SQLite table in the output folder.

Why SQLite and not Parquet for the live store: a point must be durable the moment it
finishes, and a sweep can be SIGKILLed at any instant. Parquet files cannot be appended
to (each append would be a new file, so thousands of tiny part files, or a rewrite that a
kill can tear); SQLite in WAL mode commits one small transaction per finished batch
atomically, survives a killed writer with every committed row intact, needs nothing
outside the standard library, and lets a reader look at a running sweep. The table is
append-only (rows are never updated or deleted): if a key is stored twice, the latest
row wins. A Parquet copy (`results.parquet`) is exported atomically at the end of a sweep
for pandas/Arrow users; it is a view, the SQLite file is the truth.

Each row: the point's key (hash of the arch, the workloads and the code version), its
status (`ok`; `failed` with its error; `crashed` when its worker died, retried on the next
run), parameters and all metrics as JSON, feasibility, the parts of the hash, timing and
the worker that ran it.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import time
from pathlib import Path

import pandas as pd

from simulator.outputs import atomic_path

STORE_NAME = "results.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS points (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    params TEXT NOT NULL,
    metrics TEXT,
    feasible INTEGER,
    violation REAL,
    arch_hash TEXT,
    workload_hash TEXT,
    code_version TEXT,
    sweep TEXT,
    trial INTEGER,
    elapsed_s REAL,
    worker TEXT,
    finished_at REAL
);
CREATE INDEX IF NOT EXISTS points_key ON points(key);
"""
COLUMNS = ("key", "status", "error", "params", "metrics", "feasible", "violation", "arch_hash", "workload_hash",
           "code_version", "sweep", "trial", "elapsed_s", "worker", "finished_at")
META_COLUMNS = ("key", "status", "error", "feasible", "violation", "trial", "elapsed_s", "worker", "finished_at",
                "arch_hash", "workload_hash", "code_version", "sweep")




def _json_safe(obj):
    """JSON for metrics: NaN/inf become null-safe strings json can read back."""
    return json.dumps(obj, default=_default, allow_nan=True, sort_keys=True)


def _default(o):
    try:
        import numpy as np
        if isinstance(o, np.generic):
            return o.item()
    except ImportError:  # pragma: no cover
        pass
    return str(o)


class ResultsStore:
    """Append-only store of evaluated points; safe against a killed writer."""

    def __init__(self, out_dir: str | Path):
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / STORE_NAME
        if os.path.lexists(self.path):
            from simulator.inputs import check_file
            check_file(self.path, "results database", max_bytes=1 << 40)
        try:
            self._con = sqlite3.connect(self.path, timeout=60.0, isolation_level=None, check_same_thread=False)
            self._con.execute("PRAGMA journal_mode=WAL")
            self._con.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a killed process loses no commit
            self._con.executescript(_SCHEMA)
            self._con.execute(f"SELECT {', '.join(COLUMNS)} FROM points LIMIT 1").fetchall()
        except sqlite3.DatabaseError as exc:
            raise _corrupt(self.path, exc) from None

    def close(self) -> None:
        self._con.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- writing
    def append(self, records: list[dict]) -> None:
        """Append finished points in one atomic transaction."""
        if not records:
            return
        now = time.time()
        rows = []
        for r in records:
            rows.append((r["key"], r["status"], r.get("error"), _json_safe(r.get("params", {})),
                         _json_safe(r.get("metrics")) if r.get("metrics") is not None else None,
                         None if r.get("feasible") is None else int(bool(r["feasible"])),
                         r.get("violation"), r.get("arch_hash"), r.get("workload_hash"), r.get("code_version"),
                         r.get("sweep"), r.get("trial"), r.get("elapsed_s"), r.get("worker"),
                         r.get("finished_at", now)))
        with self._con:  # BEGIN ... COMMIT
            self._con.execute("BEGIN IMMEDIATE")
            self._con.executemany(f"INSERT INTO points ({', '.join(COLUMNS)}) VALUES "
                                  f"({', '.join('?' * len(COLUMNS))})", rows)

    # -- reading
    def finished(self, keys=None) -> dict[str, dict]:
        """The latest record of every stored key (optionally only `keys`), params/metrics decoded."""
        wanted = set(keys) if keys is not None else None
        out: dict[str, dict] = {}
        try:
            for row in self._con.execute(f"SELECT {', '.join(COLUMNS)} FROM points ORDER BY seq"):
                rec = dict(zip(COLUMNS, row))
                if wanted is not None and rec["key"] not in wanted:
                    continue
                out[rec["key"]] = rec
            for rec in out.values():
                _decode(rec)
        except (sqlite3.DatabaseError, ValueError, TypeError) as exc:
            raise _corrupt(self.path, exc) from None
        return out

    def count(self) -> int:
        return self._con.execute("SELECT COUNT(DISTINCT key) FROM points").fetchone()[0]

    def frame(self, keys=None) -> pd.DataFrame:
        """One row per key (latest), parameters and metrics as columns (parameters by dotted path)."""
        return records_frame(list(self.finished(keys).values()))

    def export_parquet(self, path: str | Path | None = None, keys=None) -> Path:
        """Write the table as Parquet atomically (temp file + rename)."""
        path = Path(path) if path else self.dir / "results.parquet"
        df = self.frame(keys)
        with atomic_path(path) as tmp:
            try:
                df.to_parquet(tmp, index=False)
            except Exception:  # a column mixing types (e.g. [8, "auto"]): store such columns as text
                for col in df.columns[df.dtypes == object]:
                    df[col] = df[col].map(lambda v: v if v is None or isinstance(v, str) else json.dumps(v))
                df.to_parquet(tmp, index=False)
        return path


def _corrupt(path: Path, exc: Exception):
    from simulator.errors import SparsimInputError
    return SparsimInputError(f"not a readable sweep results database ({type(exc).__name__}: {exc})", path=path,
                             hint="delete the folder's results.sqlite to start over, or give another --out")


def _decode(rec: dict) -> dict:
    rec["params"] = json.loads(rec["params"]) if isinstance(rec.get("params"), str) else (rec.get("params") or {})
    m = rec.get("metrics")
    rec["metrics"] = json.loads(m) if isinstance(m, str) else m
    if not isinstance(rec["params"], dict) or not isinstance(rec["metrics"], (dict, type(None))):
        raise ValueError(f"point {rec.get('key')!r} holds malformed params or metrics")
    if rec.get("feasible") is not None:
        rec["feasible"] = bool(rec["feasible"])
    return rec


def _cell(v):
    if isinstance(v, (dict, list, tuple)):
        return json.dumps(v, sort_keys=True)
    return v


def records_frame(records: list[dict]) -> pd.DataFrame:
    """Records (as returned by `finished`) to a flat DataFrame; metrics NaN where a point failed."""
    rows = []
    for rec in records:
        row = {k: rec.get(k) for k in META_COLUMNS}
        for p, v in (rec.get("params") or {}).items():
            row[p] = _cell(v)
        for k, v in (rec.get("metrics") or {}).items():
            row[k] = math.nan if v is None else v
        rows.append(row)
    return pd.DataFrame(rows)


__all__ = ["ResultsStore", "records_frame", "STORE_NAME"]
