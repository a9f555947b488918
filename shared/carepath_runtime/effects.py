"""Effects a handler leaves for its consumer to apply together, once per poll.

A handler whose effect is a write that batches (several delivery jobs in one script call,
say) returns a :class:`Deferred`: the sink that applies such effects and this record's item.
The consumer runs a partition's handlers in record order, then hands each sink the items of
the records before the first failure, in record order, in one :meth:`EffectSink.apply_all`
call. Only then are those records committed.

A sink's ``apply_all`` must be idempotent (a crash before the commit redelivers the records,
and their items come again) and atomic or safe to repeat in part. If it raises, no record
of the run is blamed: the run is replayed one record at a time, or, when a dependency is
away, waited out (see :mod:`carepath_runtime.consumer`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

T = TypeVar("T")
T_contra = TypeVar("T_contra", contravariant=True)


class EffectSink(Protocol[T_contra]):
    async def apply_all(self, items: Sequence[T_contra]) -> None:
        """Apply every item (one round trip where it can), in order."""


@dataclass(frozen=True)
class Deferred(Generic[T]):
    """One record's effect, to be applied by ``sink`` with the rest of its poll's."""

    sink: EffectSink[T]
    item: T


K = TypeVar("K")
V = TypeVar("V")


def by_identity(pairs: Iterable[tuple[K, V]]) -> list[tuple[K, list[V]]]:
    """The values grouped by their key object (compared by identity: stores and sinks need
    not be hashable), groups in first-seen order, each group's values in the order given."""
    groups: dict[int, tuple[K, list[V]]] = {}
    for key, value in pairs:
        groups.setdefault(id(key), (key, []))[1].append(value)
    return list(groups.values())


def by_sink(deferred: Sequence[Deferred[Any]]) -> list[tuple[EffectSink[Any], list[Any]]]:
    """The items grouped by sink, each group in the order given."""
    return by_identity((effect.sink, effect.item) for effect in deferred)
