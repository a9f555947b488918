"""The per-key state store on real Redis: once-only folds, the outbox, racing writers."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from carepath_runtime.kafka_broker import OutboundEvent
from carepath_runtime.redis_client import make_redis
from carepath_runtime.settings import Settings
from carepath_runtime.state_store import StateStore

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


async def test_seen_keeps_a_bounded_window_that_still_dedupes_redeliveries(
    store: StateStore,
) -> None:
    from carepath_runtime.state_store import SEEN_LIMIT

    total = SEEN_LIMIT + 10
    for i in range(total):
        await store.process("ep", f"in-{i}", counter_fold)
        await store.mark_published("ep", f"in-{i}")
    stored = await store.get("ep")
    # Bounded: only the newest SEEN_LIMIT input ids are kept, oldest dropped first.
    assert len(stored.seen) == SEEN_LIMIT
    assert stored.seen == [f"in-{i}" for i in range(total - SEEN_LIMIT, total)]
    # Any input inside the window redelivered (a replayed partition tail) changes nothing.
    for i in (total - 1, total - 2, total - SEEN_LIMIT):
        assert await store.process("ep", f"in-{i}", counter_fold) == []
    assert (await store.get("ep")).data == {"n": total}
    # One that fell out of the window is no longer recognised (documented limit).
    assert await store.process("ep", "in-0", counter_fold) != []


async def test_the_outbox_holds_the_events_until_published_then_goes(store: StateStore) -> None:
    redis: Any = store._redis
    big = OutboundEvent(topic="t", key="k", headers={"ce_id": "big"},
                        value=b'{"quoted": "\\"yes\\"", "n": [1, 2]}')

    def fold(data: dict[str, Any] | None) -> tuple[dict[str, Any], list[OutboundEvent]]:
        return {"n": 1}, [big]

    assert await store.process("ep", "in-1", fold) == [big]
    raw = await redis.get(store.outbox_key("ep", "in-1"))
    assert raw is not None and big.value in raw  # the value's own bytes, not re-escaped
    state_raw = await redis.get(store.state_key("ep"))
    assert b"quoted" not in state_raw  # the state holds no copy of the events
    # A crash before the publish: the redelivered input gets the same bytes back.
    assert await store.process("ep", "in-1", fold) == [big]
    await store.mark_published("ep", "in-1")
    assert await redis.get(store.outbox_key("ep", "in-1")) is None
    assert await store.process("ep", "in-1", fold) == []


async def test_a_carried_over_outbox_moves_to_the_next_input(store: StateStore) -> None:
    redis: Any = store._redis
    await store.process("ep", "in-1", counter_fold)  # written, never published
    out = await store.process("ep", "in-2", counter_fold)
    assert [e.headers["ce_id"] for e in out] == ["e1", "e2"]
    assert await redis.get(store.outbox_key("ep", "in-1")) is None
    # The first writer's late mark_published must not lose the second one's events.
    await store.mark_published("ep", "in-1")
    again = await store.process("ep", "in-2", counter_fold)
    assert [e.headers["ce_id"] for e in again] == ["e1", "e2"]


async def test_a_state_written_before_the_outbox_key_still_delivers(store: StateStore) -> None:
    from carepath_runtime.state_store import StoredState

    redis: Any = store._redis
    legacy = StoredState(data={"n": 1}, version=1, last_input="in-1",
                         last_outputs=[event(1).to_json()], seen=["in-1"])
    await redis.set(store.state_key("ep"), legacy.to_bytes())
    assert [e.headers["ce_id"] for e in await store.process("ep", "in-1", counter_fold)] == ["e1"]
    out = await store.process("ep", "in-2", counter_fold)
    assert [e.headers["ce_id"] for e in out] == ["e1", "e2"]
    assert (await store.get("ep")).last_outputs == []
