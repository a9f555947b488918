"""Partitions are consumed concurrently: deliveries arriving together while the subscription
cache is first loaded all see the loaded cache (none is matched against an empty one)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, cast

from unit.notifications.test_notify_handler import Queue, consumed, hook

from carepath_contracts.envelope import Envelope
from carepath_contracts.events import REFERRAL_CREATED, ReferralCreated
from carepath_notifications.domain.subscription_index import SubscriptionIndex
from carepath_notifications.handlers import make_handler
from carepath_runtime.consumer import Delivery


class LoadingStore:
    """Like SubscriptionStore: a caller arriving while another refreshes gets the copy it
    has, which before the first load is empty."""

    def __init__(self, index: SubscriptionIndex) -> None:
        self._loaded = index
        self._index = SubscriptionIndex([])
        self._checked = False

    async def current(self) -> SubscriptionIndex:
        if not self._checked:
            self._checked = True
            await asyncio.sleep(0.01)  # the round trip to Redis
            self._index = self._loaded
        return self._index


def delivery(i: int) -> Delivery[ReferralCreated]:
    envelope = Envelope.new(event_type=REFERRAL_CREATED, source="/test", event_id=f"ev-{i}")
    body = ReferralCreated(referral_id=f"ref-{i}", episode_id=f"ep-{i}",
                           recommendation_id="rec-1", step="imaging.mri", team="radiology",
                           priority="routine", status="requested",
                           created_at=datetime(2026, 1, 2, tzinfo=UTC))
    return Delivery(envelope=envelope, body=body, key=f"ep-{i}", topic="t", partition=i,
                    offset=0)


async def test_deliveries_of_concurrent_partitions_all_see_the_loaded_cache() -> None:
    queue: Queue = Queue()
    store = LoadingStore(SubscriptionIndex([hook("ehr", ["carepath.referral.*"])]))
    handle = make_handler(cast(Any, store), cast(Any, queue), lambda: None)
    await asyncio.gather(*(consumed(handle, delivery(i)) for i in range(3)))
    assert sorted(job.event_id for jobs in queue.calls for job in jobs) == \
        ["ev-0", "ev-1", "ev-2"]
