"""Redis connection and key naming."""

from __future__ import annotations

import redis.asyncio as aioredis

from carepath_shared.settings import Settings
from carepath_shared.transport_security import redis_connection_options


def make_redis(settings: Settings) -> aioredis.Redis:
    """The client for ``REDIS_URL``; TLS and the ACL user from settings (rediss://)."""
    return aioredis.Redis.from_url(
        settings.redis_url, decode_responses=False, health_check_interval=15,
        **redis_connection_options(settings),
    )


def key(namespace: str, *parts: str) -> str:
    return ":".join((namespace, *parts))
