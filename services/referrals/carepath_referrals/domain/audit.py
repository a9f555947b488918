"""Audit entries: who did what to a referral, when and why (published as ``audit.recorded``)."""

from __future__ import annotations

from typing import Any
from uuid import NAMESPACE_URL, uuid5

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from carepath_referrals.domain.codes import BusinessStatus, TaskStatus

#: uuid5 namespace of every id the referral domain derives (referrals, audits, escalations).
CAREPATH_REFERRALS_NAMESPACE = uuid5(NAMESPACE_URL, "https://carepath.invalid/referrals")

CREATE = "create"


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
    action: str  # an ActionKind value, or "create"
    actor_subject: str
    actor_team: str
    actor_role: str
    at: AwareDatetime
    reason: str | None = None
    from_status: TaskStatus | None = None
    to_status: TaskStatus
    from_business_status: BusinessStatus | None = None
    to_business_status: BusinessStatus
    details: dict[str, Any] = Field(default_factory=dict)


def audit_id_for(referral_id: str, revision: int) -> str:
    return str(uuid5(CAREPATH_REFERRALS_NAMESPACE, f"audit:{referral_id}:{revision}"))
