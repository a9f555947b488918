"""The per-key state store on real Redis: once-only folds, the outbox, racing writers."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from carepath_shared.kafka_broker import OutboundEvent
from carepath_shared.redis_client import make_redis
from carepath_shared.settings import Settings
from carepath_shared.state_store import StateStore

pytestmark = [pytest.mark.redis]


def event(n: int) -> OutboundEvent:
    return OutboundEvent(topic="t", key="k", headers={"ce_id": f"e{n}"}, value=b"{}")


def counter_fold(data: dict[str, Any] | None) -> tuple[dict[str, Any], list[OutboundEvent]]:
    n = (data or {}).get("n", 0) + 1
    return {"n": n}, [event(n)]


@pytest.fixture()
async def store(redis_url: str) -> Any:
    client = make_redis(Settings(redis_url=redis_url))  # a cluster client for redis+cluster://
    yield StateStore(client, f"ss{uuid.uuid4().hex[:8]}", "test")
    await client.aclose()


async def test_an_input_is_folded_once_and_its_events_survive_a_crash(store: StateStore) -> None:
    first = await store.process("ep", "in-1", counter_fold)
    assert [e.headers["ce_id"] for e in first] == ["e1"]
    # Redelivered before the publish was marked (a crash in between): same events again.
    again = await store.process("ep", "in-1", counter_fold)
    assert again == first
    assert (await store.get("ep")).data == {"n": 1}  # folded once
    await store.mark_published("ep", "in-1")
    # Replayed after publishing: nothing to do, nothing to publish.
    assert await store.process("ep", "in-1", counter_fold) == []
    # An older input seen before: ignored.
    await store.process("ep", "in-2", counter_fold)
    await store.mark_published("ep", "in-2")
    assert await store.process("ep", "in-1", counter_fold) == []
    assert (await store.get("ep")).data == {"n": 2}


async def test_unpublished_events_go_out_with_the_next_input(store: StateStore) -> None:
    await store.process("ep", "in-1", counter_fold)  # written, never published
    out = await store.process("ep", "in-2", counter_fold)
    assert [e.headers["ce_id"] for e in out] == ["e1", "e2"]


async def test_racing_writers_lose_no_update(store: StateStore) -> None:
    async def one(i: int) -> None:
        await store.process("ep", f"in-{i}", counter_fold)

    await asyncio.gather(*(one(i) for i in range(40)))
    stored = await store.get("ep")
    assert stored.data == {"n": 40}
    assert stored.version == 40
