"""The events an attempt, a dead letter or a redrive publishes on ``notifications.attempts``.

Ids derive from the job, its redrive count and the attempt number, so an event written twice
(a republished outbox entry) carries the same id. Keyed by job id: one job's events stay in
order.
"""

from __future__ import annotations

from datetime import datetime

from carepath_contracts.envelope import Envelope, derive_id
from carepath_contracts.events import (
    NOTIFICATION_ATTEMPTED,
    NOTIFICATION_FAILED,
    NOTIFICATION_REDRIVEN,
    DeliveryAttempted,
    NotificationRedriven,
)
from carepath_contracts.topics import Topics
from carepath_notifications.domain.attempts import Decision
from carepath_notifications.domain.jobs import DeliveryJob
from carepath_runtime.kafka_broker import OutboundEvent, build_event

SOURCE = "/carepath/notifications"


def attempt_events(
    topics: Topics,
    job: DeliveryJob,
    attempt: int,
    decision: Decision,
    status_code: int | None,
    error: str | None,
    at: datetime,
    cause: str | None = None,
) -> list[OutboundEvent]:
    """``notification.attempted`` for the attempt, plus ``notification.failed`` if it died."""
    body = DeliveryAttempted(
        event_id=job.event_id,
        subscription_id=job.subscription_id,
        channel=job.channel,
        attempt=attempt,
        outcome=decision.event_outcome,
        status_code=status_code,
        error=None if decision.kind == "delivered" else (error or decision.reason),
        cause=None if decision.kind == "delivered" else cause,
        at=at,
    )
    round_ = str(job.redriven)
    out = [
        build_event(
            topic=topics.notification_attempts, key=job.id,
            envelope=Envelope.new(
                event_type=NOTIFICATION_ATTEMPTED, source=SOURCE,
                event_id=derive_id(NOTIFICATION_ATTEMPTED, job.id, round_, str(attempt)),
                correlation_id=job.event_id, time=at,
            ),
            body=body,
        )
    ]
    if decision.kind == "dead":
        failed = body.model_copy(update={"error": decision.reason or error})
        out.append(
            build_event(
                topic=topics.notification_attempts, key=job.id,
                envelope=Envelope.new(
                    event_type=NOTIFICATION_FAILED, source=SOURCE,
                    event_id=derive_id(NOTIFICATION_FAILED, job.id, round_),
                    correlation_id=job.event_id, time=at,
                ),
                body=failed,
            )
        )
    return out


def redriven_event(topics: Topics, job: DeliveryJob, by: str, at: datetime) -> OutboundEvent:
    redrive = job.redriven + 1
    return build_event(
        topic=topics.notification_attempts, key=job.id,
        envelope=Envelope.new(
            event_type=NOTIFICATION_REDRIVEN, source=by,
            event_id=derive_id(NOTIFICATION_REDRIVEN, job.id, str(redrive)),
            correlation_id=job.event_id, time=at,
        ),
        body=NotificationRedriven(
            job_id=job.id, event_id=job.event_id, subscription_id=job.subscription_id,
            channel=job.channel, previous_attempts=job.attempts, redrive=redrive, at=at,
        ),
    )
