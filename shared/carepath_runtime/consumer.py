"""At-least-once consumption with a retry cap and a dead-letter topic.

FastStream's Kafka default (ACK_FIRST) commits before the handler runs; a crash then loses
the message. Every Carepath subscriber instead runs with ``AckPolicy.MANUAL`` through
:func:`reliable_subscriber`, which

* decodes the CloudEvents headers and validates the body against the model its handler was
  registered for (:class:`~carepath_runtime.subscription.SubscriptionSpec`); a message that
  cannot be decoded, or has no key, goes straight to the dead-letter topic with its cause,
  and its partition moves on;
* runs the handler, which makes its effect durable (Redis write, awaited ``acks=all``
  publishes) before returning, or returns a :class:`~carepath_runtime.state_store.Change`
  that the consumer applies (state, outbox, projections), publishes and marks published;
* commits only then;
* on a handler error seeks back to the same offset after a short backoff (so per-key order
  holds), and after ``max_attempts`` failures dead-letters the message and moves on;
* on a *transient* failure (Redis or Kafka away: see :mod:`carepath_runtime.transient`) pauses
  its partitions (no fetching) and retries the same record with capped backoff until the
  dependency answers. Those attempts are not counted, and ``/health`` names the dependency as
  degraded meanwhile. A failure is only counted while the dependencies are healthy, so an
  outage never dead-letters anything.

Attempts are counted in Redis, keyed by group, topic, partition and offset, so a restart
does not reset the cap. Dead-letter causes and log lines describe failures by field and
reason (:mod:`carepath_runtime.error_text`), never quoting a submitted value.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from functools import partial
from typing import Any

import redis.asyncio as aioredis
from aiokafka import TopicPartition
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pydantic import ValidationError
from redis.exceptions import RedisError

from carepath_contracts.envelope import Envelope, EnvelopeError
from carepath_contracts.events import UnknownEventType, parse_body
from carepath_runtime.dependency_health import DependencyHealth
from carepath_runtime.error_text import describe, scrub
from carepath_runtime.kafka_broker import OutboundEvent, publish_all
from carepath_runtime.log import get_logger
from carepath_runtime.observability.metrics import (
    DEAD_LETTERS,
    HANDLER_SECONDS,
    RETRIES,
    service_name,
)
from carepath_runtime.observability.tracing import mark_consumer_group
from carepath_runtime.redis_client import key as redis_key
from carepath_runtime.state_store import apply_and_publish
from carepath_runtime.subscription import (
    Delivery,
    Handler,
    HandlerMap,
    RetryConfig,
    Route,
    SubscriptionSpec,
)
from carepath_runtime.transient import transient_dependency

__all__ = [
    "AttemptCounter", "Committer", "Delivery", "Handler", "HandlerMap", "PermanentError",
    "RetryConfig", "SubscriptionSpec", "blame", "consume", "dead_letter", "handle",
    "raw_decoder", "reliable_subscriber", "transient_delay", "until_done",
]

log = get_logger(__name__)


class MissingKey(ValueError):
    """A record without a key: every Carepath event is keyed (episode id, delivery job)."""


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


def _record(msg: Any) -> Any:
    return msg.raw_message


async def dead_letter(
    broker: KafkaBroker,
    dlq_topic: str,
    msg: Any,
    *,
    group: str,
    kind: str,
    cause: str,
    attempts: int,
) -> None:
    record = _record(msg)
    headers = {k: (v.decode() if isinstance(v, bytes) else str(v)) for k, v in msg.headers.items()}
    cause = scrub(cause)
    headers.update(
        {
            "dlq_kind": kind,
            "dlq_cause": cause[:2000],
            "dlq_group": group,
            "dlq_original_topic": record.topic,
            "dlq_original_partition": str(record.partition),
            "dlq_original_offset": str(record.offset),
            "dlq_attempts": str(attempts),
            "dlq_failed_at": datetime.now(UTC).isoformat(),
        }
    )
    await broker.publish(record.value or b"", dlq_topic, key=record.key, headers=headers)
    DEAD_LETTERS.labels(service_name(), group, kind).inc()
    log.warning(
        "dead_lettered",
        kind=kind,
        cause=cause[:300],
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        attempts=attempts,
    )


class Committer:
    """Commits processed offsets in batches, never past an unfinished message.

    A record's offset is marked only after its effect is durable (or it was dead-lettered),
    and commits name those offsets explicitly, so a commit can never cover a message still
    in flight. Committing every ``every`` records or ``interval_s`` seconds instead of per
    record removes a broker round trip from each message; a crash re-delivers at most the
    uncommitted tail, which the idempotent handlers absorb.
    """

    def __init__(self, every: int, interval_s: float) -> None:
        self.every = max(1, every)
        self.interval_s = interval_s
        self._pending: dict[TopicPartition, int] = {}
        self._count = 0
        self._last = time.monotonic()
        self._consumer: Any = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    async def done(self, msg: Any) -> None:
        """Mark ``msg`` processed; commit now if the batch is full or old enough."""
        record = _record(msg)
        self._consumer = getattr(msg, "consumer", None)
        self._pending[TopicPartition(record.topic, record.partition)] = record.offset + 1
        self._count += 1
        if self.every == 1 or self._count >= self.every:
            await self.flush()  # a full batch: commit before taking more (backpressure)
        elif self._task is None or self._task.done():
            # Commit in the background: explicit offsets of processed records are safe to
            # commit at any time, and the next message need not wait for the round trip.
            due = max(0.0, self.interval_s - (time.monotonic() - self._last))
            self._task = asyncio.create_task(self._flush_later(due))

    async def _flush_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        await self.flush()

    async def flush(self) -> None:
        async with self._lock:
            if not self._pending or self._consumer is None:
                return
            offsets, self._pending = self._pending, {}
            self._count = 0
            self._last = time.monotonic()
            assignment = getattr(self._consumer, "assignment", None)
            if assignment is None:  # FastStream's in-memory test consumer: nothing to commit
                return
            try:
                assigned = assignment()
                await self._consumer.commit(
                    {tp: off for tp, off in offsets.items() if tp in assigned}
                )
            except Exception as exc:  # rebalance, coordinator moved: redelivery is safe
                log.warning("commit_failed", error=f"{type(exc).__name__}: {exc}")


async def raw_decoder(msg: Any) -> Any:
    """Hand the handler the undecoded bytes.

    FastStream would otherwise parse a body whose content-type says JSON before our handler
    runs, and a body that is not JSON would fail outside our error handling: logged, never
    dead-lettered, and committed past by the next message. We decode ourselves instead.
    """
    return msg.body


def _pause(msg: Any) -> list[Any]:
    """Stop fetching for the consumer that delivered ``msg``; return what was paused."""
    consumer = getattr(msg, "consumer", None)
    assignment = getattr(consumer, "assignment", None)
    if consumer is None or assignment is None or not hasattr(consumer, "pause"):
        return []
    try:
        parts = list(assignment())
        consumer.pause(*parts)
        return parts
    except Exception:  # not assigned any more (rebalance): nothing to pause
        return []


def _resume(msg: Any, parts: list[Any]) -> None:
    consumer = getattr(msg, "consumer", None)
    if consumer is None or not parts:
        return
    for tp in parts:
        with contextlib.suppress(Exception):  # a partition revoked meanwhile
            consumer.resume(tp)


async def handle(route: Route, delivery: Delivery[Any],
                 publish: Callable[[list[OutboundEvent]], Awaitable[None]]) -> None:
    """Run one delivery's handler; apply and publish the change it returns, if any."""
    change = await route.handler(delivery)
    if change is not None:
        outputs = await apply_and_publish(change, publish)
        log.debug("change_applied", store=change.store.name, event_id=delivery.envelope.id,
                  published=len(outputs))


def reliable_subscriber(
    broker: KafkaBroker,
    *,
    topic: str,
    group_id: str,
    dlq_topic: str,
    handlers: HandlerMap,
    redis: aioredis.Redis,
    namespace: str,
    retry: RetryConfig | None = None,
    committer: Committer | None = None,
    health: DependencyHealth | None = None,
    session_timeout_ms: int = 10000,
    event_types: Iterable[str] | None = None,
) -> SubscriptionSpec:
    """Register ``handlers`` on ``topic`` with commit-after-effect, retry cap and DLQ."""
    spec = SubscriptionSpec.of(topic=topic, group=group_id, dlq_topic=dlq_topic,
                               handlers=handlers, retry=retry, event_types=event_types)
    consume(broker, spec, redis=redis, namespace=namespace, committer=committer,
            health=health, session_timeout_ms=session_timeout_ms)
    return spec


def consume(
    broker: KafkaBroker,
    spec: SubscriptionSpec,
    *,
    redis: aioredis.Redis,
    namespace: str,
    committer: Committer | None = None,
    health: DependencyHealth | None = None,
    session_timeout_ms: int = 10000,
) -> Any:
    """Register the subscriber of ``spec`` on ``broker`` (it runs with the broker)."""
    retry = spec.retry
    group_id = spec.group
    dlq_topic = spec.dlq_topic
    attempts = AttemptCounter(redis, namespace, group_id)
    committer = committer or Committer(every=1, interval_s=0.0)
    publish = partial(publish_all, broker)

    def stopping() -> bool:
        return health is not None and health.stopping

    async def _commit(msg: Any) -> None:
        await committer.done(msg)

    async def _dead_letter(msg: Any, to: str, group: str, *, kind: str, cause: str,
                           attempts_: int) -> bool:
        async def send() -> None:
            await dead_letter(broker, to, msg, group=group, kind=kind, cause=cause,
                              attempts=attempts_)

        return await until_done("dead_letter", send, retry=retry, health=health)

    @broker.subscriber(
        spec.topic,
        group_id=group_id,
        ack_policy=AckPolicy.MANUAL,
        decoder=raw_decoder,
        auto_offset_reset="earliest",
        max_poll_records=100,
        session_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=min(1000, max(100, session_timeout_ms // 3)),
    )
    async def _consume(msg: KafkaMessage) -> None:
        record = _record(msg)
        mark_consumer_group(group_id)
        try:
            envelope = Envelope.from_headers(msg.headers)
            route = spec.routes.get(envelope.type)
            if route is None:
                # Another type on a shared topic, or a newer version this consumer does
                # not know: not ours to handle, and not an error.
                await _commit(msg)
                return
            if not record.key:
                raise MissingKey("the record has no key (every event is keyed by its "
                                 "episode id)")
            key = record.key.decode()
            body = parse_body(envelope.type, msg.body)
        except (EnvelopeError, UnknownEventType, ValidationError, ValueError) as exc:
            if await _dead_letter(msg, dlq_topic, group_id, kind="undecodable",
                                  cause=describe(exc), attempts_=1):
                await _commit(msg)
            else:
                await msg.nack()
            return

        delivery: Delivery[Any] = Delivery(
            envelope=envelope,
            body=body,
            key=key,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
        )
        paused: list[Any] = []
        waited = 0
        waited_for: str | None = None
        started = time.perf_counter()
        try:
            while True:
                try:
                    await handle(route, delivery, publish)
                    HANDLER_SECONDS.labels(service_name(), group_id, record.topic, "ok").observe(
                        time.perf_counter() - started)
                    break
                except asyncio.CancelledError:
                    raise
                except PermanentError as exc:
                    if await _dead_letter(msg, dlq_topic, group_id, kind="rejected",
                                          cause=describe(exc), attempts_=1):
                        await _commit(msg)
                    else:
                        await msg.nack()
                    return
                except Exception as exc:
                    dep = blame(exc, health)
                    if dep is None:
                        await _counted_failure(msg, record, envelope, exc)
                        return
                    # A dependency is away: wait it out on this same record, not counted.
                    RETRIES.labels(service_name(), group_id, "transient").inc()
                    waited += 1
                    waited_for = dep
                    if health is not None and transient_dependency(exc) is not None:
                        health.report_down(dep, describe(exc, 200))
                    if not paused:
                        paused = _pause(msg)
                    delay = transient_delay(waited, retry)
                    if waited == 1 or waited % 20 == 0:
                        log.warning("dependency_unavailable_waiting", dependency=dep,
                                    error=describe(exc, 200), event_id=envelope.id,
                                    tries=waited, delay_s=delay)
                    if stopping():
                        await msg.nack()  # redelivered after the restart, not skipped
                        return
                    if health is not None:
                        with health.waiting_on(dep):
                            await asyncio.sleep(delay)
                    else:
                        await asyncio.sleep(delay)
        finally:
            _resume(msg, paused)
        if waited:
            log.info("dependency_back", event_id=envelope.id, tries=waited)
            if health is not None and waited_for is not None:
                health.report_up(waited_for)
        await _commit(msg)
        await attempts.succeeded(record.topic, record.partition, record.offset)

    async def _counted_failure(msg: Any, record: Any, envelope: Envelope,
                               exc: Exception) -> None:
        count = await attempts.fail(record.topic, record.partition, record.offset)
        if count >= retry.max_attempts:
            if await _dead_letter(msg, dlq_topic, group_id, kind="handler_failed",
                                  cause=describe(exc), attempts_=count):
                await attempts.clear(record.topic, record.partition, record.offset)
                await _commit(msg)
            else:
                await msg.nack()
            return
        delay = min(retry.backoff_ms * (2 ** (count - 1)), retry.max_backoff_ms) / 1000
        RETRIES.labels(service_name(), group_id, "handler_failed").inc()
        log.warning(
            "handler_failed_will_retry",
            error=describe(exc, 200),
            event_id=envelope.id,
            attempt=count,
            delay_s=delay,
        )
        await asyncio.sleep(delay)
        await msg.nack()

    return _consume
