"""Audit entries: who did what to a referral, when and why (the body of ``audit.recorded``)."""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from carepath_contracts.referral_status import BusinessStatus, TaskStatus
from carepath_contracts.steps import Team

__all__ = ["AuditEntry"]


class AuditEntry(BaseModel):
    """One change to one referral.

    ``audit_id`` is derived from the referral id and the revision the change produced, so the
    same change always has the same id and a redelivered audit event can be deduplicated.
    ``from_status`` is ``None`` for the creation entry.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    audit_id: str
    referral_id: str
    episode_id: str
    revision: int
    action: str  # an action kind of the referrals domain, or "create"
    actor_subject: str
    actor_team: Team
    actor_role: str
    at: AwareDatetime
    reason: str | None = None
    from_status: TaskStatus | None = None
    to_status: TaskStatus
    from_business_status: BusinessStatus | None = None
    to_business_status: BusinessStatus
    details: dict[str, Any] = Field(default_factory=dict)
