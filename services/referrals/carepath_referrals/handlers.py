"""Kafka adapters of the referrals service.

Consumes the pathway's recommendation events and folds each into the episode's care plan:
one referral per recommendation (the referral id derives from the recommendation id, and the
plan ignores an event it already applied), superseded recommendations cancel their open
referrals. Plan, referrals and the events to publish are written in one Redis transaction,
then published, then the offset is committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from pydantic import BaseModel

from carepath_contracts.events import RecommendationsIssued
from carepath_referrals.domain import (
    SYSTEM_ACTOR,
    CarePlan,
    RoutingTable,
    apply_recommendations,
    apply_referral_change,
    escalate,
    find_overdue,
    new_plan,
)
from carepath_referrals.domain.routing import DEFAULT_ROUTING
from carepath_referrals.plan_events import plan_events
from carepath_referrals.plan_store import PlanStore
from carepath_runtime.consumer import Delivery, transient_delay
from carepath_runtime.error_text import describe
from carepath_runtime.kafka_broker import OutboundEvent
from carepath_runtime.log import get_logger
from carepath_runtime.service import Runtime, subscribe
from carepath_runtime.state_store import Change
from carepath_runtime.transient import transient_dependency

log = get_logger(__name__)


def routing_table(runtime: Runtime) -> RoutingTable:
    if runtime.settings.carepath_routing_file:
        return RoutingTable.from_json_file(runtime.settings.carepath_routing_file,
                                           base=DEFAULT_ROUTING)
    return DEFAULT_ROUTING


@dataclass(frozen=True)
class Referrals:
    """What the referrals' handlers need: the runtime (topics), the plans, the routing."""

    runtime: Runtime
    plans: PlanStore
    routing: RoutingTable


async def apply_recommendation_event(referrals: Referrals,
                                     delivery: Delivery[RecommendationsIssued]
                                     ) -> Change[CarePlan]:
    """The pathway's recommendations folded into the episode's care plan."""
    body = delivery.body
    episode_id = body.episode_id
    now = datetime.now(UTC)
    topics = referrals.runtime.topics

    def fold(plan: CarePlan | None) -> tuple[CarePlan, list[OutboundEvent]]:
        before = plan or new_plan(episode_id, now)
        after, _new, _cancelled = apply_recommendations(
            before, body.model_dump(mode="json"), referrals.routing, now
        )
        return after, plan_events(topics, plan, after, delivery.envelope)

    return referrals.plans.change(episode_id, delivery.envelope.id, fold)


ReferralsHandler = Callable[[Referrals, Delivery[Any]], Awaitable[Change[CarePlan]]]

HANDLERS: Mapping[type[BaseModel], ReferralsHandler] = {
    RecommendationsIssued: apply_recommendation_event,
}


def register(runtime: Runtime, store: PlanStore, routing: RoutingTable) -> None:
    referrals = Referrals(runtime, store, routing)
    subscribe(
        runtime,
        topic=runtime.topics.recommendations,
        group="referrals",
        dlq_topic=runtime.topics.dlq_referrals,
        handlers={model: partial(handler, referrals) for model, handler in HANDLERS.items()},
    )


async def escalate_overdue(runtime: Runtime, store: PlanStore, routing: RoutingTable) -> int:
    """One deadline sweep: escalate every overdue referral once. Returns how many."""
    now = datetime.now(UTC)
    count = 0
    for ref in find_overdue(await store.due_before(now), now):
        episode_id = ref.episode_id
        rid = ref.referral_id
        input_id = f"escalate:{rid}:{ref.due_at.isoformat()}"

        def fold(plan: CarePlan | None, rid: str = rid) -> tuple[CarePlan, list[OutboundEvent]]:
            assert plan is not None
            current = plan.referrals[rid]
            if not find_overdue([current], now):
                return plan, []
            updated, event = escalate(current, now, SYSTEM_ACTOR)
            after = apply_referral_change(plan, updated)
            return after, plan_events(runtime.topics, plan, after, None, [event])

        outputs = await store.change_and_publish(episode_id, input_id, fold, runtime.broker)
        count += 1 if outputs else 0
    return count


async def deadline_loop(runtime: Runtime, store: PlanStore, routing: RoutingTable) -> None:
    """Sweep every ``carepath_deadline_scan_seconds``.

    A sweep that meets Redis or Kafka away is retried with capped backoff until the
    dependency answers (not after a whole scan interval, and not counted against anything):
    each escalation is idempotent (its input id names the referral and its due time), so a
    sweep cut short and run again escalates nothing twice.
    """
    retry = runtime.retry_config()
    health = runtime.health
    waited = 0
    while True:
        try:
            escalated = await escalate_overdue(runtime, store, routing)
            if escalated:
                log.info("referrals_escalated", count=escalated)
            if waited:
                log.info("deadline_sweep_resumed", tries=waited)
            waited = 0
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            dep = transient_dependency(exc)
            if dep is not None and not health.stopping:
                waited += 1
                health.report_down(dep, describe(exc, 200))
                if waited == 1 or waited % 20 == 0:
                    log.warning("deadline_sweep_waiting", dependency=dep, tries=waited,
                                error=describe(exc, 200))
                with health.waiting_on(dep):
                    await asyncio.sleep(transient_delay(waited, retry))
                continue
            log.warning("deadline_sweep_failed", error=describe(exc, 300))
        await asyncio.sleep(runtime.settings.carepath_deadline_scan_seconds)
