"""The referral: one FHIR-style Task per recommended step, for one team.

A referral is immutable; every change yields a new one with one more audit entry in ``history``
(``revision`` is the number of entries, so the creation is revision 1). Its fields are the
public contract's (:class:`carepath_contracts.views.ReferralFields`); the view of it that the
API serves and the plan publishes is :func:`referral_view`.
"""

from __future__ import annotations

from datetime import datetime
from uuid import uuid5

from pydantic import ConfigDict

from carepath_contracts.views import ReferralFields, ReferralOutcome, ReferralView, RoutingChange
from carepath_referrals.domain.actors import SYSTEM_ACTOR, Actor
from carepath_referrals.domain.audit import (
    CAREPATH_REFERRALS_NAMESPACE,
    CREATE,
    AuditEntry,
    audit_id_for,
)
from carepath_referrals.domain.codes import TERMINAL_STATUSES, BusinessStatus, TaskStatus
from carepath_referrals.domain.routing import RoutingDecision, require_aware

__all__ = [
    "Referral",
    "ReferralOutcome",
    "RoutingChange",
    "new_referral",
    "outcome_of",
    "referral_id_for",
    "referral_view",
]


def referral_id_for(recommendation_id: str) -> str:
    """The referral id of a recommendation: the same recommendation always gets the same id."""
    if not recommendation_id:
        raise ValueError("recommendation_id must not be empty")
    return str(uuid5(CAREPATH_REFERRALS_NAMESPACE, f"referral:{recommendation_id}"))


class Referral(ReferralFields):
    """A referral with its audit trail (one entry per change, the creation included)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    history: tuple[AuditEntry, ...] = ()

    @property
    def revision(self) -> int:
        """How many changes (creation included) the referral has seen."""
        return len(self.history)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def is_open(self) -> bool:
        """Still needs someone: not completed or cancelled (a declined one awaits rerouting)."""
        return not self.is_terminal


def new_referral(
    *,
    episode_id: str,
    recommendation_id: str,
    decision: RoutingDecision,
    now: datetime,
    rationale: str | None = None,
    pathway_version: str | None = None,
    actor: Actor = SYSTEM_ACTOR,
) -> Referral:
    """A freshly requested referral for a routed recommendation, with its creation audit entry."""
    require_aware(now)
    referral_id = referral_id_for(recommendation_id)
    created = AuditEntry(
        audit_id=audit_id_for(referral_id, 1),
        referral_id=referral_id,
        episode_id=episode_id,
        revision=1,
        action=CREATE,
        actor_subject=actor.subject,
        actor_team=actor.team.value,
        actor_role=actor.role,
        at=now,
        reason=rationale,
        to_status=TaskStatus.REQUESTED,
        to_business_status=BusinessStatus.AWAITING_TRIAGE,
        details={
            "recommendation_id": recommendation_id,
            "step": decision.step,
            "team": decision.team.value,
            "queue": decision.queue,
            "priority": decision.priority.value,
            "due_at": decision.due_at.isoformat(),
            "fallback_route": decision.fallback,
        },
    )
    return Referral(
        referral_id=referral_id,
        episode_id=episode_id,
        recommendation_id=recommendation_id,
        step=decision.step,
        team=decision.team,
        queue=decision.queue,
        priority=decision.priority,
        status=TaskStatus.REQUESTED,
        business_status=BusinessStatus.AWAITING_TRIAGE,
        due_at=decision.due_at,
        created_at=now,
        updated_at=now,
        rationale=rationale,
        pathway_version=pathway_version,
        history=(created,),
    )


def outcome_of(referral: Referral) -> ReferralOutcome:
    """The outcome of a completed referral (``ValueError`` if it is not completed)."""
    if referral.status is not TaskStatus.COMPLETED or referral.completed_at is None:
        raise ValueError(
            f"referral {referral.referral_id} is {referral.status.value}, not completed"
        )
    completed_by = next(
        (e.actor_subject for e in reversed(referral.history) if e.action == "complete"), None
    )
    return ReferralOutcome(
        referral_id=referral.referral_id,
        recommendation_id=referral.recommendation_id,
        episode_id=referral.episode_id,
        step=referral.step,
        team=referral.team,
        completed_at=referral.completed_at,
        completed_by=completed_by,
        result=referral.outcome,
    )


def referral_view(referral: Referral) -> ReferralView:
    """The referral as the API serves it and the plan lists it: no audit trail, its revision.

    Built from the referral's own (already valid) values, without validating them again.
    """
    values = {name: getattr(referral, name) for name in ReferralFields.model_fields}
    return ReferralView.model_construct(**values, revision=referral.revision)
