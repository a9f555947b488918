"""The composition root every service shares: broker, Redis, FastAPI app, uvicorn.

Each service is its own process. Uvicorn turns SIGTERM into a graceful shutdown: the app's
lifespan stops the broker (subscribers stop fetching, in-flight messages finish and commit,
up to the broker's graceful timeout), then closes Redis.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
import uvicorn
from fastapi import FastAPI
from faststream.kafka import KafkaBroker

from carepath_shared.consumer import Committer, Handler, RetryConfig, reliable_subscriber
from carepath_shared.http import install_health
from carepath_shared.http_edge import install_edge
from carepath_shared.kafka_broker import make_broker
from carepath_shared.log import configure_logging, get_logger
from carepath_shared.redis_client import make_redis
from carepath_shared.settings import Settings, get_settings
from carepath_shared.topics import Topics


@dataclass
class Runtime:
    """What a service's adapters need: settings, topic names, broker and Redis."""

    service: str
    settings: Settings
    topics: Topics
    broker: KafkaBroker
    redis: aioredis.Redis
    extras: dict[str, Any] = field(default_factory=dict)


def make_runtime(service: str, settings: Settings | None = None) -> Runtime:
    settings = settings or get_settings()
    return Runtime(
        service=service,
        settings=settings,
        topics=Topics(settings.namespace),
        broker=make_broker(settings, client_id=f"carepath-{service}"),
        redis=make_redis(settings),
    )


def make_committer(rt: Runtime) -> Committer:
    """A batching committer for one subscriber, flushed when the service stops."""
    committer = Committer(
        every=rt.settings.carepath_commit_every,
        interval_s=rt.settings.carepath_commit_interval_ms / 1000,
    )
    rt.extras.setdefault("committers", []).append(committer)
    return committer


def subscribe(
    rt: Runtime,
    *,
    topic: str,
    group: str,
    dlq_topic: str,
    handler: Handler,
    accepted_types: frozenset[str],
) -> None:
    """A reliable subscriber configured from settings: retry cap, backoff, batched commits."""
    reliable_subscriber(
        rt.broker,
        topic=topic,
        group_id=rt.topics.group(group),
        dlq_topic=dlq_topic,
        handler=handler,
        redis=rt.redis,
        namespace=rt.settings.namespace,
        accepted_types=accepted_types,
        retry=RetryConfig(
            max_attempts=rt.settings.carepath_max_attempts,
            backoff_ms=rt.settings.carepath_retry_backoff_ms,
        ),
        committer=make_committer(rt),
    )


Hook = Callable[[Runtime], Awaitable[None]]


def make_app(
    runtime: Runtime,
    *,
    on_started: Hook | None = None,
    on_stopping: Hook | None = None,
    on_stopped: Hook | None = None,
) -> FastAPI:
    log = get_logger(runtime.service)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.redis.ping()
        await runtime.broker.start()
        if on_started is not None:
            await on_started(runtime)
        log.info("service_started", bootstrap=runtime.settings.kafka_bootstrap_servers,
                 namespace=runtime.settings.namespace)
        try:
            yield
        finally:
            log.info("service_stopping")
            if on_stopping is not None:
                await on_stopping(runtime)
            for committer in runtime.extras.get("committers", []):
                await committer.flush()
            await runtime.broker.stop()
            if on_stopped is not None:
                await on_stopped(runtime)
            await runtime.redis.aclose()
            log.info("service_stopped")

    app = FastAPI(title=f"carepath-{runtime.service}", lifespan=lifespan)
    install_health(app, runtime.broker, runtime.redis, runtime.service)
    install_edge(app, runtime.settings)
    app.state.runtime = runtime
    return app


def serve(app: FastAPI, service: str, port: int, settings: Settings | None = None) -> None:
    settings = settings or get_settings()
    configure_logging(service, settings.carepath_log_level)
    uvicorn.run(
        app,
        host=settings.carepath_http_host,
        port=port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=25,
        server_header=False,
    )
