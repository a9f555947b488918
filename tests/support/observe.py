"""Reading what the system did: referrals in Redis, webhooks at the receiver.

Topics are read with :mod:`carepath_testkit.kafka_reading`.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import httpx
import orjson
import redis

from carepath_referrals.plan_store import episode_index_key, referral_key


def sync_redis(redis_url: str) -> Any:
    """A blocking client for tests: Redis Cluster for ``redis+cluster://`` URLs."""
    from carepath_runtime.redis_client import is_cluster_url, plain_url

    if is_cluster_url(redis_url):
        return redis.RedisCluster.from_url(plain_url(redis_url))
    return redis.Redis.from_url(redis_url)


def referrals_in_redis(redis_url: str, namespace: str, episode_id: str) -> list[dict[str, Any]]:
    r = sync_redis(redis_url)
    try:
        ids = sorted(m.decode() for m in r.smembers(episode_index_key(namespace, episode_id)))
        raws = r.mget([referral_key(namespace, episode_id, i) for i in ids]) if ids else []
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

