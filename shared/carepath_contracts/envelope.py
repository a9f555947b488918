"""The event envelope: CloudEvents 1.0 attributes carried as Kafka headers (binary mode).

The Kafka value is the event body (JSON); the attributes travel as headers with the ``ce_``
prefix, as the CloudEvents Kafka protocol binding specifies. Correlation and causation ids
are CloudEvents extension attributes (lower-case alphanumeric names).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

SPECVERSION = "1.0"
CONTENT_TYPE = "application/json"
ID_NAMESPACE = uuid.UUID("6f1e2b0a-4c55-5a53-9d1c-ca2e0a7b7e11")


class EnvelopeError(ValueError):
    """Headers that do not form a valid CloudEvent."""


def derive_id(*parts: str) -> str:
    """A deterministic event id from the inputs that caused the event.

    Re-processing the same input yields the same id, so every consumer can de-duplicate.
    """
    return str(uuid.uuid5(ID_NAMESPACE, "\x1f".join(parts)))


class Causation(Protocol):
    """What caused an event: an input's id, and the correlation id of the chain it belongs to.

    An :class:`Envelope` is one (the event that was handled); a :class:`Cause` is one for an
    input that is not an event (an API call, named by its idempotent input id)."""

    @property
    def id(self) -> str: ...

    @property
    def correlationid(self) -> str: ...


class Cause(BaseModel):
    """The cause of events published for an input that is not itself an event (an API call):
    its id becomes their ``causationid`` and, unless given, their ``correlationid``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    correlationid: str = ""

    def model_post_init(self, __context: Any) -> None:
        if not self.correlationid:
            object.__setattr__(self, "correlationid", self.id)


class Envelope(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    type: str = Field(pattern=r"^carepath\.[a-z_.]+\.v[0-9]+$")
    specversion: str = SPECVERSION
    time: datetime
    subject: str | None = None
    correlationid: str = Field(min_length=1)
    causationid: str | None = None
    datacontenttype: str = CONTENT_TYPE

    @classmethod
    def new(
        cls,
        *,
        event_type: str,
        source: str,
        event_id: str | None = None,
        correlation_id: str | None = None,
        causation: Causation | None = None,
        subject: str | None = None,
        time: datetime | None = None,
    ) -> Envelope:
        eid = event_id or str(uuid.uuid4())
        if correlation_id is None:
            correlation_id = causation.correlationid if causation else eid
        return cls(
            id=eid,
            source=source,
            type=event_type,
            time=time or datetime.now(UTC),
            subject=subject,
            correlationid=correlation_id,
            causationid=causation.id if causation else None,
        )

    def to_headers(self) -> dict[str, str]:
        headers = {
            "ce_id": self.id,
            "ce_source": self.source,
            "ce_type": self.type,
            "ce_specversion": self.specversion,
            "ce_time": self.time.isoformat(),
            "ce_correlationid": self.correlationid,
            "content-type": self.datacontenttype,
        }
        if self.subject:
            headers["ce_subject"] = self.subject
        if self.causationid:
            headers["ce_causationid"] = self.causationid
        return headers

    @classmethod
    def from_headers(cls, headers: Mapping[str, Any]) -> Envelope:
        def text(name: str) -> str | None:
            value = headers.get(name)
            if value is None:
                return None
            return value.decode() if isinstance(value, bytes) else str(value)

        missing = [h for h in ("ce_id", "ce_source", "ce_type", "ce_time") if not text(h)]
        if missing:
            raise EnvelopeError(f"missing CloudEvents header(s): {', '.join(missing)}")
        spec = text("ce_specversion")
        if spec != SPECVERSION:
            raise EnvelopeError(f"unsupported ce_specversion {spec!r}, expected {SPECVERSION}")
        try:
            return cls(
                id=text("ce_id") or "",
                source=text("ce_source") or "",
                type=text("ce_type") or "",
                time=datetime.fromisoformat(text("ce_time") or ""),
                subject=text("ce_subject"),
                correlationid=text("ce_correlationid") or text("ce_id") or "",
                causationid=text("ce_causationid"),
            )
        except (ValidationError, ValueError) as exc:
            raise EnvelopeError(f"invalid CloudEvents header: {exc}") from exc
