"""What sparsim writes: valid JSON with finite numbers only, and file names that stay in their folder.

The engines never produce NaN or infinity for a quantity they model (an absent quantity is
0, an unbounded one is left out with a note); `finite_json` is the last guard for every JSON
sparsim prints or writes: a non-finite float that still slips through becomes `null`
(strict JSON has no NaN/Infinity), never a bare `NaN` that other tools cannot parse.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

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


def safe_stem(name: str, limit: int = 120) -> str:
    """A file-name stem built from data (a trace or arch `name`): no path separators, no '..',
    no control characters, so the file always lands in the folder it is written to."""
    stem = re.sub(r"_+", "_", _UNSAFE.sub("_", str(name))).strip("_") or "unnamed"
    return stem[:limit]
