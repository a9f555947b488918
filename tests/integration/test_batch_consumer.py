"""Batch consumption on the real broker and Redis: per-key order, a poison record isolated,
crashes at each seam of a batch, a rebalance mid-batch, and no linger under light load.

Every test publishes its inputs before the consumer starts, so the consumer's first polls
return many records at once (checked: the store is handed batches of more than one change).
Each input appends its event id to its key's state and emits one output event; the state is
what an effect is (it must hold each input exactly once, in the key's order), the output
topic is what was published (each event at least once; where no crash came between the
publish and its marker, exactly once).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis.asyncio as aioredis
from integration.test_reliable_consumer import make_topics, status_event
from pydantic import BaseModel

from carepath_contracts.events import PathwayStatus
from carepath_runtime import kafka_broker
from carepath_runtime.consumer import Committer, RetryConfig, reliable_subscriber
from carepath_runtime.kafka_broker import OutboundEvent, make_broker, publish_all
from carepath_runtime.settings import Settings
from carepath_runtime.state_store import Change, StateStore, Writes
from carepath_runtime.subscription import Delivery
from carepath_testkit.kafka_reading import committed_lag, read_topic

pytestmark = [pytest.mark.kafka, pytest.mark.redis]


class Trail(BaseModel):
    """A key's state: the inputs folded into it, in order."""

    inputs: list[str] = []


class Crash(BaseException):
    """Stands for the process dying at a seam (not an Exception: nothing catches it)."""


@dataclass
class Rig:
    bootstrap: str
    redis: aioredis.Redis
    ns: str
    topic: str
    out: str
    dlq: str
    store: StateStore[Trail]
    poison: set[str] = field(default_factory=set)
    folds: Counter[str] = field(default_factory=Counter)
    handled: Counter[str] = field(default_factory=Counter)
    batch_sizes: list[int] = field(default_factory=list)
    slow_s: float = 0.0
    bad_keys: set[str] = field(default_factory=set)

    @property
    def group(self) -> str:
        return f"{self.ns}-g"

    async def on_status(self, delivery: Delivery[PathwayStatus]) -> Change[Trail]:
        self.handled[delivery.envelope.id] += 1
        if self.slow_s:
            await asyncio.sleep(self.slow_s)
        event_id = delivery.envelope.id
        out = status_event(self.out, delivery.key, f"out-{event_id}")

        def fold(state: Trail | None) -> tuple[Trail, list[OutboundEvent]]:
            self.folds[event_id] += 1
            if event_id in self.poison:
                raise RuntimeError("this record can never be folded")
            trail = state or Trail()
            return Trail(inputs=[*trail.inputs, event_id]), [out]

        return self.store.change(delivery.key, event_id, fold)

    def subscribe(self, broker: Any, *, batch: int = 200, every: int = 100) -> Committer:
        committer = Committer(every=every, interval_s=0.2)
        reliable_subscriber(
            broker, topic=self.topic, group_id=self.group, dlq_topic=self.dlq,
            handlers={PathwayStatus: self.on_status}, redis=self.redis, namespace=self.ns,
            retry=RetryConfig(max_attempts=3, backoff_ms=10), committer=committer,
            batch_max_records=batch,
        )
        return committer

    async def publish_inputs(self, keyed_ids: list[tuple[str, str]]) -> None:
        broker = make_broker(Settings(kafka_bootstrap_servers=self.bootstrap), "batch-in")
        await broker.start()
        try:
            await publish_all(broker, [status_event(self.topic, key, eid)
                                       for key, eid in keyed_ids])
        finally:
            await broker.stop()

    async def trails(self, keys: set[str]) -> dict[str, list[str]]:
        out = {}
        for key in sorted(keys):
            state = (await self.store.get(key)).data
            out[key] = state.inputs if state else []
        return out

    async def wait_for(self, expected: dict[str, list[str]], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await self.trails(set(expected)) == expected:
                return
            await asyncio.sleep(0.1)
        assert await self.trails(set(expected)) == expected

    async def outputs(self) -> Counter[str]:
        records = await read_topic(self.bootstrap, self.out)
        return Counter(dict(r.headers)["ce_id"].decode() for r in records)


@pytest.fixture()
async def rig(kafka_bootstrap: str, redis_url: str) -> AsyncIterator[Rig]:
    ns = f"bc{uuid.uuid4().hex[:8]}"
    topic, out, dlq = f"{ns}.in", f"{ns}.out", f"{ns}.dlq"
    await make_topics(kafka_bootstrap, topic, out, dlq, partitions=3)
    redis = aioredis.Redis.from_url(redis_url)

    def mirror_bad(writes: Writes, key: str, before: Trail | None, after: Trail) -> None:
        if key in rig.bad_keys:
            raise RuntimeError("a projection that cannot be written")

    store = StateStore(redis, ns, "trail", Trail, projections=[mirror_bad])
    rig = Rig(kafka_bootstrap, redis, ns, topic, out, dlq, store)
    original = store.apply_many

    async def spy(changes: Any, *args: Any) -> Any:
        rig.batch_sizes.append(len(changes))
        return await original(changes, *args)

    store.apply_many = spy  # type: ignore[method-assign]
    yield rig
    await redis.aclose()


def inputs(keys: list[str], per_key: int) -> list[tuple[str, str]]:
    """Interleaved: k0-0, k1-0, k2-0, k0-1, ... (every key repeats within a batch)."""
    return [(key, f"{key}-{i}") for i in range(per_key) for key in keys]


def by_key(keyed_ids: list[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, eid in keyed_ids:
        out.setdefault(key, []).append(eid)
    return out


async def test_a_batch_whose_keys_repeat_keeps_each_keys_order(rig: Rig) -> None:
    keyed = inputs([f"ep-{i}" for i in range(6)], per_key=25)
    await rig.publish_inputs(keyed)
    broker = make_broker(Settings(kafka_bootstrap_servers=rig.bootstrap), "batch-order")
    rig.subscribe(broker)
    await broker.start()
    try:
        await rig.wait_for(by_key(keyed))
    finally:
        await broker.stop()
    assert max(rig.batch_sizes) > 1, rig.batch_sizes  # it really ran in batches
    assert sum(rig.batch_sizes) == len(keyed)  # and folded each input once
    assert await rig.outputs() == Counter({f"out-{eid}": 1 for _, eid in keyed})
    assert await committed_lag(rig.bootstrap, rig.topic, rig.group) == 0


async def test_a_poison_record_in_a_batch_is_dead_lettered_alone(rig: Rig) -> None:
    keyed = inputs(["ep-a", "ep-b"], per_key=10)
    rig.poison = {"ep-a-4"}
    await rig.publish_inputs(keyed)
    broker = make_broker(Settings(kafka_bootstrap_servers=rig.bootstrap), "batch-poison")
    rig.subscribe(broker)
    await broker.start()
    expected = {key: [e for e in eids if e not in rig.poison]
                for key, eids in by_key(keyed).items()}
    try:
        await rig.wait_for(expected)
        for _ in range(100):
            if await committed_lag(rig.bootstrap, rig.topic, rig.group) == 0:
                break
            await asyncio.sleep(0.1)
    finally:
        await broker.stop()
    assert max(rig.batch_sizes) > 1, rig.batch_sizes
    assert rig.folds["ep-a-4"] == 3  # the retry cap, then the dead-letter topic
    assert all(n == 1 for eid, n in rig.folds.items() if eid != "ep-a-4"), rig.folds
    dead = await read_topic(rig.bootstrap, rig.dlq)
    assert [dict(r.headers)["ce_id"] for r in dead] == [b"ep-a-4"]
    headers = dict(dead[0].headers)
    assert headers["dlq_kind"] == b"handler_failed" and headers["dlq_attempts"] == b"3"
    assert b"can never be folded" in headers["dlq_cause"]
    # The rest took effect once: each output exactly once, the poison's never.
    assert await rig.outputs() == Counter({f"out-{eid}": 1 for _, eid in keyed
                                           if eid not in rig.poison})
    assert await committed_lag(rig.bootstrap, rig.topic, rig.group) == 0


async def test_a_write_no_fold_is_to_blame_for_is_replayed_one_by_one(rig: Rig) -> None:
    """The batch's transaction fails (a projection of one key cannot be written): the batch
    is replayed record by record, and only that key's first record is dead-lettered."""
    keyed = inputs(["ep-a", "ep-bad", "ep-c"], per_key=4)
    rig.bad_keys = {"ep-bad"}
    await rig.publish_inputs(keyed)
    broker = make_broker(Settings(kafka_bootstrap_servers=rig.bootstrap), "batch-bad")
    rig.subscribe(broker)
    await broker.start()
    try:
        await rig.wait_for({"ep-a": by_key(keyed)["ep-a"], "ep-c": by_key(keyed)["ep-c"]})
        for _ in range(200):
            if len(await read_topic(rig.bootstrap, rig.dlq)) >= 4:
                break
            await asyncio.sleep(0.1)
    finally:
        await broker.stop()
    dead = await read_topic(rig.bootstrap, rig.dlq)
    assert sorted(dict(r.headers)["ce_id"].decode() for r in dead) == \
        sorted(by_key(keyed)["ep-bad"])
    assert await rig.trails({"ep-bad"}) == {"ep-bad": []}
    outputs = await rig.outputs()
    assert outputs == Counter({f"out-{eid}": 1 for key, eid in keyed if key != "ep-bad"})


@pytest.mark.parametrize("seam", ["publish", "mark_published", "commit"])
async def test_a_crash_at_a_seam_of_a_batch_loses_and_duplicates_nothing(
    rig: Rig, seam: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The consumer dies (and stays dead) at a seam of its first batches: ``publish``, after
    the states were written and before anything was published; ``mark_published``, after
    the publish and before the outboxes were marked; ``commit``, after both and before any
    offset was committed. A new consumer then takes over from the last commit."""
    keyed = inputs([f"ep-{i}" for i in range(4)], per_key=15)
    await rig.publish_inputs(keyed)
    crashed: list[str] = []

    async def die(*_args: Any, **_kwargs: Any) -> None:
        crashed.append(seam)
        raise Crash(seam)

    if seam == "publish":
        monkeypatch.setattr(kafka_broker, "publish_all", die)
    elif seam == "mark_published":
        monkeypatch.setattr(StateStore, "mark_published_many", die)
    else:
        monkeypatch.setattr(Committer, "done", die)

    first = make_broker(Settings(kafka_bootstrap_servers=rig.bootstrap), "batch-crash-1")
    rig.subscribe(first, every=1000)
    await first.start()
    try:
        for _ in range(300):
            if crashed:
                break
            await asyncio.sleep(0.05)
        assert crashed, "the consumer never reached the seam"
        await asyncio.sleep(0.5)  # whatever else was in flight reaches the seam too
    finally:
        with contextlib.suppress(Crash, Exception):
            await first.stop()
    assert await committed_lag(rig.bootstrap, rig.topic, rig.group) == len(keyed)
    published_before = await rig.outputs()
    assert (sum(published_before.values()) == 0) == (seam == "publish")

    # The restarted consumer: everything is redelivered from the last commit.
    monkeypatch.undo()
    second = make_broker(Settings(kafka_bootstrap_servers=rig.bootstrap), "batch-crash-2")
    rig.subscribe(second)
    await second.start()
    try:
        await rig.wait_for(by_key(keyed))
        for _ in range(100):
            if await committed_lag(rig.bootstrap, rig.topic, rig.group) == 0:
                break
            await asyncio.sleep(0.1)
    finally:
        await second.stop()
    assert all(n == 1 for n in rig.folds.values()), rig.folds  # every effect once
    outputs = await rig.outputs()
    assert set(outputs) == {f"out-{eid}" for _, eid in keyed}  # nothing lost
    if seam != "mark_published":
        # Published and marked before the crash, or not published at all: never twice.
        assert all(n == 1 for n in outputs.values()), outputs
    else:
        # Published, not marked: published again with the same ids (consumers dedupe).
        assert all(n <= 2 for n in outputs.values()), outputs
    assert await committed_lag(rig.bootstrap, rig.topic, rig.group) == 0


async def test_two_consumers_rebalancing_mid_batch_duplicate_no_effect(rig: Rig) -> None:
    keyed = inputs([f"ep-{i}" for i in range(9)], per_key=12)
    rig.slow_s = 0.1  # a partition's first batch takes seconds: the rebalance lands inside it
    await rig.publish_inputs(keyed)
    first = make_broker(Settings(kafka_bootstrap_servers=rig.bootstrap), "batch-rb-1")
    second = make_broker(Settings(kafka_bootstrap_servers=rig.bootstrap), "batch-rb-2")
    rig.subscribe(first)
    rig.subscribe(second)
    await first.start()
    try:
        for _ in range(400):
            if rig.handled:
                break
            await asyncio.sleep(0.02)
        await second.start()  # joins the group while the first is mid-batch
        try:
            await rig.wait_for(by_key(keyed), timeout=120)
        finally:
            await second.stop()
    finally:
        await first.stop()
    # Both consumers handled some records (the first's batch of a partition it lost was
    # handled again by its new owner from the last commit)...
    assert any(n > 1 for n in rig.handled.values()), rig.handled
    # ...and every input was folded into its key once, in order.
    assert await rig.trails({k for k, _ in keyed}) == by_key(keyed)
    outputs = await rig.outputs()
    assert set(outputs) == {f"out-{eid}" for _, eid in keyed}


async def test_a_record_after_a_quiet_spell_does_not_wait_for_a_batch(rig: Rig) -> None:
    broker = make_broker(Settings(kafka_bootstrap_servers=rig.bootstrap), "batch-latency")
    rig.subscribe(broker)
    producer = make_broker(Settings(kafka_bootstrap_servers=rig.bootstrap), "batch-lat-in")
    await broker.start()
    await producer.start()
    waits: list[float] = []
    try:
        await asyncio.sleep(2.0)  # the group settles, the consumer polls an empty topic
        for i, quiet in enumerate((1.1, 1.4, 1.7, 0.3)):
            await asyncio.sleep(quiet)
            sent = time.monotonic()
            await publish_all(producer, [status_event(rig.topic, "ep-l", f"ep-l-{i}")])
            while (await rig.trails({"ep-l"}))["ep-l"][-1:] != [f"ep-l-{i}"]:
                assert time.monotonic() - sent < 10
                await asyncio.sleep(0.005)
            waits.append(time.monotonic() - sent)
    finally:
        await producer.stop()
        await broker.stop()
    # Well under the poll's 1 s timeout: a batch of one waited for nothing.
    assert max(waits) < 0.5, waits
