"""Recovering an idempotent producer whose broker-side state was lost.

After a broker restart, aiokafka's idempotent producer can be left with sequence numbers the
broker no longer accepts (``OutOfOrderSequenceNumber``, ``UnknownProducerId``,
``InvalidProducerEpoch``). Unlike the Java client, aiokafka does not reset its producer id
then: every later send fails with the same error, forever (observed in the Kafka SIGTERM
fault experiment: intake answered every POST with that error until restarted).

:func:`reset_producer` replaces the broker's aiokafka producer with a fresh one (new producer
id, sequences from zero) built from the broker's own connection settings, then closes the old
one in the background. Callers treat the error as transient (:mod:`carepath_runtime.transient`)
and retry; the retry goes out on the new producer. Records the old producer still held are
re-sent by that retry with the same event ids, and consumers de-duplicate them.

This reaches into FastStream 0.7's producer holder (``broker.config.producer._producer``,
``broker._connection_kwargs``): there is no public API for it.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiokafka
from aiokafka import errors as kafka_errors

from carepath_runtime.log import get_logger

log = get_logger(__name__)

FATAL_PRODUCER_ERRORS: tuple[type[BaseException], ...] = (
    kafka_errors.OutOfOrderSequenceNumber,
    kafka_errors.UnknownProducerId,
    kafka_errors.InvalidProducerEpoch,
    kafka_errors.InvalidProducerIdMapping,
)

_locks: dict[int, asyncio.Lock] = {}
_tasks: set[asyncio.Task[None]] = set()


def _current(broker: Any) -> Any:
    holder = broker.config.producer
    state = getattr(holder, "_producer", None)
    return getattr(state, "producer", None)


async def _reset(broker: Any, failed: Any) -> None:
    from faststream.kafka.publisher.state import RealProducer

    lock = _locks.setdefault(id(broker), asyncio.Lock())
    async with lock:
        if _current(broker) is not failed:  # another caller already replaced it
            return
        kwargs = dict(getattr(broker, "_connection_kwargs", {}))
        fresh = aiokafka.AIOKafkaProducer(**kwargs)
        await fresh.start()
        broker.config.producer._producer = RealProducer(fresh)
        log.warning("kafka_producer_reset", reason="producer state rejected by the broker")
    with contextlib.suppress(Exception):
        async with asyncio.timeout(10):
            await failed.stop()


def schedule_reset(broker: Any) -> None:
    """Replace the broker's producer in the background (never inside a caller's deadline)."""
    failed = _current(broker)
    if failed is None:
        return
    task = asyncio.create_task(_reset(broker, failed))
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


def is_fatal_producer_error(exc: BaseException) -> bool:
    return isinstance(exc, FATAL_PRODUCER_ERRORS)
