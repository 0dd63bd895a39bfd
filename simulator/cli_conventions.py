"""Conventions every sparsim command shares that typer does not give by itself.

- Help shows no value type after a plain flag (typer prints '--quiet <bool>', which reads as if
  the flag took a value).
- A `SparsimWarning` (input read but not fully honoured) prints as one `warning: ...` line.
"""

from __future__ import annotations

import sys


def plain_flags_show_no_type() -> None:
    """typer's help prints '<bool>' after plain flags ('--quiet <bool>'), which reads as if the flag took a
    value; a flag shows no type, like click's own help."""
    from typer import core
    option = getattr(core, "TyperOption", None)
    original = getattr(option, "display_type_rich", None)
    if original is None or getattr(original, "_sparsim", False):
        return

    def display_type_rich(self, ctx):
        return None if getattr(self, "is_flag", False) and not getattr(self, "count", False) else original(self, ctx)
    display_type_rich._sparsim = True
    option.display_type_rich = display_type_rich


def print_warnings_as_lines() -> None:
    """Show a SparsimWarning as one `warning: ...` line on stderr (no file/line prefix)."""
    import warnings
    from simulator.errors import SparsimWarning
    default = warnings.showwarning
    if getattr(default, "_sparsim", False):  # already installed (main() runs many times in tests)
        return

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, SparsimWarning):
            print(f"warning: {message}", file=sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)
    show._sparsim = True
    warnings.showwarning = show
