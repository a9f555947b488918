"""Redis connection and key naming.

The client rides out a Redis restart: every connection is health-checked before use after
``health_check_interval`` seconds idle (a stale socket is replaced, not failed on), socket
reads and connects are bounded, and a command that meets a connection error, a timeout or
``BusyLoadingError`` (Redis still loading its AOF) is retried with exponential backoff and
jitter on a fresh connection. What still fails after the retries is a transient error
(:mod:`carepath_shared.transient`) that callers wait out.
"""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import BusyLoadingError, ConnectionError, TimeoutError

from carepath_shared.settings import Settings

RETRY_ON = [ConnectionError, TimeoutError, BusyLoadingError]


def make_redis(settings: Settings) -> aioredis.Redis:
    timeout = settings.carepath_redis_socket_timeout_s
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
        # No CLIENT SETINFO on connect: Redis 7.0 (Debian's) does not know it, and with a
        # health check due during a slow connect redis-py read its error reply as the
        # PING's answer (a ResponseError, answered 500 by intake in the load burst).
        driver_info=None,
    )


def key(namespace: str, *parts: str) -> str:
    return ":".join((namespace, *parts))
