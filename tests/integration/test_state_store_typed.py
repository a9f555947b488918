"""The typed state store on real Redis: models in and out, projections in the state's
transaction, indexes after it (again on a redelivery), observers once the events are out;
batches of changes (apply_many): per-key order, one outbox per key, a failing fold stopping
only its key, a racing writer making the batch fold again."""

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


# -- batches: StateStore.apply_many ---------------------------------------------------------


def append(event_id: str, fail: bool = False) -> Any:
    def fold(state: Counter | None) -> tuple[Counter, list[OutboundEvent]]:
        if fail:
            raise RuntimeError("cannot fold")
        n = (state.n if state else 0) + 1
        return Counter(n=n, note=f"{(state.note or '') if state else ''}{event_id},"), [
            OutboundEvent(topic="ns.out", key="k", headers={"ce_id": event_id}, value=b"{}")]

    return fold


def ids(events: list[OutboundEvent]) -> list[str]:
    return [e.headers["ce_id"] for e in events]


async def test_a_batch_folds_each_key_in_order_and_writes_once(redis: Any) -> None:
    ns = f"ty{uuid.uuid4().hex[:8]}"
    recorder = Recorder(ns)
    store = store_of(redis, recorder, ns)
    changes = [store.change(key, f"{key}-{i}", append(f"{key}-{i}"))
               for i in range(3) for key in ("a", "b")]
    outcome = await store.apply_many(changes)
    assert not outcome.failures
    by_key = {k.key: k for k in outcome.keys}
    assert ids(by_key["a"].outputs) == ["a-0", "a-1", "a-2"]
    assert by_key["a"].mark_input == "a-2"  # one outbox, under the key's last input
    assert by_key["b"].origins == [1, 3, 5]  # each event's change, by index in the batch
    stored = await store.get("a")
    assert stored.data == Counter(n=3, note="a-0,a-1,a-2,") and stored.version == 3
    assert stored.seen == ["a-0", "a-1", "a-2"]
    # A projection is written once per key and batch, from before the batch to after it.
    assert sorted(recorder.projected) == [("a", None, 3), ("b", None, 3)]
    await store.mark_published_many(outcome)
    assert await redis.get(store.outbox_key("a", "a-2")) is None
    # The whole batch redelivered: nothing folded, nothing to publish.
    again = await store.apply_many(changes)
    assert again.outputs == [] and all(not k.folded for k in again.keys)


async def test_a_failing_fold_stops_its_key_and_no_other(redis: Any) -> None:
    store: StateStore[Counter] = StateStore(redis, f"ty{uuid.uuid4().hex[:8]}", "c", Counter)
    changes = [store.change("a", "a-0", append("a-0")),
               store.change("b", "b-0", append("b-0")),
               store.change("a", "a-1", append("a-1", fail=True)),
               store.change("b", "b-1", append("b-1")),
               store.change("a", "a-2", append("a-2"))]
    outcome = await store.apply_many(changes)
    assert list(outcome.failures) == [2]
    assert str(outcome.failures[2]) == "cannot fold"
    assert (await store.get("a")).data == Counter(n=1, note="a-0,")  # a-2 waits for a-1
    assert (await store.get("b")).data == Counter(n=2, note="b-0,b-1,")


async def test_a_batch_written_but_not_published_goes_out_whole_on_redelivery(
    redis: Any,
) -> None:
    store: StateStore[Counter] = StateStore(redis, f"ty{uuid.uuid4().hex[:8]}", "c", Counter)
    first = [store.change("a", f"a-{i}", append(f"a-{i}")) for i in range(3)]
    await store.apply_many(first)  # written; the publish never happened
    # Redelivered from the start, with a new input behind: the unpublished events first,
    # each once, then the new one's; nothing folded twice.
    outcome = await store.apply_many([*first, store.change("a", "a-3", append("a-3"))])
    [key] = outcome.keys
    assert ids(key.outputs) == ["a-0", "a-1", "a-2", "a-3"]
    assert [index for index, _, _ in key.folded] == [3]
    assert (await store.get("a")).data == Counter(n=4, note="a-0,a-1,a-2,a-3,")
    assert await redis.get(store.outbox_key("a", "a-2")) is None  # carried over to a-3
    # Only the redelivered ones, the last of them among them: its events again.
    again = await store.apply_many([store.change("a", "a-3", append("a-3"))])
    assert ids(again.outputs) == ["a-0", "a-1", "a-2", "a-3"]
    # An older one alone publishes nothing (the last input's redelivery will).
    assert (await store.apply_many([store.change("a", "a-1", append("a-1"))])).outputs == []


async def test_a_writer_racing_a_batch_makes_it_fold_again_on_the_new_state(
    redis: Any, redis_url: str,
) -> None:
    import redis as sync_redis

    from carepath_runtime.redis_client import is_cluster_url

    if is_cluster_url(redis_url):
        pytest.skip("the racing writer here is a plain client")
    store: StateStore[Counter] = StateStore(redis, f"ty{uuid.uuid4().hex[:8]}", "c", Counter)
    await store.process("b", "b-first", append("b-first"))
    calls: list[int] = []
    other = sync_redis.Redis.from_url(redis_url)

    def racing(state: Counter | None) -> tuple[Counter, list[OutboundEvent]]:
        calls.append(1)
        if len(calls) == 1:  # another writer lands between the batch's read and its write
            stored = store.decode(other.get(store.state_key("b")))
            assert stored.data is not None
            stored.data = Counter(n=stored.data.n + 1, note=f"{stored.data.note}b-other,")
            stored.version += 1
            stored.last_input = "b-other"
            stored.seen = [*stored.seen, "b-other"]
            other.set(store.state_key("b"), store.encode(stored))
        return append("a-0")(state)

    try:
        outcome = await store.apply_many([
            store.change("a", "a-0", racing), store.change("b", "b-0", append("b-0"))])
    finally:
        other.close()
    assert not outcome.failures
    assert len(calls) == 2  # the batch's transaction was aborted and folded again
    b = (await store.get("b")).data
    assert b == Counter(n=3, note="b-first,b-other,b-0,")  # neither write was lost
    assert (await store.get("a")).data == Counter(n=1, note="a-0,")
