"""The care plan: one versioned plan per episode.

It holds the pathway's active recommendations, the withdrawn ones, every referral with its state,
the outcomes and the pathway version. Every function here is pure: it takes a plan and returns a
new one. A change that alters the plan returns ``version + 1``; a no-op (a replayed event, a stale
referral) returns the very same plan, so callers can skip the write.

Exactly one referral per recommendation: the referral id is derived from the recommendation id
(:func:`referral_id_for`), a recommendation that already has a referral creates nothing, and an
event already applied is recognised by the digest of its body (``applied_events``), so
redelivering or replaying events changes nothing, not even the version. Withdrawals are sticky:
a withdrawn recommendation id is never recommended again (the pathway gives a new recommendation
a new id), so a late redelivery of an older event cannot revive it. A recommendation's content
is fixed by its first appearance.

The plan's fields are the public contract's (:class:`carepath_contracts.views.CarePlanFields`),
and so are the recommendation, withdrawal and outcome models it holds; what it publishes is
:func:`plan_view`. It takes the pathway's event as the contract's typed
:class:`~carepath_contracts.events.RecommendationsIssued` (nothing is dumped and parsed again;
its digest is computed once, from the model).

Optimistic concurrency: persist a plan only if the stored version is still the one it was derived
from (compare-and-set on ``version``, :func:`expect_version`). On a conflict, reload and apply the
same change again: the functions are deterministic and idempotent, so neither concurrent update is
lost. :func:`apply_referral_change` merges only fast-forwards of a referral's audit history; two
changes made concurrently to the *same* referral raise :class:`ReferralConflict`, and the loser
re-applies its action to the fresh referral (which may then be illegal: 409).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints, model_validator

from carepath_contracts.events import RecommendationsIssued
from carepath_contracts.pathway_result import RecommendationView, WithdrawnRecommendation
from carepath_contracts.views import CarePlanFields, CarePlanView, Withdrawal
from carepath_referrals.domain.actors import SYSTEM_ACTOR, DomainError
from carepath_referrals.domain.codes import TaskStatus
from carepath_referrals.domain.lifecycle import Cancel, IllegalTransition, apply_action
from carepath_referrals.domain.referral import (
    Referral,
    ReferralOutcome,
    new_referral,
    outcome_of,
    referral_id_for,
    referral_view,
)
from carepath_referrals.domain.routing import RoutingTable, require_aware

__all__ = [
    "CarePlan",
    "EpisodeMismatch",
    "Recommendation",
    "RecommendationEvent",
    "ReferralConflict",
    "UnknownReferral",
    "VersionConflict",
    "Withdrawal",
    "WithdrawnRecommendation",
    "apply_recommendations",
    "apply_referral_change",
    "event_digest",
    "expect_version",
    "new_plan",
    "plan_view",
    "record_outcome",
]

NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]

Recommendation = RecommendationView
"""A recommendation as the plan keeps it: the contract's model (the pathway's complete
:class:`carepath_contracts.pathway_result.Recommendation` is one)."""


class EpisodeMismatch(DomainError):
    """Something of another episode was applied to this plan."""


class UnknownReferral(DomainError):
    """The plan has no referral with this id."""


class ReferralConflict(DomainError):
    """A referral was changed concurrently; reload it and apply the action again (HTTP 409)."""


class VersionConflict(DomainError):
    """The plan is no longer at the expected version (HTTP 409 / retry)."""

    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(f"care plan is at version {actual}, expected {expected}")
        self.expected = expected
        self.actual = actual


# -- the pathway's recommendation event ------------------------------------------------------


class RecommendationEvent(BaseModel):
    """What the plan reads of a recommendation event, for callers that hold it as JSON-like data.

    The service passes the contract's :class:`~carepath_contracts.events.RecommendationsIssued`
    itself; this lenient form (everything but the episode optional, further fields kept) lets
    tools and tests give only what they mean. Its recommendations and withdrawals are the
    contract's models.
    """

    model_config = ConfigDict(frozen=True, extra="allow")

    episode_id: NonEmpty
    pathway_version: str | None = None
    profile: str | None = None
    urgent: bool = False
    evaluation_seq: int | None = None  # when present, older evaluations don't overwrite newer
    recommendations: tuple[RecommendationView, ...] = ()
    withdrawn: tuple[WithdrawnRecommendation, ...] = ()

    @model_validator(mode="after")
    def _ids(self) -> RecommendationEvent:
        for index, rec in enumerate(self.recommendations):
            _id_of(rec, index)
        return self


PlanInput = RecommendationsIssued | RecommendationEvent
"""A recommendation event as the plan takes it: the contract's, or the lenient form."""


def _id_of(rec: RecommendationView, index: int) -> str:
    """The recommendation's id: the plan keys everything by it, so one without is refused."""
    if rec.recommendation_id is None or not rec.recommendation_id.strip():
        raise ValueError(f"recommendations[{index}] has no recommendation_id")
    return rec.recommendation_id


def event_digest(event: PlanInput) -> str:
    """A digest of the event's content, independent of key order and whitespace.

    Computed once from the model (its JSON form, keys sorted), so the same content gives the
    same digest however it arrived.
    """
    canonical = json.dumps(
        event.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


# -- the plan --------------------------------------------------------------------------------


class CarePlan(CarePlanFields[Referral]):
    """An episode's plan: the contract's care-plan fields, its referrals with their audit trails,
    and the digests of the recommendation events it applied."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    episode_id: NonEmpty
    applied_events: tuple[str, ...] = ()

    def referral_for(self, recommendation_id: str) -> Referral | None:
        return self.referrals.get(referral_id_for(recommendation_id))


def plan_view(plan: CarePlan) -> CarePlanView:
    """The plan as teams read it and as ``careplan.updated`` publishes it: referrals without
    their audit trail (each with its revision), no event digests.

    Built from the plan's own (already valid) values, without validating them again.
    """
    values = {name: getattr(plan, name) for name in CarePlanFields.model_fields}
    values["referrals"] = {rid: referral_view(ref) for rid, ref in plan.referrals.items()}
    return CarePlanView.model_construct(**values)


def new_plan(episode_id: str, now: datetime) -> CarePlan:
    """The empty plan of an episode, version 0."""
    require_aware(now)
    return CarePlan(episode_id=episode_id, created_at=now, updated_at=now)


def expect_version(plan: CarePlan, expected: int) -> None:
    """Refuse to proceed unless ``plan`` is at ``expected`` (the compare in compare-and-set)."""
    if plan.version != expected:
        raise VersionConflict(expected, plan.version)


def _changed(plan: CarePlan, update: dict[str, Any], at: datetime) -> CarePlan:
    return plan.model_copy(
        update={**update, "version": plan.version + 1, "updated_at": max(plan.updated_at, at)}
    )


def _check_episode(plan: CarePlan, episode_id: str, what: str) -> None:
    if episode_id != plan.episode_id:
        raise EpisodeMismatch(
            f"{what} belongs to episode {episode_id!r}, not to plan {plan.episode_id!r}"
        )


# -- changes ---------------------------------------------------------------------------------


def apply_recommendations(
    plan: CarePlan,
    recommendation_event: PlanInput | Mapping[str, Any],
    routing: RoutingTable,
    now: datetime,
) -> tuple[CarePlan, list[Referral], list[Referral]]:
    """Apply one pathway recommendation event: ``(plan, new referrals, cancelled referrals)``.

    The event is the contract's typed body (:class:`RecommendationsIssued`, as the consumer
    decoded it: used as it is) or, from tools and tests, a :class:`RecommendationEvent` or the
    data of one. Withdrawals are applied first: each withdrawn recommendation leaves the active
    ones and its open referral is cancelled (business status ``superseded``); a completed one is
    kept. Then every recommendation without a referral (and not withdrawn) gets one, routed by
    ``routing``.
    """
    require_aware(now)
    event: PlanInput
    if isinstance(recommendation_event, RecommendationsIssued | RecommendationEvent):
        event = recommendation_event
    else:
        event = RecommendationEvent.model_validate(recommendation_event)
    _check_episode(plan, event.episode_id, "recommendation event")
    digest = event_digest(event)
    if digest in plan.applied_events:
        return plan, [], []

    recommendations = dict(plan.recommendations)
    withdrawn = dict(plan.withdrawn)
    referrals = dict(plan.referrals)
    created: list[Referral] = []
    cancelled: list[Referral] = []

    for item in event.withdrawn:
        rec_id = item.recommendation_id
        if rec_id in withdrawn:
            continue
        recommendations.pop(rec_id, None)
        withdrawn[rec_id] = Withdrawal(
            recommendation_id=rec_id,
            step=item.step,
            reason=item.reason,
            withdrawn_at=now,
        )
        referral = referrals.get(referral_id_for(rec_id))
        if referral is not None and referral.is_open:
            reason = f"recommendation withdrawn: {item.reason or 'superseded by the pathway'}"
            referral, _ = apply_action(
                referral, Cancel(reason=reason, superseded=True), SYSTEM_ACTOR, now, routing
            )
            referrals[referral.referral_id] = referral
            cancelled.append(referral)

    for index, rec in enumerate(event.recommendations):
        rec_id = _id_of(rec, index)
        referral_id = referral_id_for(rec_id)
        if rec_id in withdrawn or referral_id in referrals:
            continue
        referral = new_referral(
            episode_id=plan.episode_id,
            recommendation_id=rec_id,
            decision=routing.route(rec.step, rec.priority, now),
            now=now,
            rationale=rec.rationale,
            pathway_version=event.pathway_version,
        )
        recommendations[rec_id] = rec
        referrals[referral_id] = referral
        created.append(referral)

    update: dict[str, Any] = {
        "recommendations": recommendations,
        "withdrawn": withdrawn,
        "referrals": referrals,
        "applied_events": (*plan.applied_events, digest),
    }
    if event.evaluation_seq is None or event.evaluation_seq >= plan.evaluation_seq:
        update |= {
            "pathway_version": event.pathway_version,
            "profile": event.profile,
            "urgent": event.urgent,
            "evaluation_seq": event.evaluation_seq or plan.evaluation_seq,
        }
    return _changed(plan, update, now), created, cancelled


def apply_referral_change(plan: CarePlan, referral: Referral) -> CarePlan:
    """Put a changed referral into the plan; a completed one also records its outcome.

    The change must extend the plan's copy of the referral (its audit history starts with the
    plan's); a copy the plan already has, or an older one, is a no-op; a diverging one (changed
    concurrently from the same revision) raises :class:`ReferralConflict`.
    """
    _check_episode(plan, referral.episode_id, f"referral {referral.referral_id}")
    stored = plan.referrals.get(referral.referral_id)
    if stored is None:
        raise UnknownReferral(f"plan {plan.episode_id!r} has no referral {referral.referral_id}")
    known, offered = stored.history, referral.history
    if len(offered) <= len(known):
        if known[: len(offered)] == offered:
            return plan  # already applied (replay or stale copy)
    elif offered[: len(known)] == known:
        update: dict[str, Any] = {"referrals": {**plan.referrals, referral.referral_id: referral}}
        if referral.status is TaskStatus.COMPLETED and not _has_outcome(plan, referral.referral_id):
            update["outcomes"] = (*plan.outcomes, outcome_of(referral))
        return _changed(plan, update, referral.updated_at)
    raise ReferralConflict(
        f"referral {referral.referral_id} was changed concurrently (the plan has revision "
        f"{stored.revision}, the change does not follow it); reload it and try again"
    )


def _has_outcome(plan: CarePlan, referral_id: str) -> bool:
    return any(o.referral_id == referral_id for o in plan.outcomes)


def record_outcome(
    plan: CarePlan, outcome: ReferralOutcome, now: datetime | None = None
) -> CarePlan:
    """Record the outcome of one of the plan's completed referrals (once; a repeat is a no-op).

    :func:`apply_referral_change` already does this when a referral completes; use this when the
    outcome arrives on its own (e.g. replayed from the outcome event).
    """
    _check_episode(plan, outcome.episode_id, f"outcome of referral {outcome.referral_id}")
    referral = plan.referrals.get(outcome.referral_id)
    if referral is None:
        raise UnknownReferral(f"plan {plan.episode_id!r} has no referral {outcome.referral_id}")
    existing = next((o for o in plan.outcomes if o.referral_id == outcome.referral_id), None)
    if existing == outcome:
        return plan
    if existing is not None:
        raise ReferralConflict(
            f"referral {outcome.referral_id} already has a different outcome recorded"
        )
    if referral.status is not TaskStatus.COMPLETED:
        raise IllegalTransition(
            f"referral {outcome.referral_id} is {referral.status.value}; only a completed "
            "referral has an outcome",
            referral.status,
        )
    at = now or outcome.completed_at
    require_aware(at)
    return _changed(plan, {"outcomes": (*plan.outcomes, outcome)}, at)
