"""Writing a record to its dead-letter topic: the original value, key and headers, plus
``dlq_*`` headers naming the kind, the cause (never quoting a submitted value), the group,
where the record came from, the attempts and when (docs/events.md, "Dead letters")."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from faststream.kafka import KafkaBroker

from carepath_runtime.error_text import scrub
from carepath_runtime.log import get_logger
from carepath_runtime.observability.metrics import DEAD_LETTERS, service_name

log = get_logger("carepath_runtime.consumer")


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
