"""The one exception type for user mistakes, and helpers that turn pydantic errors into it.

Anything a user can get wrong (a spec, a trace, a CLI flag, a missing file) raises
`SparsimInputError` where it is detected. The CLI catches only this type and prints
`error: FILE: field.path: what is wrong (hint)`; every other exception is a bug.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:
    from pydantic import ValidationError


class SparsimInputError(ValueError):
    """A mistake in user input, located by file and dotted field path, with a hint for the fix."""

    def __init__(self, message: str, *, path: str | Path | None = None, field: str | None = None,
                 hint: str | None = None):
        self.path = str(path) if path is not None else None
        self.field = field
        self.message = message
        self.hint = hint
        super().__init__(self.one_line())

    def one_line(self) -> str:
        parts = [p for p in (self.path, self.field) if p]
        text = ": ".join(parts + [self.message])
        return printable(f"{text} ({self.hint})" if self.hint else text)

    def located(self, path: str | Path | None = None, field_prefix: str | None = None) -> "SparsimInputError":
        """The same error with a file and/or a field prefix filled in (for errors raised deep inside)."""
        field = self.field
        if field_prefix:
            field = f"{field_prefix}.{field}" if field else field_prefix
        return SparsimInputError(self.message, path=self.path or path, field=field, hint=self.hint)


class SparsimWarning(UserWarning):
    """Input that sparsim reads but cannot fully honour; the CLI prints it as one `warning:` line."""


def install_hint(extra: str) -> str:
    """The one wording of an install hint for an optional extra."""
    return f"pip install 'sparsim[{extra}]'"


def missing_extra(extra: str, package: str, what: str) -> SparsimInputError:
    """The error for a feature whose optional extra is not installed (one line, exit code 2)."""
    return SparsimInputError(f"{what} needs the '{extra}' extra ({package} is not installed)",
                             hint=install_hint(extra))


def printable(text: str, limit: int = 2000) -> str:
    """One terminal line: control characters (a newline in a file name) escaped, length capped."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))
    return text if len(text) <= limit else text[:limit] + "..."


def nearest(word: str, choices: Iterable[str]) -> str | None:
    """The closest valid spelling of `word`, for 'did you mean' hints."""
    match = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.5)
    return match[0] if match else None


def _loc_to_path(loc: tuple) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif str(item).startswith("function-") or item in ("tagged-union",):
            continue
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts)


def from_validation_error(exc: ValidationError, *, path: str | Path | None = None,
                          field_prefix: str | None = None,
                          allowed_keys: dict[str, Iterable[str]] | None = None) -> SparsimInputError:
    """Convert the first pydantic error into one located, readable SparsimInputError.

    `allowed_keys` maps a dotted parent path to its valid keys, so an unknown key can be
    answered with the nearest valid one.
    """
    err = exc.errors()[0]
    field = _loc_to_path(err["loc"])
    local_parent = field.rsplit(".", 1)[0] if "." in field else ""
    if field_prefix:
        field = f"{field_prefix}.{field}" if field else field_prefix
    kind = err["type"]
    msg = err["msg"]
    hint = None
    if kind == "extra_forbidden":
        key = field.rsplit(".", 1)[-1]
        msg = f"unknown key '{key}'"
        choices = (allowed_keys or {}).get(local_parent)
        if choices:
            guess = nearest(key, choices)
            hint = f"did you mean '{guess}'?" if guess else "allowed: " + ", ".join(sorted(choices))
        else:
            hint = "remove it or check the spelling"
    elif kind == "missing":
        msg = "required field is missing"
        hint = "add it"
    elif kind in ("literal_error", "enum"):
        expected = err.get("ctx", {}).get("expected")
        shown = repr(err.get("input"))
        msg = f"invalid value {shown if len(shown) <= 80 else shown[:80] + '...'}"
        hint = f"allowed: {expected}" if expected else None
    elif kind.startswith("value_error"):
        msg = msg.removeprefix("Value error, ")
    else:
        shown = repr(err.get("input"))
        shown = shown if len(shown) <= 80 else shown[:80] + "..."
        msg = f"{msg} (got {shown})" if "input" in err and not isinstance(err.get("input"), dict) else msg
    return SparsimInputError(msg, path=path, field=field or None, hint=hint)
