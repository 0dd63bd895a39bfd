"""The one input layer: every file sparsim reads passes through here before any parsing.

A user file can be anything: a directory, a FIFO nobody writes to, /dev/zero, binary junk,
100k nested brackets, a YAML "billion laughs" alias bomb, duplicated keys, `.inf` where a
size belongs, `true` where a count belongs. Each of these is refused here with one
`SparsimInputError` naming the file and, where there is one, the field:

- `read_text`: exists, is a regular file (not a directory, FIFO, device or socket), is at
  most `MAX_FILE_BYTES`, and decodes as UTF-8.
- `load_yaml` / `load_json`: a YAML loader that rejects duplicate keys, nesting deeper than
  `MAX_DEPTH` and more than `MAX_ALIASES` aliases; a JSON reader that rejects duplicate keys
  and NaN/Infinity; both then walk the tree (`check_tree`) with a budget of `MAX_NODES`
  values counted with every alias expanded, and refuse non-finite numbers.
- `StrictFields`: a pydantic base whose fields take no bool for a number and no string for
  a number (pydantic's lax mode would turn `true` into 1 and "64" into 64), and no NaN or
  infinity in float fields.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
import types
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

from simulator.errors import SparsimInputError

MAX_FILE_BYTES = 64 * 1024 * 1024   # no spec, trace or config comes near; stops /dev/zero-like reads
MAX_DEPTH = 64                      # deepest real input (an HF config) nests < 10
MAX_ALIASES = 1000                  # YAML aliases per file (anchors are rare in specs)
MAX_FLOAT = 1e30                    # float fields within [1e-30, 1e30] in magnitude (or 0): no spec quantity
                                    # is near either end, and products/quotients of them cannot overflow
MAX_INT = 2 ** 53                   # no integer field beyond what a float (the engines' arithmetic) holds exactly
MAX_NODES = 2_000_000               # values in a file, aliases expanded (a 64 MiB trace holds far fewer)


# ----------------------------------------------------------------------------- files

def check_file(path: str | Path, what: str = "file", *, max_bytes: int = MAX_FILE_BYTES) -> Path:
    """`path` as a Path if it names a readable regular file of at most `max_bytes`, else one error."""
    path = Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise SparsimInputError(f"{what} not found", path=path, hint="check the path") from None
    except (OSError, ValueError) as exc:
        raise SparsimInputError(f"cannot read the {what} ({_os_reason(exc)})", path=path) from None
    if stat.S_ISDIR(st.st_mode):
        raise SparsimInputError(f"is a directory, not a file ({what} expected)", path=path,
                                hint="give the path of a file")
    if not stat.S_ISREG(st.st_mode):
        raise SparsimInputError(f"is not a regular file but a FIFO, device or socket ({what} expected)", path=path,
                                hint="give the path of a file on disk")
    if st.st_size > max_bytes:
        raise SparsimInputError(f"{what} is {st.st_size:,} bytes, over the {max_bytes:,}-byte limit", path=path,
                                hint="is this the right file?")
    return path


def read_bytes(path: str | Path, what: str = "file", *, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular file, refusing anything `check_file` refuses (re-checked while reading)."""
    path = check_file(path, what, max_bytes=max_bytes)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise SparsimInputError(f"cannot read the {what} ({_os_reason(exc)})", path=path) from None
    if len(data) > max_bytes:
        raise SparsimInputError(f"{what} is over the {max_bytes:,}-byte limit", path=path)
    return data


def read_text(path: str | Path, what: str = "file", *, max_bytes: int = MAX_FILE_BYTES) -> str:
    """A regular file decoded as UTF-8 (a byte-order mark is dropped)."""
    data = read_bytes(path, what, max_bytes=max_bytes)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SparsimInputError(f"is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})",
                                path=path, hint=f"save the {what} as UTF-8 text") from None


def _os_reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or type(exc).__name__


# ----------------------------------------------------------------------------- YAML and JSON

class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader with a nesting-depth cap, an alias cap and duplicate keys refused."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise _Refused(f"more than {MAX_ALIASES} YAML aliases", self.peek_event().start_mark)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Refused(f"nested deeper than {MAX_DEPTH} levels", self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    dup = key in seen
                    seen.add(key)
                except TypeError:
                    raise _Refused("a mapping key is a list or mapping", key_node.start_mark) from None
                if dup:
                    raise _Refused(f"duplicate key '{_short(key)}'", key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


# YAML 1.1 (PyYAML) reads `1e7` as a string; YAML 1.2 and every user read it as a number.
_BoundedLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$|^[-+]?\.[0-9_]+[eE][-+]?[0-9]+$"),
    list("-+0123456789."))


class _Refused(Exception):
    def __init__(self, message: str, mark=None):
        super().__init__(message)
        self.message, self.mark = message, mark


def _short(value: Any, limit: int = 60) -> str:
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "..."


def load_yaml(text: str, path: str | Path | None = None, *, finite: bool = True) -> Any:
    """Parse YAML text with the bounded loader, then `check_tree` it."""
    try:
        data = yaml.load(text, Loader=_BoundedLoader)  # noqa: S506 - a SafeLoader subclass
    except _Refused as exc:
        where = f" at line {exc.mark.line + 1}" if exc.mark is not None else ""
        raise SparsimInputError(f"{exc.message}{where}", path=path, hint="simplify the YAML") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise SparsimInputError(f"malformed YAML{where}: {problem}", path=path, hint="fix the YAML syntax") from None
    except (RecursionError, MemoryError):
        raise SparsimInputError("YAML too deeply nested or too large", path=path) from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise SparsimInputError(f"unreadable value: {_short(exc, 120)}", path=path, hint="fix the value") from None
    check_tree(data, path, finite=finite)
    return data


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def _no_duplicates(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key '{_short(key)}'")
        out[key] = value
    return out


def load_json(text: str, path: str | Path | None = None, *, finite: bool = True) -> Any:
    """Parse JSON text refusing duplicate keys, NaN/Infinity and deep nesting, then `check_tree` it."""
    depth = _bracket_depth(text)
    if depth > MAX_DEPTH:
        raise SparsimInputError(f"nested deeper than {MAX_DEPTH} levels", path=path, hint="simplify the JSON")
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates,
                          parse_constant=_reject_constant if finite else float)
    except json.JSONDecodeError as exc:
        raise SparsimInputError(f"not valid JSON at line {exc.lineno}: {exc.msg}", path=path,
                                hint="fix the syntax") from None
    except ValueError as exc:
        raise SparsimInputError(f"not valid JSON: {exc}", path=path, hint="fix the JSON") from None
    except RecursionError:
        raise SparsimInputError("JSON too deeply nested", path=path) from None
    check_tree(data, path, finite=finite)
    return data


def _bracket_depth(text: str) -> int:
    """Deepest [ / { nesting outside strings (a cheap scan before the recursive parser)."""
    depth = deepest = 0
    in_str = escaped = False
    for ch in text:
        if in_str:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_DEPTH:
                return deepest
        elif ch in "]}":
            depth -= 1
    return deepest


def check_tree(data: Any, path: str | Path | None = None, *, finite: bool = True) -> None:
    """Walk a parsed document: at most MAX_NODES values (aliases expanded), depth MAX_DEPTH,
    and (with `finite`) no NaN or infinity anywhere."""
    budget = MAX_NODES
    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    while stack:
        node, field, depth = stack.pop()
        budget -= 1
        if budget < 0:
            raise SparsimInputError(f"holds more than {MAX_NODES:,} values (YAML aliases expanded)", path=path,
                                    hint="is this an alias bomb? write the values out")
        if depth > MAX_DEPTH:
            raise SparsimInputError(f"nested deeper than {MAX_DEPTH} levels", path=path, field=field or None)
        if isinstance(node, dict):
            for k, v in node.items():
                stack.append((v, f"{field}.{k}" if field else str(k), depth + 1))
        elif isinstance(node, (list, tuple)):
            for i, v in enumerate(node):
                stack.append((v, f"{field}[{i}]", depth + 1))
        elif finite and isinstance(node, float) and not math.isfinite(node):
            raise SparsimInputError(f"{node} is not a finite number", path=path, field=field or None,
                                    hint="give a finite value")


def read_yaml_file(path: str | Path, what: str = "file", *, finite: bool = True) -> Any:
    """A YAML (or, by suffix, JSON) file through every check above."""
    text = read_text(path, what)
    if Path(path).suffix.lower() == ".json":
        return load_json(text, path, finite=finite)
    return load_yaml(text, path, finite=finite)


def read_json_file(path: str | Path, what: str = "file", *, finite: bool = True) -> Any:
    return load_json(read_text(path, what), path, finite=finite)


# ----------------------------------------------------------------------------- strict model fields

_NUMBER_TYPES = (int, float)


def _accepts(annotation: Any, kind: type) -> bool:
    """Whether `annotation` (possibly a Union/Optional/Literal/Any) admits values of Python type `kind`."""
    if annotation is Any or annotation is object:
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _accepts(typing.get_args(annotation)[0], kind)
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(a, kind) for a in typing.get_args(annotation))
    if origin is typing.Literal:
        return any(type(a) is kind for a in typing.get_args(annotation))
    if isinstance(annotation, type):
        return issubclass(kind, annotation) if kind is not bool else annotation is bool
    return True  # containers, models, forward refs: pydantic checks those itself


def _numeric(annotation: Any) -> bool:
    return _accepts(annotation, float) or (_accepts(annotation, int) and not _accepts(annotation, bool))


def strict_value_error(annotation: Any, value: Any) -> str | None:
    """Why `value` may not fill a field of type `annotation` under strict typing, or None."""
    if isinstance(value, bool):
        if not _accepts(annotation, bool) and _numeric(annotation):
            return f"expected a number, got {value!r}"
        return None
    if isinstance(value, str) and not _accepts(annotation, str) and _numeric(annotation):
        return f"expected a number, got the string {_short(repr(value))}"
    if isinstance(value, float) and not math.isfinite(value) and _numeric(annotation):
        return f"{value} is not a finite number"
    if isinstance(value, float) and abs(value) > MAX_FLOAT and _numeric(annotation):
        return f"{value:.3g} is too large (the limit for a physical quantity is {MAX_FLOAT:.0e})"
    if isinstance(value, float) and 0 < abs(value) < 1 / MAX_FLOAT and _numeric(annotation):
        return f"{value:.3g} is too small (give 0 or a magnitude of at least {1 / MAX_FLOAT:.0e})"
    if isinstance(value, int) and abs(value) > MAX_INT and _numeric(annotation):
        return (f"an integer of about 2^{value.bit_length()} is too large (the limit is 2^53, the largest "
                "integer a float holds exactly)")
    if isinstance(annotation, type) and issubclass(annotation, BaseModel) and isinstance(value, dict):
        # a nested plain pydantic block (e.g. compute.mapping) is held to the same strict typing
        for key, item in value.items():
            field = annotation.model_fields.get(key) if isinstance(key, str) else None
            why = strict_value_error(field.annotation, item) if field is not None else None
            if why:
                return f"{key}: {why}"
        return None
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (list, tuple, set) and args and isinstance(value, (list, tuple)):
        for item in value:
            why = strict_value_error(args[0], item)
            if why:
                return why
    if origin is dict and len(args) == 2 and isinstance(value, dict):
        for item in value.values():
            why = strict_value_error(args[1], item)
            if why:
                return why
    if origin in (typing.Union, types.UnionType):
        members = [a for a in args if a is not type(None)]
        if len(members) == 1:
            return strict_value_error(members[0], value)
    return None


class StrictFields(BaseModel):
    """A pydantic base that refuses bool-for-number, string-for-number and NaN/infinity in its fields."""
    model_config = ConfigDict(allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _strict_field_types(cls, value: Any, info: ValidationInfo):
        field = cls.model_fields.get(info.field_name) if info.field_name else None
        why = strict_value_error(field.annotation, value) if field is not None else None
        if why:
            raise ValueError(why)
        return value


class StrictSpec(StrictFields):
    """A block of a spec or trace file: strict field types, unknown keys refused (a typo is an error,
    not silently ignored), frozen once validated. Every spec and trace model extends it."""
    model_config = ConfigDict(extra="forbid", frozen=True)
