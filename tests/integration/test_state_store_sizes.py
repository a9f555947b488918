"""On real Redis: a change whose event its topic would refuse leaves no state behind, and the
key keeps working (issue 10: one oversized note wedged an episode)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import redis.asyncio as aioredis

from carepath_runtime.kafka_broker import EventTooLarge, OutboundEvent
from carepath_runtime.state_store import StateStore, run_and_publish

pytestmark = [pytest.mark.redis]


def fold_with(size: int) -> Any:
    def fold(data: dict[str, Any] | None) -> tuple[dict[str, Any], list[OutboundEvent]]:
        n = (data or {}).get("n", 0) + 1
        event = OutboundEvent(topic="ns.careplans", key="ep", headers={"ce_id": f"e{n}"},
                              value=b"x" * size)
        return {"n": n}, [event]

    return fold


async def test_an_oversized_output_writes_nothing_and_wedges_nothing(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    store = StateStore(client, f"sz{uuid.uuid4().hex[:8]}", "careplan")
    published: list[list[OutboundEvent]] = []

    async def publish_all(events: list[OutboundEvent]) -> None:
        published.append(events)

    try:
        await run_and_publish(store, "ep", "in-1", fold_with(100), publish_all)
        before = await store.get("ep")
        with pytest.raises(EventTooLarge):
            await run_and_publish(store, "ep", "in-2", fold_with(1_100_000), publish_all)
        after = await store.get("ep")
        assert (after.data, after.version, after.last_input) == (
            before.data, before.version, "in-1")
        assert len(published) == 1  # nothing of in-2 went out, and no outbox waits for it
        await run_and_publish(store, "ep", "in-3", fold_with(100), publish_all)
        assert (await store.get("ep")).data == {"n": 2}
        assert [e.headers["ce_id"] for e in published[-1]] == ["e2"]
    finally:
        await client.aclose()
