"""Redis connection and key naming."""

from __future__ import annotations

import redis.asyncio as aioredis

from carepath_shared.settings import Settings


def make_redis(settings: Settings) -> aioredis.Redis:
    return aioredis.Redis.from_url(
        settings.redis_url, decode_responses=False, health_check_interval=15
    )


def key(namespace: str, *parts: str) -> str:
    return ":".join((namespace, *parts))
