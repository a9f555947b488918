"""The typed state store on real Redis: models in and out, projections in the state's
transaction, indexes after it (again on a redelivery), observers once the events are out."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from pydantic import BaseModel

from carepath_runtime.kafka_broker import EventTooLarge, OutboundEvent
from carepath_runtime.redis_client import make_redis
from carepath_runtime.settings import Settings
from carepath_runtime.state_store import StateStore, Writes, run_and_publish

pytestmark = [pytest.mark.redis]


class Counter(BaseModel):
    n: int
    note: str | None = None


def event(n: int, size: int = 2) -> OutboundEvent:
    return OutboundEvent(topic="ns.careplans", key="k", headers={"ce_id": f"e{n}"},
                         value=b"{" + b" " * (size - 2) + b"}")


class Recorder:
    def __init__(self, ns: str) -> None:
        self.doc = f"{ns}:doc"
        self.projected: list[tuple[str, int | None, int]] = []
        self.indexed: list[tuple[str, int | None, int]] = []
        self.observed: list[tuple[str, int | None, int]] = []
        self.published: list[list[str]] = []

    def project(self, writes: Writes, key: str, before: Counter | None, after: Counter) -> None:
        self.projected.append((key, before.n if before else None, after.n))
        writes.set(f"{self.doc}:{{{key}}}", after.model_dump_json().encode())

    def index(self, writes: Writes, key: str, before: Counter | None, after: Counter) -> None:
        self.indexed.append((key, before.n if before else None, after.n))

    def observe(self, key: str, before: Counter | None, after: Counter) -> None:
        self.observed.append((key, before.n if before else None, after.n))

    async def publish_all(self, events: list[OutboundEvent]) -> None:
        self.published.append([e.headers["ce_id"] for e in events])


@pytest.fixture()
async def redis(redis_url: str) -> Any:
    client = make_redis(Settings(redis_url=redis_url))
    yield client
    await client.aclose()


def store_of(redis: Any, recorder: Recorder, ns: str) -> StateStore[Counter]:
    return StateStore(redis, ns, "counter", Counter, exclude_none=True,
                      projections=[recorder.project], indexes=[recorder.index],
                      observers=[recorder.observe])


def bump(size: int = 2) -> Any:
    seen: list[Counter | None] = []

    def fold(state: Counter | None) -> tuple[Counter, list[OutboundEvent]]:
        seen.append(state)
        n = (state.n if state else 0) + 1
        return Counter(n=n), [event(n, size)]

    fold.seen = seen  # type: ignore[attr-defined]
    return fold


async def test_models_go_in_and_come_out_typed(redis: Any) -> None:
    ns = f"ty{uuid.uuid4().hex[:8]}"
    recorder = Recorder(ns)
    store = store_of(redis, recorder, ns)
    first = bump()
    await run_and_publish(store, "ep", "in-1", first, recorder.publish_all)
    second = bump()
    await run_and_publish(store, "ep", "in-2", second, recorder.publish_all)
    assert first.seen == [None]
    [state] = second.seen
    assert isinstance(state, Counter) and state.n == 1  # the fold is handed the model
    stored = await store.get("ep")
    assert isinstance(stored.data, Counter) and stored.data.n == 2 and stored.version == 2
    raw = await redis.get(store.state_key("ep"))
    assert b"note" not in raw  # exclude_none: an absent field stays absent
    # The projection, written in the state's transaction.
    assert await redis.get(f"{recorder.doc}:{{ep}}") == b'{"n":2,"note":null}'
    assert recorder.published == [["e1"], ["e2"]]
    assert recorder.observed == [("ep", None, 1), ("ep", 1, 2)]


async def test_indexes_are_written_again_when_a_redelivery_finds_the_events_unpublished(
    redis: Any,
) -> None:
    ns = f"ty{uuid.uuid4().hex[:8]}"
    recorder = Recorder(ns)
    store = store_of(redis, recorder, ns)

    async def crash(_: list[OutboundEvent]) -> None:
        raise ConnectionError("killed before the publish")

    with pytest.raises(ConnectionError):
        await run_and_publish(store, "ep", "in-1", bump(), crash)
    assert recorder.projected == [("ep", None, 1)]
    assert recorder.indexed == [("ep", None, 1)]
    assert recorder.observed == []  # nothing was published
    # Redelivered: not folded again; its events go out and its indexes are written again,
    # all of them (before=None), since the crash may have come before they were.
    redelivered = bump()
    await run_and_publish(store, "ep", "in-1", redelivered, recorder.publish_all)
    assert redelivered.seen == []
    assert recorder.published == [["e1"]]
    assert recorder.indexed == [("ep", None, 1), ("ep", None, 1)]
    assert recorder.projected == [("ep", None, 1)]
    assert recorder.observed == []  # observers hear of a change once, when it is folded
    # Replayed once more after the publish: nothing at all.
    await run_and_publish(store, "ep", "in-1", bump(), recorder.publish_all)
    assert recorder.published == [["e1"]] and len(recorder.indexed) == 2


async def test_an_oversized_output_writes_no_projection(redis: Any) -> None:
    ns = f"ty{uuid.uuid4().hex[:8]}"
    recorder = Recorder(ns)
    store = store_of(redis, recorder, ns)
    with pytest.raises(EventTooLarge):
        await run_and_publish(store, "ep", "in-1", bump(size=1_100_000), recorder.publish_all)
    assert await redis.get(f"{recorder.doc}:{{ep}}") is None
    assert (await store.get("ep")).data is None
    assert recorder.projected == recorder.indexed == recorder.observed == []


async def test_a_fold_returning_plain_data_is_validated_into_the_model(redis: Any) -> None:
    store: StateStore[Counter] = StateStore(redis, f"ty{uuid.uuid4().hex[:8]}", "c", Counter)

    def fold(state: Counter | None) -> tuple[Any, list[OutboundEvent]]:
        return {"n": 7}, []

    await store.process("ep", "in-1", fold)
    stored = await store.get("ep")
    assert stored.data == Counter(n=7)
