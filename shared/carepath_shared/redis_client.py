"""Redis connection and key naming.

A single Redis is the default. ``REDIS_URL=redis+cluster://host:port/0`` (any node of the
cluster) selects Redis Cluster (:class:`redis.asyncio.cluster.RedisCluster`, which learns the
other nodes from that one and routes every command by hash slot).

Redis Cluster runs a transaction (WATCH/MULTI/EXEC) or a Lua script only on keys of one hash
slot. Keys that must change together therefore share a *hash tag* (:func:`tag`): one per
episode (its state, its outbox marker, its referrals and their per-episode index), one per
namespace for the notification job queue, one for the subscription table. Cross-episode
indexes (a team's referrals, the deadline index) are separate keys, updated outside the
episode's transaction by idempotent commands. See docs/operations.md ("Redis Cluster").
"""

from __future__ import annotations

from typing import cast

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from carepath_shared.settings import Settings

CLUSTER_SCHEME = "redis+cluster://"


def is_cluster_url(url: str) -> bool:
    return url.startswith(CLUSTER_SCHEME)


def plain_url(url: str) -> str:
    """The URL redis-py understands: ``redis+cluster://`` becomes ``redis://``."""
    return "redis://" + url[len(CLUSTER_SCHEME):] if is_cluster_url(url) else url


def make_redis(settings: Settings) -> aioredis.Redis:
    if is_cluster_url(settings.redis_url):
        cluster = RedisCluster.from_url(
            plain_url(settings.redis_url), decode_responses=False, health_check_interval=15
        )
        # Same command surface for everything Carepath calls (single-slot transactions,
        # scripts with their keys declared, non-transactional pipelines split per node).
        return cast(aioredis.Redis, cluster)
    return aioredis.Redis.from_url(
        settings.redis_url, decode_responses=False, health_check_interval=15
    )


def key(namespace: str, *parts: str) -> str:
    return ":".join((namespace, *parts))


def tag(value: str) -> str:
    """A hash tag: keys containing the same ``{value}`` land in the same cluster slot."""
    return "{" + value + "}"
