"""Deadlines: which referrals are overdue, and escalating one.

A referral's ``due_at`` is the time by which it should have *started* (the patient seen or the
procedure begun): an open referral (not completed or cancelled, a declined one included) that has
not started is overdue once ``due_at < now``. It is escalated once; a reroute gives the new team a
fresh due time and allows a new escalation. The escalation is an ordinary transition (business
status ``overdue-escalated``, status unchanged) made by the system actor, so it is audited like
any other change; the returned :class:`~carepath_contracts.events.EscalationEvent` (the public
contract's model) is the body of the escalation event, from which the notification service
notifies the referral's team and the care coordinator.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from uuid import uuid5

from carepath_contracts.events import EscalationEvent
from carepath_referrals.domain.actors import SYSTEM_ACTOR, Actor
from carepath_referrals.domain.audit import CAREPATH_REFERRALS_NAMESPACE
from carepath_referrals.domain.codes import Team
from carepath_referrals.domain.lifecycle import Escalate, apply_action
from carepath_referrals.domain.referral import Referral
from carepath_referrals.domain.routing import require_aware

__all__ = ["EscalationEvent", "can_become_overdue", "escalate", "find_overdue", "is_overdue"]


def can_become_overdue(referral: Referral) -> bool:
    """Open, not started and not yet escalated: its due time still matters."""
    return referral.is_open and referral.started_at is None and referral.escalated_at is None


def is_overdue(referral: Referral, now: datetime) -> bool:
    return can_become_overdue(referral) and referral.due_at < now


def find_overdue(referrals: Iterable[Referral], now: datetime) -> list[Referral]:
    """Open, not started, not yet escalated referrals past their due time; most overdue first."""
    require_aware(now)
    overdue = [r for r in referrals if is_overdue(r, now)]
    return sorted(overdue, key=lambda r: (r.due_at, r.referral_id))


def escalate(
    referral: Referral, now: datetime, actor: Actor = SYSTEM_ACTOR
) -> tuple[Referral, EscalationEvent]:
    """Escalate an overdue referral (IllegalTransition if it is not overdue or already was)."""
    escalated, entry = apply_action(referral, Escalate(), actor, now)
    notify = tuple(dict.fromkeys((referral.team, Team.CARE_COORDINATOR)))
    event = EscalationEvent(
        escalation_id=str(
            uuid5(
                CAREPATH_REFERRALS_NAMESPACE,
                f"escalation:{referral.referral_id}:{referral.due_at.isoformat()}",
            )
        ),
        referral_id=referral.referral_id,
        episode_id=referral.episode_id,
        recommendation_id=referral.recommendation_id,
        step=referral.step,
        team=referral.team,
        queue=referral.queue,
        priority=referral.priority,
        status=referral.status,
        previous_business_status=referral.business_status,
        due_at=referral.due_at,
        escalated_at=now,
        overdue_seconds=int((now - referral.due_at).total_seconds()),
        notify=notify,
        audit=entry,
    )
    return escalated, event
