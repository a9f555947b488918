"""Delivery on the real broker: commit after effect, retry cap, dead letters, order.

Uses the real Kafka and Redis: FastStream's TestKafkaBroker simulates neither commits nor
seeks, so none of this could be shown with it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from carepath_contracts.envelope import Envelope
from carepath_contracts.events import PATHWAY_STATUS, PathwayStatus
from carepath_runtime.consumer import Delivery, PermanentError, RetryConfig, reliable_subscriber
from carepath_runtime.kafka_broker import build_event, make_broker, publish
from carepath_runtime.settings import Settings
from carepath_testkit.kafka_reading import committed_lag

pytestmark = [pytest.mark.kafka, pytest.mark.redis]


def status_event(topic: str, episode: str, eid: str) -> Any:
    env = Envelope.new(event_type=PATHWAY_STATUS, source="/test", event_id=eid)
    body = PathwayStatus(
        episode_id=episode, evaluation_seq=1, pathway_version="t", profile="seed",
        urgent=False, active_steps=[], missing_fields=[], updated_at=datetime.now(UTC),
    )
    return build_event(topic=topic, key=episode, envelope=env, body=body)


async def make_topics(bootstrap: str, *names: str, partitions: int = 3) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(n, num_partitions=partitions, replication_factor=1) for n in names]
        )
    finally:
        await admin.close()


async def read_all(bootstrap: str, topic: str, expect: int, timeout: float = 30) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
        group_id=None, enable_auto_commit=False,
    )
    await consumer.start()
    out: list[Any] = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(out) < expect and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                out.extend(records)
    finally:
        await consumer.stop()
    return out


async def test_retry_cap_dead_letters_and_order(kafka_bootstrap: str, redis_url: str) -> None:
    ns = f"rc{uuid.uuid4().hex[:8]}"
    topic, dlq = f"{ns}.in", f"{ns}.dlq"
    await make_topics(kafka_bootstrap, topic, dlq)
    settings = Settings(kafka_bootstrap_servers=kafka_bootstrap, redis_url=redis_url)
    broker = make_broker(settings, "test-reliable")
    redis = aioredis.Redis.from_url(redis_url)
    group = f"{ns}-group"

    calls: Counter[str] = Counter()
    handled: list[str] = []

    async def handler(d: Delivery) -> None:
        calls[d.envelope.id] += 1
        if d.envelope.id == "flaky" and calls["flaky"] < 3:
            raise RuntimeError("transient")
        if d.envelope.id == "poison":
            raise RuntimeError("always fails")
        if d.envelope.id == "rejected":
            raise PermanentError("cannot ever succeed")
        handled.append(d.envelope.id)

    reliable_subscriber(
        broker, topic=topic, group_id=group, dlq_topic=dlq, handlers={PathwayStatus: handler},
        redis=redis, namespace=ns,
        retry=RetryConfig(max_attempts=4, backoff_ms=10),
    )
    await broker.start()
    try:
        # Same key -> same partition: order must hold around the retried message.
        for eid in ("a1", "flaky", "a2", "poison", "a3", "rejected", "a4"):
            await publish(broker, status_event(topic, "episode-A", eid))
        # Claims to be JSON and is not: must still be dead-lettered, not skipped.
        await broker.publish(b"not json at all", topic, key=b"episode-A",
                             headers={"ce_id": "junk", "content-type": "application/json"})
        await publish(broker, status_event(topic, "episode-A", "a5"))

        for _ in range(300):
            if "a5" in handled:
                break
            await asyncio.sleep(0.1)
    finally:
        await broker.stop()

    assert handled == ["a1", "flaky", "a2", "a3", "a4", "a5"]
    assert calls["flaky"] == 3  # two failures, then success
    assert calls["poison"] == 4  # the cap
    assert calls["rejected"] == 1  # permanent: no retry

    dead = await read_all(kafka_bootstrap, dlq, expect=3)
    causes = {
        dict(r.headers).get("dlq_kind", b"").decode(): dict(r.headers) for r in dead
    }
    assert set(causes) == {"handler_failed", "rejected", "undecodable"}
    assert causes["handler_failed"]["dlq_attempts"] == b"4"
    assert b"always fails" in causes["handler_failed"]["dlq_cause"]
    assert b"ce_" in causes["undecodable"]["dlq_cause"]  # names the missing headers
    assert all(r.key == b"episode-A" for r in dead)
    # Everything was committed, the poison message included: the partition moved on.
    assert await committed_lag(kafka_bootstrap, topic, group) == 0
    await redis.aclose()
