"""Reading what the system did: referrals in Redis, webhooks at the receiver."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import httpx
import orjson
import redis


def referrals_in_redis(redis_url: str, namespace: str, episode_id: str) -> list[dict[str, Any]]:
    r = redis.Redis.from_url(redis_url)
    try:
        ids = sorted(m.decode() for m in r.smembers(f"{namespace}:referrals:episode:{episode_id}"))
        raws = r.mget([f"{namespace}:referral:{i}" for i in ids]) if ids else []
        return [orjson.loads(x) for x in raws if x is not None]
    finally:
        r.close()


def received_webhooks(receiver_url: str) -> dict[str, Any]:
    out: dict[str, Any] = httpx.get(f"{receiver_url}/received", timeout=10).json()
    return out


def webhook_counts(receiver_url: str) -> Counter[str]:
    """How often each webhook-id arrived (a receiver-side duplicate shows as a count > 1)."""
    return Counter(item["webhook_id"] for item in received_webhooks(receiver_url)["received"])


def wait_until(predicate: Any, timeout: float, interval: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def read_topic(bootstrap: str, topic: str) -> list[Any]:
    """Every record of a topic, from the beginning to its current end (all partitions)."""
    import asyncio

    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    async def read() -> list[Any]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            (described,) = await admin.describe_topics([topic])
        finally:
            await admin.close()
        parts = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                    enable_auto_commit=False)
        await consumer.start()
        out: list[Any] = []
        try:
            consumer.assign(parts)
            await consumer.seek_to_beginning(*parts)
            ends = await consumer.end_offsets(parts)
            remaining = {tp for tp in parts if ends[tp] > 0}
            while remaining:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    out.extend(records)
                for tp in list(remaining):
                    if await consumer.position(tp) >= ends[tp]:
                        remaining.discard(tp)
        finally:
            await consumer.stop()
        return out

    return asyncio.run(read())
