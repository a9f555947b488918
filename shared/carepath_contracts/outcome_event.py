"""The ``outcome.reported`` event, built in one place for both of its producers (pure).

Intake publishes it for an outcome reported over HTTP, the referrals service for a referral
completed with an outcome; both take the topic, key, envelope and body from
:func:`outcome_event` and only frame and publish them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from carepath_contracts.envelope import Causation, Envelope, derive_id
from carepath_contracts.events import OUTCOME_REPORTED, OutcomeReported
from carepath_contracts.outcome import OutcomeReport
from carepath_contracts.topics import Topics

__all__ = ["OutcomeEvent", "outcome_event"]


@dataclass(frozen=True)
class OutcomeEvent:
    """Where and what to publish: the episodes topic, keyed by the episode id."""

    topic: str
    key: str
    envelope: Envelope
    body: OutcomeReported


def outcome_event(
    topics: Topics,
    report: OutcomeReport,
    *,
    source: str,
    identity: Sequence[str],
    at: datetime,
    referral_id: str | None = None,
    causation: Causation | None = None,
) -> OutcomeEvent:
    """The outcome event of ``report``, reported at ``at``.

    ``identity`` are the inputs that make this report what it is (intake: the episode and the
    request's idempotency key; referrals: the action's input id): the event id derives from
    them, so a retried request publishes the same id. ``referral_id`` names the referral the
    outcome completes, if any; ``causation`` what caused it (an event's envelope, or an API
    call's :class:`Cause`).
    """
    episode_id = report.episode_id
    envelope = Envelope.new(
        event_type=OUTCOME_REPORTED,
        source=source,
        event_id=derive_id(OUTCOME_REPORTED, *identity),
        causation=causation,
        time=at,
    )
    body = OutcomeReported(
        episode_id=episode_id, report=report, reported_at=at, referral_id=referral_id
    )
    return OutcomeEvent(topic=topics.episodes, key=episode_id, envelope=envelope, body=body)
