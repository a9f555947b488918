"""How a consumer treats a failure: permanent, waited out (a dependency away), or counted.

A :class:`PermanentError` sends its record to the dead-letter topic at once. A transient
failure (:mod:`carepath_runtime.transient`), or any failure while a dependency is known to be
down, is waited out with capped backoff and never counted (:func:`blame`,
:func:`transient_delay`). Any other failure is counted per record in Redis
(:class:`AttemptCounter`), so a restart does not reset the cap.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from carepath_runtime.dependency_health import DependencyHealth
from carepath_runtime.error_text import describe
from carepath_runtime.log import get_logger
from carepath_runtime.redis_client import key as redis_key
from carepath_runtime.subscription import RetryConfig
from carepath_runtime.transient import transient_dependency

log = get_logger("carepath_runtime.consumer")


class PermanentError(Exception):
    """An input that no retry can fix (e.g. an outcome for an unknown episode).

    Raised by a handler, it sends the record to the dead-letter topic at once.
    """


def transient_delay(tries: int, retry: RetryConfig) -> float:
    """Seconds before the ``tries``-th retry of a dependency outage (capped exponential)."""
    ms: int = retry.transient_backoff_ms * 2 ** min(max(tries - 1, 0), 20)
    return float(min(ms, retry.transient_max_backoff_ms)) / 1000


def blame(exc: BaseException, health: DependencyHealth | None) -> str | None:
    """The dependency to wait for, or None when the failure is to be counted.

    A transient error names its dependency. Any other failure while a dependency is known to
    be down is blamed on that dependency too: only failures while everything is healthy
    count toward the dead-letter cap.
    """
    dep = transient_dependency(exc)
    if dep is not None:
        return dep
    if health is not None and not health.all_up():
        down = [n for n in health.state if not health.is_up(n)]
        return down[0] if down else None
    return None


async def until_done(
    what: str,
    fn: Callable[[], Awaitable[Any]],
    *,
    retry: RetryConfig,
    health: DependencyHealth | None,
    give_up: Callable[[], bool] | None = None,
) -> bool:
    """Run ``fn`` until it succeeds, waiting out transient failures; False if told to give
    up (the service is stopping). Any other failure is raised."""
    tries = 0
    while True:
        try:
            await fn()
            return True
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            dep = transient_dependency(exc)
            if dep is None:
                raise
            tries += 1
            if health is not None:
                health.report_down(dep, describe(exc, 200))
            if tries == 1 or tries % 20 == 0:
                log.warning("waiting_for_dependency", what=what, dependency=dep,
                            error=describe(exc, 200), tries=tries)
            if (give_up is not None and give_up()) or (health is not None and health.stopping):
                return False
            await asyncio.sleep(transient_delay(tries, retry))


class AttemptCounter:
    """Failure counts per record, in Redis when it answers, in memory otherwise."""

    def __init__(self, redis: aioredis.Redis, namespace: str, group: str) -> None:
        self._redis = redis
        self._ns = namespace
        self._group = group
        self._local: dict[str, int] = {}
        self._failed: set[str] = set()

    def _key(self, topic: str, partition: int, offset: int) -> str:
        return redis_key(self._ns, "attempts", self._group, topic, str(partition), str(offset))

    async def fail(self, topic: str, partition: int, offset: int) -> int:
        k = self._key(topic, partition, offset)
        self._failed.add(k)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(k)
                pipe.expire(k, 86400)
                count, _ = await pipe.execute()
            return int(count)
        except RedisError:
            self._local[k] = self._local.get(k, 0) + 1
            return self._local[k]

    async def succeeded(self, topic: str, partition: int, offset: int) -> None:
        """Forget a record's failures once it went through (only those that failed here)."""
        if self._key(topic, partition, offset) in self._failed:
            await self.clear(topic, partition, offset)

    async def clear(self, topic: str, partition: int, offset: int) -> None:
        k = self._key(topic, partition, offset)
        self._failed.discard(k)
        self._local.pop(k, None)
        with contextlib.suppress(RedisError):
            await self._redis.delete(k)
