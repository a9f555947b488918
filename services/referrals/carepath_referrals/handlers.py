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
from functools import partial
from typing import Any

from pydantic import BaseModel

from carepath_contracts.events import RecommendationsIssued
from carepath_referrals.domain import CarePlan, RoutingTable
from carepath_referrals.domain.routing import DEFAULT_ROUTING
from carepath_referrals.service import ReferralService
from carepath_runtime.consumer import Delivery, transient_delay
from carepath_runtime.error_text import describe
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


async def on_recommendations(service: ReferralService,
                             delivery: Delivery[RecommendationsIssued]) -> Change[CarePlan]:
    """The pathway's recommendations, as the change to the episode's care plan that the
    consumer applies (in a batch with others), publishes and commits."""
    return service.apply_recommendations(delivery.body, delivery.envelope)


ReferralsHandler = Callable[[ReferralService, Delivery[Any]], Awaitable[Change[CarePlan]]]

HANDLERS: Mapping[type[BaseModel], ReferralsHandler] = {
    RecommendationsIssued: on_recommendations,
}


def register(runtime: Runtime, service: ReferralService) -> None:
    subscribe(
        runtime,
        topic=runtime.topics.recommendations,
        group="referrals",
        dlq_topic=runtime.topics.dlq_referrals,
        handlers={model: partial(handler, service) for model, handler in HANDLERS.items()},
    )


async def deadline_loop(runtime: Runtime, service: ReferralService) -> None:
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
            escalated = await service.escalate_overdue()
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
