"""Outages are waited out, not counted; dead letters are redriven with the same effects.

Real Kafka and Redis: a handler that meets Redis connection errors many more times than the
retry cap still handles its record once and dead-letters nothing; a record rejected while
something was wrong is redriven with ``carepath dlq redrive`` (same event id, audited), and a
second redrive skips it. A dead-letter cause never quotes the submitted value.
"""

from __future__ import annotations

import asyncio
import io
import uuid
from collections import Counter
from typing import Any

import pytest
import redis.asyncio as aioredis
from integration.test_reliable_consumer import make_topics, read_all, status_event
from redis.exceptions import ConnectionError as RedisConnectionError

from carepath.dlq_command import audit_key, dlq_command
from carepath.main import build_parser
from carepath_contracts.envelope import Envelope
from carepath_contracts.events import PATHWAY_STATUS, PathwayStatus
from carepath_contracts.topics import Topics
from carepath_runtime.consumer import Delivery, PermanentError, RetryConfig, reliable_subscriber
from carepath_runtime.dependency_health import DependencyHealth
from carepath_runtime.kafka_broker import make_broker, publish
from carepath_runtime.settings import Settings

pytestmark = [pytest.mark.kafka, pytest.mark.redis]


async def _until(pred: Any, timeout: float = 30.0) -> bool:
    for _ in range(int(timeout / 0.1)):
        if pred():
            return True
        await asyncio.sleep(0.1)
    return bool(pred())


async def test_outage_is_waited_out_not_counted(kafka_bootstrap: str, redis_url: str) -> None:
    ns = f"tr{uuid.uuid4().hex[:8]}"
    topic, dlq = f"{ns}.in", f"{ns}.dlq"
    await make_topics(kafka_bootstrap, topic, dlq, partitions=1)
    broker = make_broker(Settings(kafka_bootstrap_servers=kafka_bootstrap), "test-transient")
    redis = aioredis.Redis.from_url(redis_url)
    async def up() -> bool:
        return True

    health = DependencyHealth("test", {"redis": up})  # not probing: callers' reports only
    calls: Counter[str] = Counter()
    handled: list[str] = []
    degraded_seen: list[list[str]] = []

    async def handler(d: Delivery) -> None:
        calls[d.envelope.id] += 1
        if d.envelope.id == "outage" and calls["outage"] <= 8:  # twice the cap
            degraded_seen.append(health.degraded())
            raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379")
        handled.append(d.envelope.id)

    reliable_subscriber(
        broker, topic=topic, group_id=f"{ns}-g", dlq_topic=dlq,
        handlers={PathwayStatus: handler}, redis=redis, namespace=ns, health=health,
        retry=RetryConfig(max_attempts=4, backoff_ms=10, transient_backoff_ms=10,
                          transient_max_backoff_ms=50),
    )
    await broker.start()
    try:
        for eid in ("before", "outage", "after"):
            await publish(broker, status_event(topic, "episode-T", eid))
        assert await _until(lambda: "after" in handled)
    finally:
        await broker.stop()
        await redis.aclose()
    assert handled == ["before", "outage", "after"]  # order held, nothing skipped
    assert calls["outage"] == 9
    # While it waited, /health named Redis as degraded.
    assert ["redis"] in degraded_seen[1:]
    assert health.degraded() == []
    assert await read_all(kafka_bootstrap, dlq, expect=1, timeout=3) == []


async def test_redrive_gives_the_same_effects_once_and_is_audited(
    kafka_bootstrap: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ns = f"rd{uuid.uuid4().hex[:8]}"
    topics = Topics(ns)
    topic = f"{ns}.in"
    await make_topics(kafka_bootstrap, topic, topics.dlq_pathway, partitions=1)
    broker = make_broker(Settings(kafka_bootstrap_servers=kafka_bootstrap), "test-redrive")
    redis = aioredis.Redis.from_url(redis_url)
    reject = {"poison"}
    effects: Counter[str] = Counter()

    async def handler(d: Delivery) -> None:
        if d.envelope.id in reject:
            raise PermanentError("routing table had no team for this step")
        # An idempotent effect keyed by the event id, as the state store's dedupe does.
        if await redis.sadd(f"{ns}:effects", d.envelope.id):
            effects[d.envelope.id] += 1

    reliable_subscriber(
        broker, topic=topic, group_id=f"{ns}-g", dlq_topic=topics.dlq_pathway,
        handlers={PathwayStatus: handler}, redis=redis, namespace=ns,
    )
    # A body whose field carries a value that must never be echoed.
    secret = "Jane-Doe-1950-MRN-4471"
    env = Envelope.new(event_type=PATHWAY_STATUS, source="/test", event_id="bad-body")
    await broker.start()
    try:
        await publish(broker, status_event(topic, "episode-R", "ok-1"))
        await publish(broker, status_event(topic, "episode-R", "poison"))
        await broker.publish(b'{"episode_id": "x", "evaluation_seq": "' + secret.encode()
                             + b'"}', topic, key=b"episode-R", headers=env.to_headers())
        assert await _until(lambda: effects["ok-1"] == 1)
        dead = await read_all(kafka_bootstrap, topics.dlq_pathway, expect=2)
        assert {dict(r.headers)["dlq_kind"] for r in dead} == {b"rejected", b"undecodable"}
        for r in dead:
            assert secret.encode() not in r.value or dict(r.headers)["ce_id"] == b"bad-body"
            assert secret.encode() not in dict(r.headers)["dlq_cause"]
        undecodable = next(r for r in dead if dict(r.headers)["dlq_kind"] == b"undecodable")
        assert b"evaluation_seq" in dict(undecodable.headers)["dlq_cause"]  # names the field

        monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
        monkeypatch.setenv("REDIS_URL", redis_url)
        from carepath_runtime.settings import get_settings

        get_settings.cache_clear()
        parser = build_parser()

        def cli(*argv: str) -> tuple[int, str]:
            out = io.StringIO()
            args = parser.parse_args(["dlq", *argv, "--service", "pathway", "--namespace", ns])
            code = await_in_thread(dlq_command, args, out)
            return code, out.getvalue()

        code, listing = cli("list", "--kind", "rejected")
        assert code == 0 and '"kind":"rejected"' in listing and "poison" in listing
        poison_id = next(f"{r.partition}:{r.offset}" for r in dead
                         if dict(r.headers)["ce_id"] == b"poison")

        reject.clear()  # the cause was fixed
        code, text = cli("redrive", poison_id)
        assert code == 0, text
        assert await _until(lambda: effects["poison"] == 1)
        code, text = cli("redrive", poison_id)  # already redriven: skipped
        assert code == 1 and "skipped" in text
        code, text = cli("redrive", poison_id, "--again")  # same event id: no second effect
        assert code == 0, text
        await asyncio.sleep(2.0)
        assert effects["poison"] == 1
    finally:
        await broker.stop()
    audit = await redis.xrange(audit_key(ns))
    assert len(audit) == 2
    assert all(fields[b"event_id"] == b"poison" for _, fields in audit)
    await redis.aclose()
    get_settings.cache_clear()


def await_in_thread(fn: Any, *args: Any) -> int:
    """Run a CLI entry point (it calls asyncio.run) off the test's event loop."""
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return int(pool.submit(fn, *args).result(timeout=120))
