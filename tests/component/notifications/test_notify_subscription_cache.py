"""The delivery path's cached subscriptions over a real Redis: no round trip per event, a
change made anywhere is picked up (a pub/sub notice, this instance's own change, or the
periodic check), and a job for a subscription the cache does not know is checked in Redis."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from carepath_notifications.destination_resolver import DestinationGuard
from carepath_notifications.domain.destination_guard import Allowlist
from carepath_notifications.domain.subscriptions import Subscription
from carepath_notifications.subscription_store import SubscriptionStore

pytestmark = [pytest.mark.redis]

CREATED = "carepath.referral.created.v1"
# Only email subscriptions are created here; the guard refuses every webhook (no resolver).
GUARD = DestinationGuard(Allowlist(), lambda host, port: [])

FILE_SUB = Subscription(
    id="from-file", subscriber="EHR", kind="system", event_types=["carepath.referral.*"],
    channel="webhook", url="https://ehr.example/hook", secret=SecretStr("whsec_" + "QUFB" * 11),
)
AT = datetime(2026, 1, 1, tzinfo=UTC)


def mailbox(sid: str, types: list[str] | None = None) -> Subscription:
    return Subscription(id=sid, subscriber=sid, kind="coordinator",
                        event_types=types or ["*"], channel="email",
                        email=f"{sid}@hospital.example")


@pytest.fixture()
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


def stores(redis: aioredis.Redis, refresh_s: float = 3600.0
           ) -> tuple[SubscriptionStore, SubscriptionStore]:
    ns = f"sc{uuid.uuid4().hex[:8]}"
    return (SubscriptionStore(redis, ns, [FILE_SUB], guard=GUARD, refresh_s=refresh_s),
            SubscriptionStore(redis, ns, [FILE_SUB], guard=GUARD, refresh_s=refresh_s))


class Counting:
    """Counts the GETs sent through a Redis client (a store's version checks)."""

    def __init__(self, inner: aioredis.Redis) -> None:
        self.gets = 0
        original = inner.get

        async def get(*args: Any, **kwargs: Any) -> Any:
            self.gets += 1
            return await original(*args, **kwargs)

        self.restore = lambda: setattr(inner, "get", original)
        inner.get = get  # type: ignore[method-assign]


async def wait_for(predicate: Any, timeout: float = 5.0) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(0.02)
    return False


async def test_the_delivery_path_checks_redis_once_not_per_event(redis: aioredis.Redis) -> None:
    store, _ = stores(redis)
    counting = Counting(redis)
    try:
        for _ in range(50):
            index = await store.current()
            assert [s.id for s in index.for_type(CREATED)] == ["from-file"]
            assert await store.find("from-file") is FILE_SUB
    finally:
        counting.restore()
    assert counting.gets == 1


async def test_a_change_on_another_instance_arrives_by_notice(redis: aioredis.Redis) -> None:
    mine, other = stores(redis)
    await mine.current()
    watcher = asyncio.create_task(mine.watch())
    try:
        await asyncio.sleep(0.2)  # subscribed
        await other.create(mailbox("api-coord"), "coord@x", AT)

        async def seen() -> bool:
            return (await mine.current()).get("api-coord") is not None

        assert await wait_for(seen), "the notice did not refresh the cached set"
        await other.delete("api-coord")

        async def gone() -> bool:
            return (await mine.current()).get("api-coord") is None

        assert await wait_for(gone)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


async def test_without_a_notice_the_copy_is_kept_until_checked(redis: aioredis.Redis) -> None:
    mine, other = stores(redis)
    await mine.current()
    await other.create(mailbox("api-coord"), "coord@x", AT)
    assert (await mine.current()).get("api-coord") is None  # cached: no round trip
    assert [s.subscription.id for s in await mine.all()] == ["from-file", "api-coord"]  # API
    mine.invalidate()  # what a notice or the periodic check does
    assert (await mine.current()).get("api-coord") is not None


async def test_the_periodic_check_bounds_a_lost_notice(redis: aioredis.Redis) -> None:
    mine, other = stores(redis, refresh_s=0.0)
    await mine.current()
    await other.create(mailbox("api-coord"), "coord@x", AT)
    assert (await mine.current()).get("api-coord") is not None


async def test_this_instances_own_changes_are_used_at_once(redis: aioredis.Redis) -> None:
    mine, _ = stores(redis)
    await mine.current()
    await mine.create(mailbox("api-coord", ["carepath.careplan.*"]), "coord@x", AT)
    index = await mine.current()
    assert [s.id for s in index.for_type("carepath.careplan.updated.v1")] == ["api-coord"]
    await mine.delete("api-coord")
    assert (await mine.current()).for_type("carepath.careplan.updated.v1") == ()


async def test_a_job_for_an_unknown_subscription_checks_redis_first(redis: aioredis.Redis
                                                                    ) -> None:
    mine, other = stores(redis)
    await mine.current()
    await other.create(mailbox("api-new"), "coord@x", AT)
    found = await mine.find("api-new")  # created elsewhere a moment ago: not given up
    assert found is not None and found.id == "api-new"
    assert await mine.find("never-existed") is None
