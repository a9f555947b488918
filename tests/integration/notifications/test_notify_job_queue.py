"""The delivery job queue on a real Redis: idempotent enqueue, atomic claims, per-endpoint
limits, leases that outlive a dead worker, retries, dead letters, redrive and the outbox."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from carepath_contracts.envelope import Envelope
from carepath_contracts.events import NOTIFICATION_REDRIVEN
from carepath_contracts.topics import Topics
from carepath_notifications.attempt_events import redriven_event
from carepath_notifications.domain.jobs import DeliveryJob
from carepath_notifications.job_queue import JobQueue, decode_outbox_entry
from carepath_runtime.kafka_broker import OutboundEvent
from carepath_runtime.redis_client import make_redis
from carepath_runtime.settings import Settings

pytestmark = [pytest.mark.redis]

NOW = 1_700_000_000_000
LEASE = NOW + 15_000


@pytest.fixture()
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = make_redis(Settings(redis_url=redis_url))  # a cluster client for redis+cluster://
    yield client
    await client.aclose()


def ns() -> str:
    return f"jq{uuid.uuid4().hex[:10]}"


def job(event: str, sub: str = "s1", endpoint: str = "wh-a", at: int = NOW) -> DeliveryJob:
    return DeliveryJob.new(event_id=event, event_type="carepath.referral.created.v1",
                           subscription_id=sub, channel="webhook", endpoint=endpoint,
                           body=b'{"id":"%s"}' % event.encode(), now_ms=at)


def marker(n: int) -> OutboundEvent:
    return OutboundEvent(topic="t", key="k", headers={"ce_id": f"e{n}"}, value=b"{}")


async def test_enqueue_is_idempotent_per_event_and_subscription(redis: aioredis.Redis) -> None:
    q = JobQueue(redis, ns(), endpoint_limit=4)
    assert await q.enqueue_many([job("e1"), job("e2"), job("e1", sub="s2")]) == 3
    assert await q.enqueue_many([job("e1"), job("e2"), job("e3")]) == 1  # redelivered event
    claimed = await q.claim(NOW, 100, LEASE, "w1")
    assert sorted(j.id for j in claimed) == ["s1:e1", "s1:e2", "s1:e3", "s2:e1"]
    # once delivered, the record stays as the dedup ledger: enqueuing again adds nothing
    for j in claimed:
        await q.complete(j, owner="w1", kind="delivered", now_ms=NOW, attempt=1,
                         status_code=200)
    assert await q.enqueue_many([job("e1"), job("e3")]) == 0
    assert await q.claim(NOW + 1, 100, LEASE, "w1") == []
    delivered = await q.get("s1:e1")
    assert delivered is not None and delivered.status == "delivered"
    assert await redis.ttl(q.job_key("s1:e1")) > 0


async def test_concurrent_claimers_never_share_a_job(redis: aioredis.Redis) -> None:
    name = ns()
    q = JobQueue(redis, name, endpoint_limit=64)
    jobs = [job(f"e{i}", endpoint=f"wh-{i % 7}") for i in range(300)]
    await q.enqueue_many(jobs)
    claimers = [JobQueue(redis, name, endpoint_limit=64) for _ in range(6)]

    async def drain(c: JobQueue, owner: str) -> list[str]:
        got: list[str] = []
        while True:
            batch = await c.claim(NOW, 7, LEASE, owner)
            if not batch:
                return got
            got.extend(j.id for j in batch)
            await asyncio.sleep(0)

    results = await asyncio.gather(*(drain(c, f"w{i}") for i, c in enumerate(claimers)))
    everything = [jid for r in results for jid in r]
    assert len(everything) == len(set(everything)) == 300
    assert sum(1 for r in results if r) > 1  # they really did compete


async def test_endpoint_limit_holds_and_a_busy_endpoint_does_not_block_others(
    redis: aioredis.Redis,
) -> None:
    q = JobQueue(redis, ns(), endpoint_limit=2)
    await q.enqueue_many([job(f"slow{i}", endpoint="wh-slow") for i in range(10)])
    await q.enqueue_many([job(f"fast{i}", endpoint="wh-fast", at=NOW + 5) for i in range(3)])
    first = await q.claim(NOW + 10, 100, LEASE, "w1")
    per_endpoint = Counter(j.endpoint for j in first)
    assert per_endpoint == {"wh-slow": 2, "wh-fast": 2}
    # the slow endpoint's two jobs are still in flight: only the fast one has room
    second = await q.claim(NOW + 10, 100, LEASE, "w1")
    assert [j.endpoint for j in second] == []  # fast is at its limit too
    fast = [j for j in first if j.endpoint == "wh-fast"]
    done = await q.complete(fast[0], owner="w1", kind="delivered", now_ms=NOW + 11,
                            attempt=1, status_code=200)
    assert done.applied and done.next_job is None
    third = await q.claim(NOW + 12, 100, LEASE, "w1")
    assert [j.endpoint for j in third] == ["wh-fast"]


async def test_completion_can_chain_the_endpoints_next_job(redis: aioredis.Redis) -> None:
    q = JobQueue(redis, ns(), endpoint_limit=1)
    await q.enqueue_many([job(f"e{i}", at=NOW + i) for i in range(3)])
    [first] = await q.claim(NOW + 10, 10, LEASE, "w1")
    assert first.event_id == "e0"  # earliest due first
    seen = [first.event_id]
    current: DeliveryJob | None = first
    while current is not None:
        done = await q.complete(current, owner="w1", kind="delivered", now_ms=NOW + 20,
                                attempt=1, status_code=200, chain_lease_until_ms=LEASE)
        current = done.next_job
        if current is not None:
            assert current.status == "inflight" and current.owner == "w1"
            seen.append(current.event_id)
    assert seen == ["e0", "e1", "e2"]


async def test_retry_waits_for_its_time_and_keeps_the_attempt_count(
    redis: aioredis.Redis,
) -> None:
    q = JobQueue(redis, ns())
    await q.enqueue_many([job("e1")])
    [j] = await q.claim(NOW, 1, LEASE, "w1")
    await q.complete(j, owner="w1", kind="retry", now_ms=NOW + 1, attempt=1,
                     next_ms=NOW + 5000, status_code=503, error="HTTP 503")
    assert await q.claim(NOW + 4999, 10, LEASE, "w1") == []
    [again] = await q.claim(NOW + 5000, 10, LEASE, "w1")
    assert again.attempts == 1 and again.last_status == 503 and again.last_error == "HTTP 503"


async def test_an_expired_lease_returns_the_job_and_the_old_owner_cannot_fail_it(
    redis: aioredis.Redis,
) -> None:
    q = JobQueue(redis, ns())
    await q.enqueue_many([job("e1")])
    [j] = await q.claim(NOW, 1, NOW + 1000, "dead-worker")
    assert await q.reap(NOW + 999) == 0
    assert await q.claim(NOW + 999, 1, NOW + 5000, "w2") == []  # still leased
    assert await q.reap(NOW + 1000) == 1
    [again] = await q.claim(NOW + 1001, 1, NOW + 20_000, "w2")
    assert again.id == j.id and again.reclaimed == 1
    stale = await q.complete(j, owner="dead-worker", kind="dead", now_ms=NOW + 1002,
                             attempt=1, reason="late")
    assert not stale.applied
    current = await q.get(j.id)
    assert current is not None and current.status == "inflight" and current.owner == "w2"


async def test_renewed_leases_are_not_reaped(redis: aioredis.Redis) -> None:
    q = JobQueue(redis, ns(), endpoint_limit=2)
    await q.enqueue_many([job("e1"), job("e2")])
    claimed = await q.claim(NOW, 2, NOW + 1000, "w1")
    assert await q.renew([c.id for c in claimed], "w1", NOW + 60_000) == 2
    assert await q.renew([c.id for c in claimed], "someone-else", NOW + 90_000) == 0
    assert await q.reap(NOW + 30_000) == 0
    assert await q.reap(NOW + 60_000) == 2


async def test_release_hands_jobs_back_at_once(redis: aioredis.Redis) -> None:
    q = JobQueue(redis, ns())
    await q.enqueue_many([job("e1")])
    [j] = await q.claim(NOW, 1, LEASE, "w1")
    assert await q.release([j.id], "w1", NOW + 1) == 1
    [again] = await q.claim(NOW + 2, 1, LEASE, "w2")
    assert again.id == j.id and again.reclaimed == 0


async def test_dead_letters_are_listed_and_redriven(redis: aioredis.Redis) -> None:
    name = ns()
    q = JobQueue(redis, name)
    await q.enqueue_many([job("e1"), job("e2", endpoint="wh-b")])
    for j in await q.claim(NOW, 10, LEASE, "w1"):
        await q.complete(j, owner="w1", kind="dead", now_ms=NOW + 1, attempt=3,
                         status_code=500, error="HTTP 500", reason="budget spent",
                         events=[marker(1)])
    dead = await q.dead_letters()
    assert sorted(d.id for d in dead) == ["s1:e1", "s1:e2"]
    assert all(d.status == "dead" and d.attempts == 3 and d.dead_reason == "budget spent"
               for d in dead)
    assert await q.claim(NOW + 100_000, 10, LEASE, "w1") == []

    target = next(d for d in dead if d.id == "s1:e1")
    event = redriven_event(Topics(name), target, "/test", datetime.now(UTC))
    assert await q.redrive(target, NOW + 2, event)
    assert not await q.redrive(target, NOW + 3, event)  # no longer dead
    assert [d.id for d in await q.dead_letters()] == ["s1:e2"]
    [back] = await q.claim(NOW + 3, 10, LEASE, "w1")
    assert back.id == "s1:e1" and back.attempts == 0 and back.redriven == 1
    outbox = [decode_outbox_entry(e) for e in await q.outbox_peek()]
    assert [Envelope.from_headers(e.headers).type for e in outbox[2:]] == [NOTIFICATION_REDRIVEN]


async def test_outbox_trim_only_drops_what_was_read(redis: aioredis.Redis) -> None:
    q = JobQueue(redis, ns())
    await q.enqueue_many([job("e1"), job("e2", endpoint="wh-b")])
    a, b = await q.claim(NOW, 10, LEASE, "w1")
    await q.complete(a, owner="w1", kind="delivered", now_ms=NOW, attempt=1,
                     events=[marker(1), marker(2)])
    first = await q.outbox_peek()
    await q.complete(b, owner="w1", kind="delivered", now_ms=NOW, attempt=1,
                     events=[marker(3)])
    assert await q.outbox_trim(first)
    assert not await q.outbox_trim(first)  # a second flusher with the same batch trims nothing
    left = [decode_outbox_entry(e).headers["ce_id"] for e in await q.outbox_peek()]
    assert left == ["e3"]


async def test_a_claim_says_when_the_next_job_is_due(redis: aioredis.Redis) -> None:
    q = JobQueue(redis, ns(), endpoint_limit=1)
    await q.enqueue_many([job("now"), job("later", endpoint="wh-b", at=NOW + 5000)])
    claimed = await q.claim_due(NOW, 10, LEASE, "w1")
    assert [j.event_id for j in claimed.jobs] == ["now"]
    assert claimed.next_due_ms == NOW + 5000 == await q.next_due_ms()
    nothing = await q.claim_due(NOW + 1, 10, LEASE, "w1")
    assert nothing.jobs == [] and nothing.next_due_ms == NOW + 5000
    assert (await q.claim_due(NOW + 5000, 10, LEASE, "w1")).next_due_ms is None
