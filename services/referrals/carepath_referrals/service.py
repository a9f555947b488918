"""The referrals application service: every change to a care plan goes through here.

Three callers, one path each:

* the HTTP routes call :meth:`ReferralService.act` (a team member or coordinator works a
  referral);
* the Kafka handler calls :meth:`ReferralService.apply_recommendations` (the pathway's new
  answer for an episode);
* the deadline sweep calls :meth:`ReferralService.escalate_overdue`.

Each one derives the change's idempotency key, folds the change into the episode's care plan
with the pure domain (:mod:`carepath_referrals.domain`), and has the plan store write it with
its events and publish them (:class:`carepath_referrals.plan_store.PlanStore`). Refusals are
the domain's own exceptions (:class:`~carepath_referrals.domain.DomainError` and its kinds,
:class:`InvalidOutcome`, :class:`NotVisible`); the HTTP edge maps them to status codes
through one table (:data:`carepath_referrals.api.ERROR_STATUS`). Nothing here knows HTTP.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from faststream.kafka import KafkaBroker
from pydantic import TypeAdapter, ValidationError

from carepath_contracts.envelope import Causation, Cause, derive_id
from carepath_contracts.events import RecommendationsIssued
from carepath_contracts.outcome import OutcomeReport
from carepath_contracts.outcome_event import outcome_event
from carepath_contracts.topics import Topics
from carepath_referrals.access import visible_referral
from carepath_referrals.domain import (
    SYSTEM_ACTOR,
    Action,
    Actor,
    CarePlan,
    Complete,
    Referral,
    RoutingTable,
    UnknownReferral,
    apply_action,
    apply_recommendations,
    apply_referral_change,
    escalate,
    find_overdue,
    new_plan,
)
from carepath_referrals.plan_events import plan_events
from carepath_referrals.plan_store import PlanStore
from carepath_runtime.http import error_list
from carepath_runtime.kafka_broker import OutboundEvent, build_event
from carepath_runtime.state_store import Change

SOURCE = "/carepath/referrals"
OUTCOME_ADAPTER: TypeAdapter[OutcomeReport] = TypeAdapter(OutcomeReport)


class InvalidOutcome(ValueError):
    """A completion's outcome that breaks the outcome contract (HTTP 422); ``errors`` name
    the fields (``outcome.<field>``) and reasons, never the submitted values."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("invalid outcome")
        self.errors = errors


@dataclass(frozen=True)
class ReferralService:
    topics: Topics
    store: PlanStore
    routing: RoutingTable
    broker: KafkaBroker

    async def act(
        self,
        actor: Actor,
        referral_id: str,
        action: Action,
        idempotency_key: str | None = None,
        now: datetime | None = None,
    ) -> Referral:
        """``actor`` takes ``action`` on a referral they can see; returns the referral after.

        Repeating a call with the same ``idempotency_key`` changes nothing more (it is the
        change's input id in the store); without one, every call is a new change.
        """
        referral = await visible_referral(self.store, actor, referral_id)
        report = self._completion_outcome(referral, action)
        input_id = derive_id("referral-action", referral_id, idempotency_key or str(uuid.uuid4()))
        cause = Cause(id=input_id)  # causation and correlation of everything this publishes
        when = now or datetime.now(UTC)

        def fold(plan: CarePlan | None) -> tuple[CarePlan, list[OutboundEvent]]:
            if plan is None or referral_id not in plan.referrals:
                raise UnknownReferral(f"unknown referral {referral_id}")
            updated, _audit = apply_action(plan.referrals[referral_id], action, actor, when,
                                           self.routing)
            after = apply_referral_change(plan, updated)
            events = plan_events(self.topics, plan, after, cause)
            if report is not None:
                events.append(self._outcome_event(report, referral_id, input_id, cause, when))
            return after, events

        await self.store.change_and_publish(referral.episode_id, input_id, fold, self.broker)
        changed = await self.store.referral(referral_id)
        if changed is None:  # pragma: no cover - the fold above just wrote it
            raise UnknownReferral(f"unknown referral {referral_id}")
        return changed

    def apply_recommendations(
        self, event: RecommendationsIssued, cause: Causation, now: datetime | None = None
    ) -> Change[CarePlan]:
        """The change that folds the pathway's recommendations into the episode's care plan.

        Returned, not applied: the consumer applies it (with the other changes of its batch),
        publishes its events and only then commits the input (a unit of work per input)."""
        when = now or datetime.now(UTC)
        episode_id = event.episode_id

        def fold(plan: CarePlan | None) -> tuple[CarePlan, list[OutboundEvent]]:
            before = plan or new_plan(episode_id, when)
            after, _new, _cancelled = apply_recommendations(
                before, event, self.routing, when
            )
            return after, plan_events(self.topics, plan, after, cause)

        return self.store.change(episode_id, cause.id, fold)

    async def escalate_overdue(self, now: datetime | None = None) -> int:
        """One deadline sweep: escalate every overdue referral once. Returns how many.

        Each escalation's input id names the referral and its due time, so a sweep cut short
        and run again escalates nothing twice.
        """
        when = now or datetime.now(UTC)
        count = 0
        for due in find_overdue(await self.store.due_before(when), when):
            referral_id = due.referral_id
            input_id = f"escalate:{referral_id}:{due.due_at.isoformat()}"

            def fold(plan: CarePlan | None, referral_id: str = referral_id
                     ) -> tuple[CarePlan, list[OutboundEvent]]:
                if plan is None or referral_id not in plan.referrals:
                    raise UnknownReferral(f"unknown referral {referral_id}")
                current = plan.referrals[referral_id]
                if not find_overdue([current], when):
                    return plan, []
                updated, event = escalate(current, when, SYSTEM_ACTOR)
                after = apply_referral_change(plan, updated)
                return after, plan_events(self.topics, plan, after, None, [event])

            outputs = await self.store.change_and_publish(due.episode_id, input_id, fold,
                                                          self.broker)
            count += 1 if outputs else 0
        return count

    @staticmethod
    def _completion_outcome(referral: Referral, action: Action) -> OutcomeReport | None:
        """The outcome a completion reports for its step, validated against the contract."""
        if not isinstance(action, Complete) or action.outcome is None:
            return None
        try:
            return OUTCOME_ADAPTER.validate_python(
                {"episode_id": referral.episode_id, "step": referral.step, **action.outcome}
            )
        except ValidationError as exc:
            raise InvalidOutcome([{"field": f"outcome.{e['field']}", "reason": e["reason"]}
                                  for e in error_list(exc)]) from exc

    def _outcome_event(self, report: OutcomeReport, referral_id: str, input_id: str,
                       cause: Causation, now: datetime) -> OutboundEvent:
        out = outcome_event(self.topics, report, source=SOURCE, identity=(input_id,), at=now,
                            referral_id=referral_id, causation=cause)
        return build_event(topic=out.topic, key=out.key, envelope=out.envelope, body=out.body)
