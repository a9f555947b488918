"""At-least-once consumption in batches, with a retry cap and a dead-letter topic.

FastStream's Kafka default (ACK_FIRST) commits before the handler runs; a crash then loses
the message. Every Carepath subscriber instead runs with ``AckPolicy.MANUAL`` through
:func:`reliable_subscriber` (or :func:`carepath_runtime.service.subscribe`), which

* decodes the CloudEvents headers and validates the body against the model its handler was
  registered for (:class:`~carepath_runtime.subscription.SubscriptionSpec`); a message that
  cannot be decoded, or has no key, goes straight to the dead-letter topic with its cause,
  and its partition moves on;
* runs the handler, which makes its effect durable (Redis write, awaited ``acks=all``
  publishes) before returning, or returns a :class:`~carepath_runtime.state_store.Change`
  that the consumer applies (state, outbox, projections), publishes and marks published;
* commits only then;
* on a handler error retries the same record after a short backoff (so per-key order
  holds), and after ``max_attempts`` failures dead-letters the record and moves on;
* on a *transient* failure (Redis or Kafka away: see :mod:`carepath_runtime.transient`) pauses
  its partitions (no fetching) and retries the same record with capped backoff until the
  dependency answers. Those attempts are not counted, and ``/health`` names the dependency as
  degraded meanwhile. A failure is only counted while the dependencies are healthy, so an
  outage never dead-letters anything.

Attempts are counted in Redis, keyed by group, topic, partition and offset, so a restart
does not reset the cap. Dead-letter causes and log lines describe failures by field and
reason (:mod:`carepath_runtime.error_text`), never quoting a submitted value.

**Batches.** A subscriber takes up to ``carepath_batch_max_records`` records per poll.
aiokafka's ``getmany`` returns as soon as records are there, so under light load a batch is
one record that waited for nothing. The poll's records are split by partition, and the
partitions are handled concurrently; within a partition, in offset order:

1. each record is decoded (an undecodable one is set aside for the dead-letter topic);
2. the handlers run in record order (a handler's own effect happens when it is called);
3. the changes they returned are applied by their store together
   (:meth:`~carepath_runtime.state_store.StateStore.apply_many`): grouped by key, every
   key's state read in one round trip, folded in order, and every state, outbox and
   projection written in one transaction;
4. every outbound event is handed to the producer without waiting for each one, then all
   are awaited once; the outboxes are marked published in one round trip;
5. the effects the handlers deferred (:class:`~carepath_runtime.effects.Deferred`: the
   notifications' delivery jobs) are applied, each sink's in one call;
6. the records' offsets go to the committer.

A record that fails (its handler or its fold raises) cuts its partition's batch there:
what precedes it takes effect and is committed, the record is retried (counted, or waited
out when a dependency is away) or dead-lettered, and the batch goes on after it. Records of
other keys past the cut whose changes were written already are no-ops when they come round
again (their input ids are in their keys' ``seen``). A failure no single record can be
blamed for (the batch's transaction or publish failing, not for an outage) replays the batch
one record at a time, so only the record that causes it is retried and dead-lettered.

**Why FastStream's batch subscriber, under our own per-record logic.** FastStream's batch
ack acknowledges (commits, or seeks back) a batch as a whole; it cannot say that the first
ten records took effect, the eleventh goes to the dead-letter topic and the rest must be
retried. We never use it: with ``AckPolicy.MANUAL`` FastStream commits nothing, and this
module commits explicit offsets per partition through the underlying aiokafka consumer
(:class:`Committer`), seeks and pauses partitions itself, and decides each record's fate.
What FastStream's subscriber still gives is what reading aiokafka directly would have to
rebuild: the consumer's life cycle with the broker (start, graceful stop that waits for the
batch in flight), the in-memory test broker the component tests run on, and its Prometheus
metrics (``faststream_*``). One thing it does that we must not: its batch loop sleeps for
``batch_timeout_ms`` after an empty poll, which would delay the first record after a quiet
spell; the subscriber's class is narrowed to :class:`_NoLingerBatchSubscriber`, whose poll
just polls again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import redis.asyncio as aioredis
from aiokafka import TopicPartition
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.subscriber.usecase import BatchSubscriber
from pydantic import ValidationError

from carepath_contracts.envelope import Envelope, EnvelopeError
from carepath_contracts.events import UnknownEventType, parse_body
from carepath_runtime import kafka_broker
from carepath_runtime.committer import Committer
from carepath_runtime.dead_letters import dead_letter
from carepath_runtime.dependency_health import DependencyHealth
from carepath_runtime.effects import Deferred, by_identity, by_sink
from carepath_runtime.error_text import describe
from carepath_runtime.failures import (
    AttemptCounter,
    PermanentError,
    blame,
    transient_delay,
    until_done,
)
from carepath_runtime.kafka_broker import OutboundEvent
from carepath_runtime.log import get_logger
from carepath_runtime.observability.metrics import HANDLER_SECONDS, RETRIES, service_name
from carepath_runtime.observability.tracing import record_span, within
from carepath_runtime.state_store import BatchOutcome, Change, StateStore, publish_outcomes
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
    "RetryConfig", "SubscriptionSpec", "blame", "consume", "dead_letter", "message_decoder",
    "raw_decoder", "reliable_subscriber", "run_handler", "transient_delay", "until_done",
]

log = get_logger(__name__)

DEFAULT_BATCH_MAX_RECORDS = 200
# How long one poll waits for a first record before polling again (an idle consumer wakes
# this often; a record that arrives meanwhile is returned at once).
POLL_TIMEOUT_MS = 1000


class MissingKey(ValueError):
    """A record without a key: every Carepath event is keyed (episode id, delivery job)."""


async def raw_decoder(msg: Any) -> Any:
    """Hand the handler the undecoded bytes.

    FastStream would otherwise parse a body whose content-type says JSON before our handler
    runs, and a body that is not JSON would fail outside our error handling: logged, never
    dead-lettered, and committed past by the next message. We decode ourselves instead.
    """
    return msg.body


async def message_decoder(msg: Any) -> Any:
    """Hand the handler FastStream's whole message (the poll's records), undecoded.

    The handler then takes it as a plain argument. Asking for it by FastStream's
    ``KafkaMessage`` annotation instead makes FastDepends resolve a context dependency,
    which it does with a synchronous call in a worker thread: a thread hop on every poll,
    about 0.75 ms of latency per hop at low load (docs/benchmarks.md, "Latency at low
    load"). Nothing is parsed either, for the reason given at :func:`raw_decoder`.
    """
    return msg


class _NoLingerBatchSubscriber(BatchSubscriber):
    """FastStream's batch subscriber without its sleep after an empty poll.

    ``getmany`` already waits up to its timeout for a first record and returns as soon as
    one is there; sleeping again after an empty poll would only hold back the first record
    of the next burst."""

    __slots__ = ()

    async def get_msg(self, consumer: Any) -> tuple[Any, ...]:
        batches = await consumer.getmany(timeout_ms=self.batch_timeout_ms,
                                         max_records=self.max_records)
        return tuple(chain(*batches.values()))


class _Pauser:
    """Pauses a consumer's partitions while any of its partitions waits out an outage."""

    def __init__(self) -> None:
        self._holders = 0
        self._paused: list[Any] = []

    def hold(self, consumer: Any) -> None:
        if self._holders == 0:
            self._paused = _pause(consumer)
        self._holders += 1

    def release(self, consumer: Any) -> None:
        self._holders = max(0, self._holders - 1)
        if self._holders == 0:
            _resume(consumer, self._paused)
            self._paused = []


def _pause(consumer: Any) -> list[Any]:
    """Stop fetching for ``consumer``; return what was paused."""
    assignment = getattr(consumer, "assignment", None)
    if consumer is None or assignment is None or not hasattr(consumer, "pause"):
        return []
    try:
        parts = list(assignment())
        consumer.pause(*parts)
        return parts
    except Exception:  # not assigned any more (rebalance): nothing to pause
        return []


def _resume(consumer: Any, parts: list[Any]) -> None:
    if consumer is None or not parts:
        return
    for tp in parts:
        with contextlib.suppress(Exception):  # a partition revoked meanwhile
            consumer.resume(tp)


def _seek(consumer: Any, tp: TopicPartition, offset: int) -> None:
    """Fetch ``tp`` from ``offset`` again (what was not finished is redelivered)."""
    with contextlib.suppress(Exception):  # revoked meanwhile: the next owner starts there
        consumer.seek(tp, offset)


def _assigned(consumer: Any, tp: TopicPartition) -> bool:
    assignment = getattr(consumer, "assignment", None)
    if assignment is None:
        return True
    try:
        return tp in assignment()
    except Exception:
        return True


@dataclass
class _RecordMessage:
    """A record as :func:`dead_letter` takes it (the shape of a FastStream message)."""

    raw_message: Any
    headers: dict[str, str]


@dataclass
class _Item:
    """One record of a batch and what decoding it gave."""

    record: Any
    headers: dict[str, str]
    route: Route | None = None
    delivery: Delivery[Any] | None = None
    undecodable: Exception | None = None
    span: Any = None
    failed_before: bool = False

    @property
    def offset(self) -> int:
        return int(self.record.offset)

    @property
    def event_id(self) -> str | None:
        return self.delivery.envelope.id if self.delivery is not None else None


@dataclass
class _Chunk:
    """What running a run of a partition's records gave: how many leading records are done
    and, if one failed, the error of the next one (``items[done]``)."""

    done: int
    failure: Exception | None = None
    stopped: bool = False  # the service is stopping: leave the rest for redelivery


@dataclass
class _Waiting:
    """A partition's wait for a dependency, as long as it lasts."""

    tries: int = 0
    dependency: str | None = None
    holding: bool = False


async def run_handler(route: Route, delivery: Delivery[Any]
                      ) -> Change[Any] | Deferred[Any] | None:
    """One delivery's handler: its effect done, or the change or effect to apply."""
    return await route.handler(delivery)


class _SubscriptionConsumer:
    """The reliable consumption of one subscription (see the module doc)."""

    def __init__(self, broker: KafkaBroker, spec: SubscriptionSpec, *,
                 redis: aioredis.Redis, namespace: str, committer: Committer,
                 health: DependencyHealth | None) -> None:
        self.broker = broker
        self.spec = spec
        self.retry = spec.retry
        self.group = spec.group
        self.attempts = AttemptCounter(redis, namespace, spec.group)
        self.committer = committer
        self.health = health
        self._pausers: dict[int, _Pauser] = {}

    def stopping(self) -> bool:
        return self.health is not None and self.health.stopping

    # -- a poll's records ------------------------------------------------------------------

    async def consume_batch(self, msg: KafkaMessage) -> None:
        records = list(msg.raw_message)
        headers = list(getattr(msg, "batch_headers", None) or [])
        consumer = getattr(msg, "consumer", None)
        by_partition: dict[TopicPartition, list[_Item]] = {}
        for i, record in enumerate(records):
            item_headers = headers[i] if i < len(headers) else {
                k: v.decode() for k, v in (record.headers or ())}
            tp = TopicPartition(record.topic, record.partition or 0)
            by_partition.setdefault(tp, []).append(_Item(record, item_headers))
        if len(by_partition) == 1:
            [(tp, items)] = by_partition.items()
            await self._partition(consumer, tp, items)
            return
        await asyncio.gather(*(self._partition(consumer, tp, items)
                               for tp, items in by_partition.items()))

    def _decode(self, item: _Item) -> None:
        """Fill in the item's route and delivery, or why it cannot be decoded (no route and
        no error: a type this subscription does not take)."""
        record = item.record
        item.route = item.delivery = item.undecodable = None
        try:
            envelope = Envelope.from_headers(item.headers)
            route = self.spec.routes.get(envelope.type)
            if route is None:
                # Another type on a shared topic, or a newer version this consumer does
                # not know: not ours to handle, and not an error.
                return
            if not record.key:
                raise MissingKey("the record has no key (every event is keyed by its "
                                 "episode id)")
            key = record.key.decode()
            body = parse_body(envelope.type, record.value or b"")
        except (EnvelopeError, UnknownEventType, ValidationError, ValueError) as exc:
            item.undecodable = exc
            return
        item.route = route
        item.delivery = Delivery(envelope=envelope, body=body, key=key, topic=record.topic,
                                 partition=record.partition or 0, offset=record.offset)
        item.span = record_span(topic=record.topic, partition=record.partition or 0,
                                offset=record.offset, timestamp=record.timestamp or 0,
                                group=self.group, headers=item.headers)

    # -- one partition ---------------------------------------------------------------------

    async def _partition(self, consumer: Any, tp: TopicPartition, items: list[_Item]) -> None:
        for item in items:
            self._decode(item)
        pauser = self._pausers.setdefault(id(consumer), _Pauser())
        waiting = _Waiting()
        pos = 0
        one_by_one = False
        try:
            while pos < len(items):
                if not _assigned(consumer, tp):
                    return  # revoked (a rebalance): its next owner takes it from the commit
                chunk = items[pos:pos + 1] if one_by_one else items[pos:]
                try:
                    result = await self._run(chunk)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the run as a whole failed: no record to blame
                    if blame(exc, self.health) is None and len(chunk) > 1:
                        log.warning("batch_failed_replaying_one_by_one", group=self.group,
                                    topic=tp.topic, partition=tp.partition,
                                    records=len(chunk), error=describe(exc, 200))
                        one_by_one = True
                        continue
                    result = _Chunk(done=0, failure=exc)
                if result.done:
                    await self._finished(consumer, tp, chunk[:result.done], waiting, pauser)
                    pos += result.done
                if result.stopped:
                    _seek(consumer, tp, items[pos].offset)
                    return
                if result.failure is None:
                    continue
                verdict = await self._failed(consumer, items[pos], result.failure, waiting,
                                             pauser)
                if verdict == "skip":  # dead-lettered: the partition moves on
                    await self._finished(consumer, tp, [items[pos]], waiting, pauser)
                    pos += 1
                    one_by_one = False
                elif verdict == "stop":
                    _seek(consumer, tp, items[pos].offset)  # redelivered after the restart
                    return
        finally:
            if waiting.holding:
                pauser.release(consumer)
            for item in items:
                if item.span is not None:
                    item.span.end()

    async def _finished(self, consumer: Any, tp: TopicPartition, done: list[_Item],
                        waiting: _Waiting, pauser: _Pauser) -> None:
        if waiting.tries:
            log.info("dependency_back", event_id=done[0].event_id, tries=waiting.tries)
            if self.health is not None and waiting.dependency is not None:
                self.health.report_up(waiting.dependency)
            waiting.tries = 0
            waiting.dependency = None
        if waiting.holding:
            pauser.release(consumer)
            waiting.holding = False
        await self.committer.done(consumer, tp, done[-1].offset + 1, len(done))
        for item in done:
            if item.failed_before:
                await self.attempts.succeeded(item.record.topic, tp.partition, item.offset)

    async def _failed(self, consumer: Any, item: _Item, exc: Exception, waiting: _Waiting,
                      pauser: _Pauser) -> str:
        """Decide about a failed record: "skip" (dead-lettered), "retry" or "stop"."""
        record = item.record
        if isinstance(exc, PermanentError):
            if await self._dead_letter(item, kind="rejected", cause=describe(exc),
                                       attempts=1):
                return "skip"
            return "stop"
        dep = blame(exc, self.health)
        if dep is not None:
            # A dependency is away: wait it out on this same record, not counted.
            RETRIES.labels(service_name(), self.group, "transient").inc()
            waiting.tries += 1
            waiting.dependency = dep
            if self.health is not None and transient_dependency(exc) is not None:
                self.health.report_down(dep, describe(exc, 200))
            if not waiting.holding:
                pauser.hold(consumer)
                waiting.holding = True
            delay = transient_delay(waiting.tries, self.retry)
            if waiting.tries == 1 or waiting.tries % 20 == 0:
                log.warning("dependency_unavailable_waiting", dependency=dep,
                            error=describe(exc, 200), event_id=item.event_id,
                            tries=waiting.tries, delay_s=delay)
            if self.stopping():
                return "stop"
            if self.health is not None:
                with self.health.waiting_on(dep):
                    await asyncio.sleep(delay)
            else:
                await asyncio.sleep(delay)
            return "retry"
        item.failed_before = True
        count = await self.attempts.fail(record.topic, record.partition or 0, item.offset)
        if count >= self.retry.max_attempts:
            if await self._dead_letter(item, kind="handler_failed", cause=describe(exc),
                                       attempts=count):
                await self.attempts.clear(record.topic, record.partition or 0, item.offset)
                item.failed_before = False
                return "skip"
            return "stop"
        delay = min(self.retry.backoff_ms * (2 ** (count - 1)),
                    self.retry.max_backoff_ms) / 1000
        RETRIES.labels(service_name(), self.group, "handler_failed").inc()
        log.warning("handler_failed_will_retry", error=describe(exc, 200),
                    event_id=item.event_id, attempt=count, delay_s=delay)
        await asyncio.sleep(delay)
        return "retry"

    async def _dead_letter(self, item: _Item, *, kind: str, cause: str, attempts: int) -> bool:
        async def send() -> None:
            await dead_letter(self.broker, self.spec.dlq_topic,
                              _RecordMessage(item.record, item.headers), group=self.group,
                              kind=kind, cause=cause, attempts=attempts)

        return await until_done("dead_letter", send, retry=self.retry, health=self.health)

    # -- a run of records: handlers, changes, publish ---------------------------------------

    async def _run(self, items: Sequence[_Item]) -> _Chunk:
        """Handle ``items`` (one partition's, in order) up to the first that fails."""
        started = time.perf_counter()
        cut = len(items)
        failure: Exception | None = None
        changes: list[tuple[int, Change[Any]]] = []
        deferred: list[tuple[int, Deferred[Any]]] = []
        for pos, item in enumerate(items):
            if item.route is None or item.delivery is None:
                continue  # not ours, or undecodable (dead-lettered below, once it is due)
            try:
                with within(item.span):
                    result = await run_handler(item.route, item.delivery)
            except Exception as exc:
                cut, failure = pos, exc
                break
            if isinstance(result, Deferred):
                deferred.append((pos, result))
            elif result is not None:
                changes.append((pos, result))

        outcomes: list[tuple[list[int], BatchOutcome[Any]]] = []
        for store, store_changes in _by_store(changes):
            outcome = await store.apply_many([c for _, c in store_changes])
            positions = [pos for pos, _ in store_changes]
            for index, error in outcome.failures.items():
                if positions[index] < cut:
                    cut, failure = positions[index], error
            outcomes.append((positions, outcome))
        if outcomes:
            spans = {id(event): items[positions[origin]].span
                     for positions, outcome in outcomes for key in outcome.keys
                     for event, origin in zip(key.outputs, key.origins, strict=True)}

            async def publish(events: list[OutboundEvent]) -> None:
                await kafka_broker.publish_all(self.broker, events,
                                               [spans.get(id(e)) for e in events])

            await publish_outcomes([outcome for _, outcome in outcomes], publish)
        # The deferred effects of the records before the cut, each sink's in one call.
        for sink, sink_items in by_sink([effect for pos, effect in deferred if pos < cut]):
            await sink.apply_all(sink_items)

        for pos, item in enumerate(items[:cut]):
            if item.undecodable is not None and not await self._dead_letter(
                    item, kind="undecodable", cause=describe(item.undecodable), attempts=1):
                return _Chunk(done=pos, stopped=True)
        handled = [item for item in items[:cut] if item.delivery is not None]
        if handled:
            # One record's share of the run: the histogram's sum stays the time spent.
            share = (time.perf_counter() - started) / len(handled)
            for item in handled:
                HANDLER_SECONDS.labels(service_name(), self.group, item.record.topic,
                                       "ok").observe(share)
        return _Chunk(done=cut, failure=failure)


def _by_store(changes: list[tuple[int, Change[Any]]]
              ) -> list[tuple[StateStore[Any], list[tuple[int, Change[Any]]]]]:
    return by_identity((change.store, (pos, change)) for pos, change in changes)


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
    batch_max_records: int = DEFAULT_BATCH_MAX_RECORDS,
) -> SubscriptionSpec:
    """Register ``handlers`` on ``topic`` with commit-after-effect, retry cap and DLQ."""
    spec = SubscriptionSpec.of(topic=topic, group=group_id, dlq_topic=dlq_topic,
                               handlers=handlers, retry=retry, event_types=event_types)
    consume(broker, spec, redis=redis, namespace=namespace, committer=committer,
            health=health, session_timeout_ms=session_timeout_ms,
            batch_max_records=batch_max_records)
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
    batch_max_records: int = DEFAULT_BATCH_MAX_RECORDS,
) -> Any:
    """Register the subscriber of ``spec`` on ``broker`` (it runs with the broker)."""
    engine = _SubscriptionConsumer(broker, spec, redis=redis, namespace=namespace,
                                   committer=committer or Committer(every=1, interval_s=0.0),
                                   health=health)
    subscriber = broker.subscriber(
        spec.topic,
        group_id=spec.group,
        ack_policy=AckPolicy.MANUAL,
        decoder=message_decoder,
        auto_offset_reset="earliest",
        batch=True,
        max_records=batch_max_records,
        batch_timeout_ms=POLL_TIMEOUT_MS,
        max_poll_records=batch_max_records,
        session_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=min(1000, max(100, session_timeout_ms // 3)),
    )
    if type(subscriber) is not BatchSubscriber:  # pragma: no cover - FastStream changed
        raise RuntimeError(f"expected FastStream's BatchSubscriber, got {type(subscriber)}")
    subscriber.__class__ = _NoLingerBatchSubscriber

    # Unannotated on purpose (see message_decoder): the decoder already gives the message.
    async def consume_batch(msg: Any) -> None:
        await engine.consume_batch(msg)

    return subscriber(consume_batch)
