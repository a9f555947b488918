"""The latest record per key of compacted topics, as a new stream client's snapshot (pure).

A compacted topic may still hold several records of one key (compaction is lazy), and a
``None`` value (a tombstone) deletes its key. Folding the records in offset order keeps
exactly what compaction would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class LatestPerKey(Generic[T]):
    _items: dict[tuple[str, str], tuple[int, T]] = field(default_factory=dict)
    _seq: int = 0

    def add(self, topic: str, key: str, item: T | None) -> None:
        """Fold one record (in offset order within its partition); ``None`` deletes."""
        if item is None:
            self._items.pop((topic, key), None)
            return
        self._seq += 1
        self._items[(topic, key)] = (self._seq, item)

    def items(self) -> list[T]:
        """The surviving records, in the order their latest versions were read."""
        return [item for _, item in sorted(self._items.values(), key=lambda x: x[0])]

    def __len__(self) -> int:
        return len(self._items)
