"""The referral and the care plan as the referrals service serves and publishes them (one model
each, the FHIR-out input).

:class:`CarePlanView` is the body of ``carepath.careplan.updated.v1`` and of
``GET /episodes/{id}/careplan``; :class:`ReferralView` is one referral as the coordinator API
shows it (``GET /referrals/{id}``) and as the plan lists it. The referrals domain's own models
are these shapes extended, never redefined: ``Referral`` extends :class:`ReferralFields` with its
audit trail (the view carries its ``revision`` instead), ``CarePlan`` extends
:class:`CarePlanFields` with the digests of the events it applied; the nested models
(:class:`RoutingChange`, :class:`Withdrawal`, :class:`ReferralOutcome`, the recommendation) are
shared as they are.

A view is lenient as a reader: unknown fields are ignored (the producer may add optional
fields), and what a team member's redacted view leaves out is optional.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, SerializeAsAny

from carepath_contracts.pathway_result import Priority, RecommendationView
from carepath_contracts.referral_status import BusinessStatus, TaskStatus
from carepath_contracts.steps import Step, Team

__all__ = [
    "CarePlanFields",
    "CarePlanView",
    "RecommendationView",
    "ReferralFields",
    "ReferralOutcome",
    "ReferralView",
    "RoutingChange",
    "Withdrawal",
]

_VIEW = ConfigDict(extra="ignore", frozen=True)


class RoutingChange(BaseModel):
    """A move of a referral between teams: a decline (to the coordinator) or a reroute."""

    model_config = _VIEW

    at: AwareDatetime
    action: str  # "decline" or "reroute"
    from_team: Team
    to_team: Team
    queue: str
    by: str
    reason: str | None = None


class ReferralFields(BaseModel):
    """The fields of a referral (a FHIR-style Task for one team; status from the FHIR
    task-status codes), shared by the view and the referrals domain's ``Referral``."""

    model_config = _VIEW

    referral_id: str
    episode_id: str
    recommendation_id: str
    step: Step
    team: Team
    queue: str
    priority: Priority
    status: TaskStatus
    business_status: BusinessStatus
    due_at: AwareDatetime
    created_at: AwareDatetime
    updated_at: AwareDatetime
    rationale: str | None = None
    pathway_version: str | None = None
    claimed_by: str | None = None
    scheduled_for: AwareDatetime | None = None
    started_at: AwareDatetime | None = None
    completed_at: AwareDatetime | None = None
    escalated_at: AwareDatetime | None = None
    decline_reason: str | None = None
    cancel_reason: str | None = None
    outcome: dict[str, Any] | None = None
    routing_history: tuple[RoutingChange, ...] = ()


class ReferralView(ReferralFields):
    """One referral as it is served and listed: its fields and how many changes it has seen."""

    revision: int = Field(ge=0, description="how many changes, the creation included")


class Withdrawal(BaseModel):
    """A recommendation the pathway withdrew (sticky: its id is never recommended again)."""

    model_config = _VIEW

    recommendation_id: str
    step: Step | None = None
    reason: str | None = None
    withdrawn_at: AwareDatetime


class ReferralOutcome(BaseModel):
    """What a completed referral produced."""

    model_config = _VIEW

    referral_id: str
    recommendation_id: str
    episode_id: str
    step: Step
    team: Team
    completed_at: AwareDatetime
    completed_by: str | None = None
    result: dict[str, Any] | None = None


ReferralT = TypeVar("ReferralT", bound=ReferralFields)


class CarePlanFields(BaseModel, Generic[ReferralT]):
    """The fields of an episode's care plan: active recommendations, withdrawals, referrals,
    outcomes. The view lists its referrals as :class:`ReferralView`, the referrals domain's
    ``CarePlan`` as its ``Referral`` (with the audit trail).

    Recommendations are kept as the pathway gave them
    (:class:`~carepath_contracts.pathway_result.Recommendation`, typed here as the
    :class:`RecommendationView` it extends, since a redacted view may show only part of one;
    written with every field the instance has)."""

    model_config = _VIEW

    episode_id: str
    version: int = Field(default=0, ge=0)
    pathway_version: str | None = None
    profile: str | None = None
    urgent: bool = False
    evaluation_seq: int = 0
    recommendations: dict[str, SerializeAsAny[RecommendationView]] = Field(default_factory=dict)
    withdrawn: dict[str, Withdrawal] = Field(default_factory=dict)
    referrals: dict[str, ReferralT] = Field(default_factory=dict)
    outcomes: tuple[ReferralOutcome, ...] = ()
    created_at: AwareDatetime
    updated_at: AwareDatetime


class CarePlanView(CarePlanFields[ReferralView]):
    """An episode's care plan: active recommendations, withdrawals, referrals, outcomes."""
