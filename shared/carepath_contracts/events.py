"""Event types, their bodies and their topics: the public contract between services.

Each event type is versioned (``carepath.<thing>.<happened>.v1``). A new optional field is a
compatible change; a breaking change is a new ``.v2`` type published alongside the old one.

Every type's body has its model here (:data:`BODY_MODELS`), the referrals service's included:
the escalation (:class:`EscalationEvent`), the audit entry
(:class:`~carepath_contracts.audit.AuditEntry`) and the care plan
(:class:`~carepath_contracts.views.CarePlanView`). Steps, teams, priorities and statuses are
the closed vocabularies of :mod:`carepath_contracts.steps`,
:mod:`carepath_contracts.pathway_result` and :mod:`carepath_contracts.referral_status`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from carepath_contracts.audit import AuditEntry
from carepath_contracts.episode import Episode
from carepath_contracts.outcome import OutcomeReport
from carepath_contracts.pathway_result import PathwayResult, Priority
from carepath_contracts.referral_status import BusinessStatus, TaskStatus
from carepath_contracts.steps import Step, Team
from carepath_contracts.views import CarePlanView

EPISODE_SUBMITTED = "carepath.episode.submitted.v1"
OUTCOME_REPORTED = "carepath.outcome.reported.v1"
RECOMMENDATIONS_ISSUED = "carepath.pathway.recommendations.v1"
PATHWAY_STATUS = "carepath.pathway.status.v1"
REFERRAL_CREATED = "carepath.referral.created.v1"
REFERRAL_STATUS_CHANGED = "carepath.referral.status_changed.v1"
REFERRAL_ESCALATED = "carepath.referral.escalated.v1"
CARE_PLAN_UPDATED = "carepath.careplan.updated.v1"
AUDIT_RECORDED = "carepath.audit.recorded.v1"
NOTIFICATION_ATTEMPTED = "carepath.notification.attempted.v1"
NOTIFICATION_FAILED = "carepath.notification.failed.v1"
NOTIFICATION_REDRIVEN = "carepath.notification.redriven.v1"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EpisodeSubmitted(_Body):
    episode_id: str
    episode: Episode
    submitted_at: datetime


class OutcomeReported(_Body):
    episode_id: str
    report: OutcomeReport
    reported_at: datetime
    referral_id: str | None = None


class RecommendationsIssued(PathwayResult):
    """The pathway's answer (the contract's object) plus routing context."""

    model_config = ConfigDict(extra="forbid")

    episode_id: str
    evaluation_seq: int = Field(ge=1)
    trigger_event_id: str


class PathwayStatus(_Body):
    episode_id: str
    evaluation_seq: int
    pathway_version: str
    profile: str
    urgent: bool
    active_steps: list[Step]
    missing_fields: list[str]
    updated_at: datetime


class ReferralCreated(_Body):
    referral_id: str
    episode_id: str
    recommendation_id: str
    step: Step
    team: Team
    priority: Priority
    status: TaskStatus
    due_at: datetime | None = None
    created_at: datetime


class ReferralStatusChanged(_Body):
    referral_id: str
    episode_id: str
    step: Step
    team: Team
    status: TaskStatus
    business_status: BusinessStatus | None = None
    previous_status: TaskStatus | None = None
    reason: str | None = None
    changed_at: datetime


class EscalationEvent(BaseModel):
    """Body of ``carepath.referral.escalated.v1``: an overdue referral was escalated.

    ``escalation_id`` is stable per referral and due time, so a redelivered escalation can be
    deduplicated downstream; ``notify`` names the teams to tell (the referral's team and the
    care coordinator); ``audit`` is the escalation's audit entry.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    escalation_id: str
    referral_id: str
    episode_id: str
    recommendation_id: str
    step: Step
    team: Team
    queue: str
    priority: Priority
    status: TaskStatus
    previous_business_status: BusinessStatus
    due_at: AwareDatetime
    escalated_at: AwareDatetime
    overdue_seconds: int
    notify: tuple[Team, ...]
    audit: AuditEntry


class DeliveryAttempted(_Body):
    event_id: str
    subscription_id: str
    channel: Literal["webhook", "email"]
    attempt: int
    outcome: Literal["delivered", "retry", "failed"]
    status_code: int | None = None
    error: str | None = None
    # A machine-readable cause of a permanent failure: ``destination_refused`` when the
    # webhook destination was refused (SSRF guard) at connect time.
    cause: str | None = None
    at: datetime


class NotificationRedriven(_Body):
    """A dead-lettered notification put back on the delivery queue by an operator."""

    job_id: str
    event_id: str
    subscription_id: str
    channel: Literal["webhook", "email"]
    previous_attempts: int
    redrive: int = Field(ge=1)
    at: datetime


BODY_MODELS: dict[str, type[BaseModel]] = {
    EPISODE_SUBMITTED: EpisodeSubmitted,
    OUTCOME_REPORTED: OutcomeReported,
    RECOMMENDATIONS_ISSUED: RecommendationsIssued,
    PATHWAY_STATUS: PathwayStatus,
    REFERRAL_CREATED: ReferralCreated,
    REFERRAL_STATUS_CHANGED: ReferralStatusChanged,
    REFERRAL_ESCALATED: EscalationEvent,
    CARE_PLAN_UPDATED: CarePlanView,
    AUDIT_RECORDED: AuditEntry,
    NOTIFICATION_ATTEMPTED: DeliveryAttempted,
    NOTIFICATION_FAILED: DeliveryAttempted,
    NOTIFICATION_REDRIVEN: NotificationRedriven,
}


class UnknownEventType(ValueError):
    pass


def parse_body(event_type: str, raw: bytes) -> BaseModel:
    """Validate a body against its type's model (consuming side)."""
    model = BODY_MODELS.get(event_type)
    if model is None:
        raise UnknownEventType(f"unknown event type {event_type!r}")
    return model.model_validate_json(raw)


def dump_body(body: BaseModel | dict[str, Any]) -> bytes:
    if isinstance(body, BaseModel):
        return body.model_dump_json(exclude_none=False).encode()
    import orjson

    return orjson.dumps(body)
