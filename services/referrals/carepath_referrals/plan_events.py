"""The events a care-plan change publishes, derived from the plan before and after (pure).

* a referral that is new: ``referral.created``;
* a referral whose history grew: ``referral.status_changed`` and one ``audit.recorded`` per
  new audit entry (creation included);
* an escalation: ``referral.escalated``;
* a plan whose version moved: ``careplan.updated`` on the compacted care-plan topic.

Every body is the contract's model, built from the domain's values and framed as it is.

Ids derive from the referral id and revision, or the plan version, so a republished change
carries the same ids and consumers de-duplicate it.
"""

from __future__ import annotations

from typing import Any

from carepath_contracts.envelope import Causation, Envelope, derive_id
from carepath_contracts.events import (
    AUDIT_RECORDED,
    CARE_PLAN_UPDATED,
    REFERRAL_CREATED,
    REFERRAL_ESCALATED,
    REFERRAL_STATUS_CHANGED,
    ReferralCreated,
    ReferralStatusChanged,
)
from carepath_contracts.topics import Topics
from carepath_referrals.domain import CarePlan, EscalationEvent, Referral, plan_view
from carepath_runtime.kafka_broker import OutboundEvent, build_event

SOURCE = "/carepath/referrals"


def _env(event_type: str, event_id: str, cause: Causation | None) -> Envelope:
    return Envelope.new(event_type=event_type, source=SOURCE, event_id=event_id, causation=cause)


def plan_events(
    topics: Topics,
    before: CarePlan | None,
    after: CarePlan,
    cause: Causation | None,
    escalations: list[EscalationEvent] | None = None,
) -> list[OutboundEvent]:
    ep = after.episode_id
    out: list[OutboundEvent] = []
    old_refs: dict[str, Referral] = dict(before.referrals) if before else {}
    for rid, ref in after.referrals.items():
        old = old_refs.get(rid)
        if old is not None and old.revision == ref.revision:
            continue
        if old is None:
            out.append(build_event(
                topic=topics.referrals, key=ep,
                envelope=_env(REFERRAL_CREATED, derive_id(REFERRAL_CREATED, rid), cause),
                body=ReferralCreated(
                    referral_id=rid, episode_id=ep, recommendation_id=ref.recommendation_id,
                    step=ref.step, team=ref.team, priority=ref.priority,
                    status=ref.status, due_at=ref.due_at, created_at=ref.created_at,
                ),
            ))
        else:
            out.append(build_event(
                topic=topics.referrals, key=ep,
                envelope=_env(REFERRAL_STATUS_CHANGED,
                              derive_id(REFERRAL_STATUS_CHANGED, rid, str(ref.revision)), cause),
                body=ReferralStatusChanged(
                    referral_id=rid, episode_id=ep, step=ref.step, team=ref.team,
                    status=ref.status, business_status=ref.business_status,
                    previous_status=old.status,
                    reason=ref.history[-1].reason if ref.history else None,
                    changed_at=ref.updated_at,
                ),
            ))
        start = old.revision if old is not None else 0
        for entry in ref.history[start:]:
            out.append(build_event(
                topic=topics.audit, key=ep,
                envelope=_env(AUDIT_RECORDED, entry.audit_id, cause),
                body=entry,
            ))
    for esc in escalations or []:
        out.append(build_event(
            topic=topics.referrals, key=ep,
            envelope=_env(REFERRAL_ESCALATED, esc.escalation_id, cause),
            body=esc,
        ))
    if before is None or after.version != before.version:
        out.append(build_event(
            topic=topics.care_plans, key=ep,
            envelope=_env(CARE_PLAN_UPDATED, derive_id(CARE_PLAN_UPDATED, ep, str(after.version)),
                          cause),
            body=plan_view(after),
        ))
    return out


def care_plan_view(plan: CarePlan) -> dict[str, Any]:
    """The plan as teams read it (:func:`plan_view`), as JSON data: referrals without their
    full audit trail."""
    data: dict[str, Any] = plan_view(plan).model_dump(mode="json")
    return data
