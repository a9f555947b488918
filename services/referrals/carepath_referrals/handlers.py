"""Kafka adapters of the referrals service.

Consumes the pathway's recommendation events and folds each into the episode's care plan:
one referral per recommendation (the referral id derives from the recommendation id, and the
plan ignores an event it already applied), superseded recommendations cancel their open
referrals. Plan, referrals and the events to publish are written in one Redis transaction,
then published, then the offset is committed.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from carepath_contracts.events import RECOMMENDATIONS_ISSUED, RecommendationsIssued
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
from carepath_runtime.transient import transient_dependency

log = get_logger(__name__)


def routing_table(rt: Runtime) -> RoutingTable:
    if rt.settings.carepath_routing_file:
        return RoutingTable.from_json_file(rt.settings.carepath_routing_file, base=DEFAULT_ROUTING)
    return DEFAULT_ROUTING


def register(rt: Runtime, store: PlanStore, routing: RoutingTable) -> None:
    async def handle(d: Delivery) -> None:
        body = d.body
        assert isinstance(body, RecommendationsIssued)
        episode_id = body.episode_id
        now = datetime.now(UTC)

        def fold(plan: CarePlan | None) -> tuple[CarePlan, list[OutboundEvent]]:
            before = plan or new_plan(episode_id, now)
            after, _new, _cancelled = apply_recommendations(before, body, routing, now)
            return after, plan_events(rt.topics, plan, after, d.envelope)

        outputs = await store.change_and_publish(episode_id, d.envelope.id, fold, rt.broker)
        log.debug("recommendations_applied", event_id=d.envelope.id, episode_id=episode_id,
                 published=len(outputs))

    subscribe(
        rt,
        topic=rt.topics.recommendations,
        group="referrals",
        dlq_topic=rt.topics.dlq_referrals,
        handler=handle,
        accepted_types=frozenset({RECOMMENDATIONS_ISSUED}),
    )


async def escalate_overdue(rt: Runtime, store: PlanStore, routing: RoutingTable) -> int:
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
            return after, plan_events(rt.topics, plan, after, None, [event])

        outputs = await store.change_and_publish(episode_id, input_id, fold, rt.broker)
        count += 1 if outputs else 0
    return count


async def deadline_loop(rt: Runtime, store: PlanStore, routing: RoutingTable) -> None:
    """Sweep every ``carepath_deadline_scan_seconds``.

    A sweep that meets Redis or Kafka away is retried with capped backoff until the
    dependency answers (not after a whole scan interval, and not counted against anything):
    each escalation is idempotent (its input id names the referral and its due time), so a
    sweep cut short and run again escalates nothing twice.
    """
    retry = rt.retry_config()
    waited = 0
    while True:
        try:
            escalated = await escalate_overdue(rt, store, routing)
            if escalated:
                log.info("referrals_escalated", count=escalated)
            if waited:
                log.info("deadline_sweep_resumed", tries=waited)
            waited = 0
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            dep = transient_dependency(exc)
            if dep is not None and not rt.health.stopping:
                waited += 1
                rt.health.report_down(dep, describe(exc, 200))
                if waited == 1 or waited % 20 == 0:
                    log.warning("deadline_sweep_waiting", dependency=dep, tries=waited,
                                error=describe(exc, 200))
                with rt.health.waiting_on(dep):
                    await asyncio.sleep(transient_delay(waited, retry))
                continue
            log.warning("deadline_sweep_failed", error=describe(exc, 300))
        await asyncio.sleep(rt.settings.carepath_deadline_scan_seconds)
