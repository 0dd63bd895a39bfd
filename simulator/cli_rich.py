"""rich for the CLI, imported at first use: importing rich costs ~45 ms that a `-q` run never needs.

`Table(...)` and `escape(...)` stand in for `rich.table.Table` and `rich.markup.escape`;
`LazyConsole(**options)` makes its `rich.console.Console(**options)` when first used.
"""

from __future__ import annotations


class LazyConsole:
    """A rich Console made at first use."""

    def __init__(self, **options):
        self._options, self._console = options, None

    def __getattr__(self, name):
        if self._console is None:
            from rich.console import Console
            self._console = Console(**self._options)
        return getattr(self._console, name)


def Table(*args, **kwargs):  # noqa: N802 - stands in for the class
    """A `rich.table.Table`."""
    from rich.table import Table as RichTable
    return RichTable(*args, **kwargs)


def escape(markup: str) -> str:
    """`rich.markup.escape`: text that rich prints literally."""
    from rich.markup import escape as rich_escape
    return rich_escape(markup)
