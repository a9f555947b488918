"""A service runtime against the real broker and Redis, for tests that drive a service's
stores and handlers in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from carepath_runtime.service import Runtime, make_runtime
from carepath_runtime.settings import Settings


@asynccontextmanager
async def started_runtime(service: str, kafka_bootstrap: str, redis_url: str,
                          namespace: str) -> AsyncIterator[Runtime]:
    settings = Settings(kafka_bootstrap_servers=kafka_bootstrap, redis_url=redis_url,
                        carepath_namespace=namespace)
    runtime = make_runtime(service, settings)
    await runtime.broker.start()
    try:
        yield runtime
    finally:
        await runtime.broker.stop()
        await runtime.redis.aclose()
