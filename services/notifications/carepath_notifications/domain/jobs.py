"""A delivery job: one notice for one subscription, and its record of attempts (pure data).

The job id is :func:`~.dedup.delivery_key` of the event and subscription, so enqueuing the
same event for the same subscriber twice (a redelivered Kafka record) finds the job already
there and adds nothing: once per subscriber. The record stays after delivery (with a TTL) as
the dedup ledger; a dead job stays until an operator redrives it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from carepath_notifications.domain.dedup import delivery_key, webhook_message_id

Status = Literal["pending", "inflight", "delivered", "dead"]
Channel = Literal["webhook", "email"]


@dataclass(frozen=True)
class DeliveryJob:
    event_id: str
    event_type: str
    subscription_id: str
    channel: Channel
    endpoint: str
    body: bytes
    created_ms: int
    status: Status = "pending"
    attempts: int = 0
    reclaimed: int = 0
    redriven: int = 0
    next_ms: int = 0
    owner: str = ""
    last_status: int | None = None
    last_error: str = ""
    dead_reason: str = ""
    dead_ms: int | None = None
    delivered_ms: int | None = None
    #: W3C trace context of the event that enqueued the job (empty when tracing is off), so
    #: that the delivery's span and the webhook request continue the episode's trace.
    traceparent: str = ""

    @property
    def id(self) -> str:
        return delivery_key(self.event_id, self.subscription_id)

    @property
    def message_id(self) -> str:
        """The ``webhook-id``: the same on every attempt and redrive of this job."""
        return webhook_message_id(self.event_id, self.subscription_id)

    @classmethod
    def new(
        cls,
        *,
        event_id: str,
        event_type: str,
        subscription_id: str,
        channel: Channel,
        endpoint: str,
        body: bytes,
        now_ms: int,
        traceparent: str = "",
    ) -> DeliveryJob:
        return cls(
            event_id=event_id, event_type=event_type, subscription_id=subscription_id,
            channel=channel, endpoint=endpoint, body=body, created_ms=now_ms, next_ms=now_ms,
            traceparent=traceparent,
        )

    def to_fields(self) -> dict[str, str | bytes]:
        """The Redis hash of the job (every value a string or bytes)."""
        out: dict[str, str | bytes] = {
            "id": self.id,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "subscription_id": self.subscription_id,
            "channel": self.channel,
            "ep": self.endpoint,
            "body": self.body,
            "created_ms": str(self.created_ms),
            "status": self.status,
            "attempts": str(self.attempts),
            "reclaimed": str(self.reclaimed),
            "redriven": str(self.redriven),
            "next_ms": str(self.next_ms),
            "owner": self.owner,
            "last_status": "" if self.last_status is None else str(self.last_status),
            "last_error": self.last_error,
            "dead_reason": self.dead_reason,
            "dead_ms": "" if self.dead_ms is None else str(self.dead_ms),
            "delivered_ms": "" if self.delivered_ms is None else str(self.delivered_ms),
            "traceparent": self.traceparent,
        }
        return out

    @classmethod
    def from_fields(cls, raw: Mapping[Any, bytes | str]) -> DeliveryJob:
        f = {_s(k): v for k, v in raw.items()}

        def text(name: str, default: str = "") -> str:
            value = f.get(name)
            return default if value is None else _s(value)

        def opt_int(name: str) -> int | None:
            value = text(name)
            return int(value) if value else None

        body = f.get("body", b"")
        channel = text("channel")
        status = text("status", "pending")
        if channel not in ("webhook", "email"):
            raise ValueError(f"job has unknown channel {channel!r}")
        if status not in ("pending", "inflight", "delivered", "dead"):
            raise ValueError(f"job has unknown status {status!r}")
        return cls(
            event_id=text("event_id"),
            event_type=text("event_type"),
            subscription_id=text("subscription_id"),
            channel=channel,  # type: ignore[arg-type]
            endpoint=text("ep"),
            body=body if isinstance(body, bytes) else body.encode(),
            created_ms=int(text("created_ms", "0")),
            status=status,  # type: ignore[arg-type]
            attempts=int(text("attempts", "0")),
            reclaimed=int(text("reclaimed", "0")),
            redriven=int(text("redriven", "0")),
            next_ms=int(text("next_ms", "0")),
            owner=text("owner"),
            last_status=opt_int("last_status"),
            last_error=text("last_error"),
            dead_reason=text("dead_reason"),
            dead_ms=opt_int("dead_ms"),
            delivered_ms=opt_int("delivered_ms"),
            traceparent=text("traceparent"),
        )


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
