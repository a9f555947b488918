"""The active subscriptions, indexed for the per-event questions (pure).

Every consumed event asks "which subscriptions want this type?" before anything else: most
events (care-plan updates, pathway status) usually match none, and then nothing more needs to
be done with them. The answer per event type is computed once per index and kept, so the
pattern matching runs once per type and subscription set, not once per event.
"""

from __future__ import annotations

from collections.abc import Iterable

from carepath_notifications.domain.subscriptions import Subscription, pattern_matches


class SubscriptionIndex:
    """An immutable set of active subscriptions, by id and by the event types they want."""

    __slots__ = ("_by_id", "_by_type", "subscriptions")

    def __init__(self, subscriptions: Iterable[Subscription]) -> None:
        active = [s for s in subscriptions if s.active]
        self.subscriptions: tuple[Subscription, ...] = tuple(active)
        self._by_id = {s.id: s for s in active}
        self._by_type: dict[str, tuple[Subscription, ...]] = {}

    def get(self, subscription_id: str) -> Subscription | None:
        return self._by_id.get(subscription_id)

    def for_type(self, event_type: str) -> tuple[Subscription, ...]:
        """The subscriptions whose event-type patterns match ``event_type`` (team scoping not
        applied: see :func:`~.notice.targets`)."""
        found = self._by_type.get(event_type)
        if found is None:
            found = tuple(
                s for s in self.subscriptions
                if any(pattern_matches(p, event_type) for p in s.event_types)
            )
            if len(self._by_type) < 1024:  # event types are few; never grow without bound
                self._by_type[event_type] = found
        return found

    def __len__(self) -> int:
        return len(self.subscriptions)
