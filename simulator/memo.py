"""Per-arch memo: the last results of a pure function of (arch object, key), least recently used dropped.

Arch specs are pydantic objects, not hashable by content, and a sweep builds many of them; results are
keyed by the arch's identity and the entry holds the arch itself, so its id cannot be reused by another
object while the entry lives. Used where an engine or mapping cost is asked for again and again.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Hashable, TypeVar

T = TypeVar("T")


class ArchMemo:
    """At most `max_entries` results of `compute()` per (arch object, key)."""

    def __init__(self, max_entries: int):
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[int, Hashable], tuple[object, object]] = OrderedDict()

    def get(self, arch: object, key: Hashable, compute: Callable[[], T]) -> T:
        full = (id(arch), key)
        hit = self._entries.get(full)
        if hit is not None and hit[0] is arch:
            self._entries.move_to_end(full)
            return hit[1]
        value = compute()
        self._entries[full] = (arch, value)
        if len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
