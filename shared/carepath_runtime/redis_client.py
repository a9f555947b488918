"""Redis connection and key naming.

The client rides out a Redis restart: every connection is health-checked before use after
``health_check_interval`` seconds idle (a stale socket is replaced, not failed on), socket
reads and connects are bounded, and a command that meets a connection error, a timeout or
``BusyLoadingError`` (Redis still loading its AOF) is retried with exponential backoff and
jitter on a fresh connection. What still fails after the retries is a transient error
(:mod:`carepath_runtime.transient`) that callers wait out.
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
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import BusyLoadingError, ConnectionError, TimeoutError

from carepath_runtime.settings import Settings
from carepath_runtime.transport_security import redis_connection_options

RETRY_ON = [ConnectionError, TimeoutError, BusyLoadingError]

CLUSTER_SCHEME = "redis+cluster://"


def is_cluster_url(url: str) -> bool:
    return url.startswith(CLUSTER_SCHEME)


def plain_url(url: str) -> str:
    """The URL redis-py understands: ``redis+cluster://`` becomes ``redis://``."""
    return "redis://" + url[len(CLUSTER_SCHEME):] if is_cluster_url(url) else url


def make_redis(settings: Settings) -> aioredis.Redis:
    timeout = settings.carepath_redis_socket_timeout_s
    if is_cluster_url(settings.redis_url):
        cluster = RedisCluster.from_url(
            plain_url(settings.redis_url), decode_responses=False, health_check_interval=15
        )
        # Same command surface for everything Carepath calls (single-slot transactions,
        # scripts with their keys declared, non-transactional pipelines split per node).
        return cast(aioredis.Redis, cluster)
    return aioredis.Redis.from_url(
        settings.redis_url,
        decode_responses=False,
        health_check_interval=settings.carepath_redis_health_check_interval_s,
        socket_timeout=timeout,
        socket_connect_timeout=min(timeout, 1.0),
        socket_keepalive=True,
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5),
                    retries=settings.carepath_redis_retries),
        retry_on_error=list(RETRY_ON),
        **redis_connection_options(settings),
        # No CLIENT SETINFO on connect: Redis 7.0 (Debian's) does not know it, and with a
        # health check due during a slow connect redis-py read its error reply as the
        # PING's answer (a ResponseError, answered 500 by intake in the load burst).
        driver_info=None,
    )


def key(namespace: str, *parts: str) -> str:
    return ":".join((namespace, *parts))


def tag(value: str) -> str:
    """A hash tag: keys containing the same ``{value}`` land in the same cluster slot."""
    return "{" + value + "}"
