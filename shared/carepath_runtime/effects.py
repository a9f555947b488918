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

from collections.abc import Sequence
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


def by_sink(deferred: Sequence[Deferred[Any]]) -> list[tuple[EffectSink[Any], list[Any]]]:
    """The items grouped by sink, each group in the order given."""
    groups: dict[int, tuple[EffectSink[Any], list[Any]]] = {}
    for effect in deferred:
        groups.setdefault(id(effect.sink), (effect.sink, []))[1].append(effect.item)
    return list(groups.values())
