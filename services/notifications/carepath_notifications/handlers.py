"""Kafka adapters of the notifications service: events in, delivery jobs out.

Consumes referral events (created, status changed, escalated), care-plan changes and pathway
status. For each event it finds the matching subscriptions and enqueues one delivery job per
subscription, idempotently (job id = subscription and event id), then commits. Delivery
itself happens in the worker: a slow or failing endpoint never holds a partition, so it
never delays other endpoints or other patients.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from carepath_contracts.events import (
    CARE_PLAN_UPDATED,
    PATHWAY_STATUS,
    REFERRAL_CREATED,
    REFERRAL_ESCALATED,
    REFERRAL_STATUS_CHANGED,
)
from carepath_notifications.domain.jobs import DeliveryJob
from carepath_notifications.domain.notice import endpoint_key, notice_body, targets
from carepath_notifications.job_queue import JobQueue
from carepath_notifications.subscription_store import SubscriptionStore
from carepath_runtime.consumer import Delivery
from carepath_runtime.log import get_logger
from carepath_runtime.observability.tracing import inject_headers
from carepath_runtime.service import Runtime, subscribe

log = get_logger(__name__)

REFERRAL_TYPES = frozenset({REFERRAL_CREATED, REFERRAL_STATUS_CHANGED, REFERRAL_ESCALATED})


def make_handler(
    store: SubscriptionStore, queue: JobQueue, on_enqueued: Callable[[], None]
) -> Callable[[Delivery], Any]:
    async def handle(d: Delivery) -> None:
        env = d.envelope
        # Which subscriptions want this type at all (cached per type): an event nobody
        # wants (most care-plan and status events) ends here, before its body is touched.
        wanted = (await store.current()).for_type(env.type)
        if not wanted:
            return
        body = d.body
        chosen = targets(wanted, env.type, {"team": getattr(body, "team", None),
                                            "notify": getattr(body, "notify", None)})
        if not chosen:
            return
        data: dict[str, Any] = body.model_dump(mode="json")
        notice = notice_body(env.id, env.type, env.source, env.time, data)
        now = int(time.time() * 1000)
        trace_headers: dict[str, str] = {}
        inject_headers(trace_headers)
        traceparent = trace_headers.get("traceparent", "")
        jobs = [
            DeliveryJob.new(
                event_id=env.id, event_type=env.type, subscription_id=sub.id,
                channel=sub.channel, endpoint=endpoint_key(sub), body=notice, now_ms=now,
                traceparent=traceparent,
            )
            for sub in chosen
        ]
        created = await queue.enqueue_many(jobs)
        if created:
            on_enqueued()
        log.debug("notifications_enqueued", event_id=env.id, type=env.type,
                 matched=len(jobs), new=created)

    return handle


def register(
    rt: Runtime, store: SubscriptionStore, queue: JobQueue, on_enqueued: Callable[[], None]
) -> None:
    handle = make_handler(store, queue, on_enqueued)
    for group, topic, types in (
        ("notifications", rt.topics.referrals, REFERRAL_TYPES),
        ("notifications-careplans", rt.topics.care_plans, frozenset({CARE_PLAN_UPDATED})),
        ("notifications-status", rt.topics.pathway_status, frozenset({PATHWAY_STATUS})),
    ):
        subscribe(rt, topic=topic, group=group, dlq_topic=rt.topics.dlq_notifications,
                  handler=handle, accepted_types=types)
