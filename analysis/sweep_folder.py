"""One sweep per output folder: a lock while it runs, and no mixing of two different sweeps.

- `FolderLock`: an exclusive `flock` on `OUT/.sweep.lock` held for the whole run. A second
  sweep on the same folder is refused at once with one line naming the pid that holds it.
  The kernel drops the lock when the holder dies (even by `kill -9`), so a stale lock file
  never blocks a rerun.
- `claim_folder`: a folder whose `sweep.json` belongs to a *different* sweep (another name,
  base arch or workload set) is refused unless `overwrite` is given, in which case that
  sweep's results are removed first. The same sweep (edited parameters, objectives or
  constraints included) resumes and reuses every stored point.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from simulator.errors import SparsimInputError

LOCK_NAME = ".sweep.lock"
_HELD: set[int] = set()  # lock fds of this process (a forked worker closes its copies)

RESULT_FILES = ("results.sqlite", "results.sqlite-wal", "results.sqlite-shm", "results.parquet", "pareto.csv",
                "summary.json", "sweep.json")


class FolderLock:
    """An exclusive, non-blocking lock on a sweep folder (released on close or process death)."""

    def __init__(self, out: Path):
        self.path = Path(out) / LOCK_NAME
        self.fd: int | None = None

    def acquire(self) -> "FolderLock":
        import fcntl
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise SparsimInputError(f"another sweep (pid {holder}) is running in this folder", path=self.path.parent,
                                        field="--out", hint="wait for it to finish, or use another --out") from None
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self.fd = fd
        _HELD.add(fd)
        return self

    def release(self) -> None:
        if self.fd is not None:
            _HELD.discard(self.fd)
            os.close(self.fd)  # closing drops the flock
            self.fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def close_inherited_locks() -> None:
    """In a forked worker: close the copies of the driver's lock fds, so the lock lives exactly as
    long as the driver (a worker never writes to the folder; the driver commits every point)."""
    for fd in list(_HELD):
        try:
            os.close(fd)
        except OSError:
            pass
    _HELD.clear()


def sweep_identity(record: dict) -> tuple:
    """What makes two sweep records the same sweep: name, base arch contents and workloads."""
    return (record.get("name"), record.get("base_digest"), tuple(record.get("workload_digests") or ()))


def claim_folder(out: Path, record: dict, overwrite: bool) -> None:
    """Refuse a folder holding a different sweep (unless `overwrite`: then clear its results)."""
    from simulator.inputs import read_json_file
    existing = Path(out) / "sweep.json"
    if not os.path.lexists(existing):
        return
    try:
        old = read_json_file(existing, "sweep record", finite=False)
        same = isinstance(old, dict) and sweep_identity(old) == sweep_identity(record)
        name = old.get("name") if isinstance(old, dict) else None
    except SparsimInputError:
        same, name = False, None
    if same:
        return
    if not overwrite:
        what = f"a different sweep ('{name}')" if name else "a sweep record this sweep cannot read"
        raise SparsimInputError(f"this folder holds {what}", path=out, field="--out",
                                hint="use another --out, or --overwrite to replace its results")
    for name in RESULT_FILES:
        path = Path(out) / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif os.path.lexists(path):
            path.unlink()
    plots = Path(out) / "plots"
    if plots.is_dir() and not plots.is_symlink():
        shutil.rmtree(plots)
