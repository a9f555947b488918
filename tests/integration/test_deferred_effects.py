"""Deferred effects on the real broker and Redis: a poll's effects go to their sink in one
call per partition, in record order, before the poll is committed; a sink that fails is
replayed record by record and nothing is lost; a dependency outage is waited out."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
import redis.asyncio as aioredis
from integration.test_reliable_consumer import make_topics, status_event
from redis.exceptions import ConnectionError as RedisConnectionError

from carepath_contracts.events import PathwayStatus
from carepath_runtime.consumer import Committer, RetryConfig, reliable_subscriber
from carepath_runtime.effects import Deferred, by_sink
from carepath_runtime.kafka_broker import make_broker, publish_all
from carepath_runtime.settings import Settings
from carepath_runtime.subscription import Delivery
from carepath_testkit.kafka_reading import committed_lag, read_topic

pytestmark = [pytest.mark.kafka, pytest.mark.redis]


@dataclass
class Sink:
    """Records every call; can refuse calls of more than one item, or the first few calls."""

    calls: list[list[tuple[str, str]]] = field(default_factory=list)
    refuse_batches: bool = False
    outage_calls: int = 0

    async def apply_all(self, items: Sequence[tuple[str, str]]) -> None:
        if self.outage_calls:
            self.outage_calls -= 1
            raise RedisConnectionError("Redis is away")
        if self.refuse_batches and len(items) > 1:
            raise RuntimeError("this sink takes one item at a time")
        self.calls.append(list(items))

    def applied(self) -> list[tuple[str, str]]:
        return [item for call in self.calls for item in call]


async def run(kafka_bootstrap: str, redis_url: str, sink: Sink, keyed: list[tuple[str, str]]
              ) -> tuple[str, str, str]:
    ns = f"de{uuid.uuid4().hex[:8]}"
    topic, dlq = f"{ns}.in", f"{ns}.dlq"
    await make_topics(kafka_bootstrap, topic, dlq, partitions=3)
    settings = Settings(kafka_bootstrap_servers=kafka_bootstrap)
    feeder = make_broker(settings, "de-in")
    await feeder.start()
    try:
        await publish_all(feeder, [status_event(topic, key, eid) for key, eid in keyed])
    finally:
        await feeder.stop()

    async def on_status(delivery: Delivery[PathwayStatus]) -> Deferred[tuple[str, str]]:
        return Deferred(sink, (delivery.key, delivery.envelope.id))

    redis = aioredis.Redis.from_url(redis_url)
    broker = make_broker(settings, "de")
    group = f"{ns}-g"
    reliable_subscriber(broker, topic=topic, group_id=group, dlq_topic=dlq,
                        handlers={PathwayStatus: on_status}, redis=redis, namespace=ns,
                        retry=RetryConfig(max_attempts=3, backoff_ms=10),
                        committer=Committer(every=100, interval_s=0.1))
    await broker.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if {eid for _, eid in sink.applied()} >= {eid for _, eid in keyed} and \
                    await committed_lag(kafka_bootstrap, topic, group) == 0:
                break
            await asyncio.sleep(0.1)
    finally:
        await broker.stop()
        await redis.aclose()
    return topic, dlq, group


def inputs(keys: list[str], per_key: int) -> list[tuple[str, str]]:
    return [(key, f"{key}-{i}") for i in range(per_key) for key in keys]


async def test_a_polls_effects_go_to_their_sink_together_in_record_order(
        kafka_bootstrap: str, redis_url: str) -> None:
    keyed = inputs([f"ep-{i}" for i in range(6)], per_key=10)
    sink = Sink()
    topic, dlq, group = await run(kafka_bootstrap, redis_url, sink, keyed)
    applied = sink.applied()
    assert sorted(applied) == sorted(keyed)  # every record's effect, once
    assert len(sink.calls) < len(keyed) and max(len(c) for c in sink.calls) > 1, sink.calls
    for key in {k for k, _ in keyed}:  # each key's effects in its records' order
        assert [e for k, e in applied if k == key] == [e for k, e in keyed if k == key]
    assert await committed_lag(kafka_bootstrap, topic, group) == 0
    assert await read_topic(kafka_bootstrap, dlq) == []


async def test_a_failing_sink_is_replayed_record_by_record_and_nothing_is_lost(
        kafka_bootstrap: str, redis_url: str) -> None:
    keyed = inputs(["ep-a", "ep-b", "ep-c"], per_key=8)
    sink = Sink(refuse_batches=True)
    topic, dlq, group = await run(kafka_bootstrap, redis_url, sink, keyed)
    assert all(len(c) == 1 for c in sink.calls)
    assert {eid for _, eid in sink.applied()} == {eid for _, eid in keyed}
    assert await committed_lag(kafka_bootstrap, topic, group) == 0
    assert await read_topic(kafka_bootstrap, dlq) == []  # nothing dead-lettered


async def test_a_sink_whose_dependency_is_away_is_waited_out(
        kafka_bootstrap: str, redis_url: str) -> None:
    keyed = inputs(["ep-a", "ep-b"], per_key=5)
    sink = Sink(outage_calls=5)  # more than the retry cap: an outage is not counted
    topic, dlq, group = await run(kafka_bootstrap, redis_url, sink, keyed)
    assert sorted(set(sink.applied())) == sorted(keyed)
    assert await committed_lag(kafka_bootstrap, topic, group) == 0
    assert await read_topic(kafka_bootstrap, dlq) == []


def test_by_sink_keeps_each_sinks_items_in_order() -> None:
    a, b = Sink(), Sink()
    groups = by_sink([Deferred(a, 1), Deferred(b, "x"), Deferred(a, 2), Deferred(b, "y")])
    assert [(s is a, items) for s, items in groups] == [(True, [1, 2]), (False, ["x", "y"])]
