"""The JSON views the referrals service serves and publishes, as models (the FHIR-out input).

``CarePlanView`` is the body of ``carepath.careplan.updated.v1`` and of
``GET /episodes/{id}/careplan``; ``ReferralView`` is one referral as the coordinator API
shows it (``GET /referrals/{id}``) and as the plan lists it. Both are plain JSON shapes, so
shared code (FHIR mapping, documentation) reads them without importing the referrals service.
Unknown fields are ignored: the producer may add optional fields.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

_VIEW = ConfigDict(extra="ignore", frozen=True)


class RoutingChangeView(BaseModel):
    model_config = _VIEW

    at: datetime
    action: str
    from_team: str
    to_team: str
    queue: str
    by: str
    reason: str | None = None


class ReferralView(BaseModel):
    """One referral: a FHIR-style Task for one team (status from the FHIR task-status codes)."""

    model_config = _VIEW

    referral_id: str
    episode_id: str
    recommendation_id: str
    step: str
    team: str
    queue: str
    priority: str
    status: str
    business_status: str
    due_at: datetime
    created_at: datetime
    updated_at: datetime
    rationale: str | None = None
    pathway_version: str | None = None
    claimed_by: str | None = None
    scheduled_for: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    escalated_at: datetime | None = None
    decline_reason: str | None = None
    cancel_reason: str | None = None
    outcome: dict[str, Any] | None = None
    routing_history: list[RoutingChangeView] = Field(default_factory=list)
    revision: int = Field(ge=0, description="how many changes, the creation included")


class RecommendationView(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    recommendation_id: str
    step: str
    team: str | None = None
    priority: str | None = None
    rationale: str | None = None


class WithdrawalView(BaseModel):
    model_config = _VIEW

    recommendation_id: str
    step: str | None = None
    reason: str | None = None
    withdrawn_at: datetime


class OutcomeView(BaseModel):
    model_config = _VIEW

    referral_id: str
    recommendation_id: str
    episode_id: str
    step: str
    team: str
    completed_at: datetime
    completed_by: str | None = None
    result: dict[str, Any] | None = None


class CarePlanView(BaseModel):
    """An episode's care plan: active recommendations, withdrawals, referrals, outcomes."""

    model_config = _VIEW

    episode_id: str
    version: int = Field(ge=0)
    pathway_version: str | None = None
    profile: str | None = None
    urgent: bool = False
    evaluation_seq: int = 0
    recommendations: dict[str, RecommendationView] = Field(default_factory=dict)
    withdrawn: dict[str, WithdrawalView] = Field(default_factory=dict)
    referrals: dict[str, ReferralView] = Field(default_factory=dict)
    outcomes: list[OutcomeView] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime
