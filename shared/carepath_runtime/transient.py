"""Which failures are a dependency being away (wait it out) and which are the record's fault.

A transient failure says nothing about the record being handled: Redis refused the
connection, timed out, is still loading its AOF, is a read-only replica or a cluster that has
no master right now; Kafka has no leader, timed out or cannot reach the broker. Those are
retried until the dependency answers and never count toward a dead-letter cap. Anything else
is the record's (or the code's) fault and is counted.

:func:`transient_dependency` names the dependency (``"redis"`` or ``"kafka"``) or returns
``None``; it looks through ``__cause__`` / ``__context__`` chains and exception groups, since
our own wrappers (and FastStream's) re-raise library errors.
"""

from __future__ import annotations

import asyncio

from aiokafka import errors as kafka_errors
from redis import exceptions as redis_errors

REDIS = "redis"
KAFKA = "kafka"

REDIS_TRANSIENT: tuple[type[BaseException], ...] = (
    redis_errors.ConnectionError,  # includes BusyLoadingError (still loading the AOF)
    redis_errors.TimeoutError,
    redis_errors.BusyLoadingError,
    redis_errors.ReadOnlyError,  # a replica promoted / failover in progress
    redis_errors.MasterDownError,
    redis_errors.TryAgainError,
    redis_errors.ClusterDownError,
)

KAFKA_TRANSIENT: tuple[type[BaseException], ...] = (
    kafka_errors.KafkaConnectionError,
    kafka_errors.KafkaTimeoutError,
    kafka_errors.RequestTimedOutError,
    kafka_errors.NotLeaderForPartitionError,
    kafka_errors.LeaderNotAvailableError,
    kafka_errors.NotEnoughReplicasError,
    kafka_errors.NotEnoughReplicasAfterAppendError,
    kafka_errors.NodeNotReadyError,
    kafka_errors.NoBrokersAvailable,
    kafka_errors.KafkaStorageError,
    # The producer's idempotence state was lost broker-side: the producer is replaced
    # (carepath_runtime.producer_reset) and the send retried.
    kafka_errors.OutOfOrderSequenceNumber,
    kafka_errors.UnknownProducerId,
    kafka_errors.InvalidProducerEpoch,
    kafka_errors.InvalidProducerIdMapping,
)

# Error strings that redis-py raises as a plain ResponseError before it knows better.
_REDIS_TRANSIENT_REPLIES = ("LOADING", "READONLY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN")


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    stack = [exc]
    while stack and len(seen) < 32:
        cur = stack.pop()
        if any(cur is s for s in seen):
            continue
        seen.append(cur)
        if isinstance(cur, BaseExceptionGroup):
            stack.extend(cur.exceptions)
        for nxt in (cur.__cause__, cur.__context__):
            if nxt is not None:
                stack.append(nxt)
    return seen


def _one(exc: BaseException) -> str | None:
    if isinstance(exc, REDIS_TRANSIENT):
        return REDIS
    if isinstance(exc, redis_errors.ResponseError) and str(exc).startswith(
        _REDIS_TRANSIENT_REPLIES
    ):
        return REDIS
    if isinstance(exc, KAFKA_TRANSIENT):
        return KAFKA
    if isinstance(exc, kafka_errors.KafkaError) and getattr(exc, "retriable", False):
        return KAFKA
    return None


def transient_dependency(exc: BaseException) -> str | None:
    """The dependency whose absence caused ``exc`` (``"redis"``/``"kafka"``), else None."""
    for cur in _chain(exc):
        dep = _one(cur)
        if dep is not None:
            return dep
    return None


def is_transient(exc: BaseException) -> bool:
    """A failure to wait out, not to count: a dependency away or a bounded wait that ran out."""
    if transient_dependency(exc) is not None:
        return True
    return isinstance(exc, (TimeoutError, asyncio.TimeoutError, ConnectionError))
