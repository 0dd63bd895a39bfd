"""What sparsim writes: valid JSON with finite numbers only, and file names that stay in their folder.

The engines never produce NaN or infinity for a quantity they model (an absent quantity is
0, an unbounded one is left out with a note); `finite_json` is the last guard for every JSON
sparsim prints or writes: a non-finite float that still slips through becomes `null`
(strict JSON has no NaN/Infinity), never a bare `NaN` that other tools cannot parse.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

_UNSAFE = re.compile(r"[^A-Za-z0-9_+-]+")  # no '.', so a name never makes a suffix or '..' either


def finite(obj: Any) -> Any:
    """`obj` with every non-finite float (NaN, +-inf) replaced by None, containers copied."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", None) == 0:  # numpy scalars
        return finite(obj.item())
    return obj


def _default(o):
    if hasattr(o, "item") and callable(o.item):
        return finite(o.item())
    if hasattr(o, "tolist"):
        return finite(o.tolist())
    return str(o)


def finite_json(obj: Any, **kwargs) -> str:
    """Strict JSON text of `obj` (non-finite numbers as null)."""
    return json.dumps(finite(obj), default=_default, allow_nan=False, **kwargs)


def file_mode() -> int:
    """The mode a plain `open()` would give a new file under the current umask."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


@contextmanager
def atomic_path(path: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary file beside `path` to write; when the block ends cleanly it replaces `path`
    in one rename (a crash never leaves half a file), with a plain file's permissions
    (mkstemp creates 0600). On an error the temporary file is removed and `path` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Write text or bytes to `path` atomically (see `atomic_path`)."""
    with atomic_path(path) as tmp:
        if isinstance(data, str):
            tmp.write_text(data)
        else:
            tmp.write_bytes(data)
    return Path(path)


def safe_stem(name: str, limit: int = 120) -> str:
    """A file-name stem built from data (a trace or arch `name`): no path separators, no '..',
    no control characters, so the file always lands in the folder it is written to."""
    stem = re.sub(r"_+", "_", _UNSAFE.sub("_", str(name))).strip("_") or "unnamed"
    return stem[:limit]
