"""The composition root every service shares: broker, Redis, FastAPI app, uvicorn.

Each service is its own process. Uvicorn turns SIGTERM into a graceful shutdown: the app's
lifespan stops the broker (subscribers stop fetching, in-flight messages finish and commit,
up to the broker's graceful timeout), then closes Redis.

Every runtime carries a :class:`~carepath_runtime.dependency_health.DependencyHealth`: a
background task probes Redis and Kafka once a second, ``/health`` reports what it found, and
consumers waiting out an outage are reported as degraded, naming the dependency.

What a service wires onto its :class:`Runtime` is typed: the :class:`SubscriptionSpec` of
each subscription (the consumers, the lag monitor and the AsyncAPI generator read them), the
committers flushed at shutdown, and the resources closed when the service stops.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

import redis.asyncio as aioredis
import uvicorn
from fastapi import FastAPI, Response
from faststream.kafka import KafkaBroker

from carepath_contracts.topics import Topics
from carepath_runtime.consumer import Committer, consume
from carepath_runtime.dependency_health import DependencyHealth, standard_probes
from carepath_runtime.heap import freeze_startup_heap
from carepath_runtime.http import install_health
from carepath_runtime.http_edge import install_edge
from carepath_runtime.kafka_broker import make_broker
from carepath_runtime.log import configure_logging, get_logger
from carepath_runtime.observability.http_observe import ObserveHTTP
from carepath_runtime.observability.lag_monitor import LagMonitor
from carepath_runtime.observability.metrics import exposition, set_service
from carepath_runtime.observability.tracing import configure_tracing, shutdown_tracing
from carepath_runtime.production_guard import enforce as enforce_production_rules
from carepath_runtime.redis_client import make_redis
from carepath_runtime.settings import Settings, get_settings
from carepath_runtime.subscription import HandlerMap, RetryConfig, SubscriptionSpec
from carepath_runtime.transport_security import kafka_client_options


class Closeable(Protocol):
    async def aclose(self) -> None: ...


@dataclass
class Runtime:
    """What a service's adapters need: settings, topic names, broker and Redis."""

    service: str
    settings: Settings
    topics: Topics
    broker: KafkaBroker
    redis: aioredis.Redis
    health: DependencyHealth
    #: Every reliable subscription of the service (:func:`subscribe`).
    subscriptions: list[SubscriptionSpec] = field(default_factory=list)
    #: The subscriptions' offset committers, flushed when the service stops.
    committers: list[Committer] = field(default_factory=list)
    #: Clients the service owns beside Redis (an HTTP client), closed when it stops.
    resources: list[Closeable] = field(default_factory=list)

    def consumer_groups(self) -> list[tuple[str, str]]:
        """(consumer group, topic) of every subscription, for the lag monitor."""
        return [(spec.group, spec.topic) for spec in self.subscriptions]

    async def aclose(self) -> None:
        """Close the service's resources, then Redis."""
        for resource in self.resources:
            await resource.aclose()
        await self.redis.aclose()

    def retry_config(self) -> RetryConfig:
        s = self.settings
        return RetryConfig(
            max_attempts=s.carepath_max_attempts,
            backoff_ms=s.carepath_retry_backoff_ms,
            transient_backoff_ms=s.carepath_transient_backoff_ms,
            transient_max_backoff_ms=s.carepath_transient_max_backoff_ms,
        )


def make_runtime(service: str, settings: Settings | None = None) -> Runtime:
    settings = settings or get_settings()
    enforce_production_rules(settings, service)  # CAREPATH_ENV=production: no dev secrets
    set_service(service)
    broker = make_broker(settings, client_id=f"carepath-{service}", service=service)
    redis = make_redis(settings)
    timeout = settings.carepath_health_probe_timeout_s
    health = DependencyHealth(
        service, standard_probes(broker, redis, timeout),
        interval_s=settings.carepath_health_interval_s, probe_timeout_s=timeout,
    )
    return Runtime(
        service=service,
        settings=settings,
        topics=Topics(settings.namespace),
        broker=broker,
        redis=redis,
        health=health,
    )


def make_committer(runtime: Runtime) -> Committer:
    """A batching committer for one subscriber, flushed when the service stops."""
    committer = Committer(
        every=runtime.settings.carepath_commit_every,
        interval_s=runtime.settings.carepath_commit_interval_ms / 1000,
    )
    runtime.committers.append(committer)
    return committer


def subscribe(
    runtime: Runtime,
    *,
    topic: str,
    group: str,
    dlq_topic: str,
    handlers: HandlerMap,
    event_types: Iterable[str] | None = None,
) -> SubscriptionSpec:
    """A reliable subscriber of ``handlers`` (body model -> handler) configured from
    settings: retry cap, backoff, batch size, batched commits. ``group`` is the service's
    name for it (namespaced here). Its spec is recorded on the runtime and returned."""
    spec = SubscriptionSpec.of(topic=topic, group=runtime.topics.group(group),
                               dlq_topic=dlq_topic, handlers=handlers,
                               retry=runtime.retry_config(), event_types=event_types)
    runtime.subscriptions.append(spec)
    consume(
        runtime.broker,
        spec,
        redis=runtime.redis,
        namespace=runtime.settings.namespace,
        committer=make_committer(runtime),
        health=runtime.health,
        session_timeout_ms=runtime.settings.carepath_kafka_session_timeout_ms,
        batch_max_records=runtime.settings.carepath_batch_max_records,
    )
    return spec


Hook = Callable[[Runtime], Awaitable[None]]


def make_app(
    runtime: Runtime,
    *,
    on_started: Hook | None = None,
    on_stopping: Hook | None = None,
    on_stopped: Hook | None = None,
) -> FastAPI:
    log = get_logger(runtime.service)
    lag = LagMonitor(
        runtime.settings.kafka_bootstrap_servers,
        runtime.consumer_groups,
        interval_s=runtime.settings.carepath_lag_sample_seconds,
        client_kwargs=kafka_client_options(runtime.settings),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.redis.ping()
        await runtime.broker.start()
        await runtime.health.probe_once()
        runtime.health.start()
        if on_started is not None:
            await on_started(runtime)
        lag.start()
        log.info("service_started", bootstrap=runtime.settings.kafka_bootstrap_servers,
                 namespace=runtime.settings.namespace)
        try:
            yield
        finally:
            log.info("service_stopping")
            runtime.health.stopping = True  # waits on a dependency give up: redelivered later
            await lag.stop()
            if on_stopping is not None:
                await on_stopping(runtime)
            for committer in runtime.committers:
                await committer.flush()
            await runtime.broker.stop()
            await runtime.health.stop()
            if on_stopped is not None:
                await on_stopped(runtime)
            await runtime.aclose()
            shutdown_tracing()
            log.info("service_stopped")

    app = FastAPI(title=f"carepath-{runtime.service}", lifespan=lifespan)
    install_health(app, runtime.health)
    install_metrics(app)
    app.add_middleware(ObserveHTTP, service=runtime.service,
                       tracer_provider=configure_tracing(runtime.service))
    install_edge(app, runtime.settings)
    app.state.runtime = runtime
    return app


def install_metrics(app: FastAPI) -> None:
    """``GET /metrics``: the Prometheus exposition, unauthenticated like ``/health``."""

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        body, content_type = exposition()
        return Response(body, media_type=content_type)


def serve(app: FastAPI, service: str, port: int, settings: Settings | None = None) -> None:
    settings = settings or get_settings()
    configure_logging(service, settings.carepath_log_level,
                      settings.carepath_log_rate_interval_s)
    # The process's modules, models and routes are loaded: exempt them from every later
    # full collection (carepath_runtime.heap). Only here, in the process's own entry point:
    # an app built inside a test process must not freeze that process's heap.
    freeze_startup_heap()
    uvicorn.run(
        app,
        host=settings.carepath_http_host,
        port=port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=25,
        # Longer than a client (or load balancer) keeps an idle connection: a server that
        # closes first races the client's reuse of it (a dropped request under load).
        timeout_keep_alive=30,
        server_header=False,
    )
