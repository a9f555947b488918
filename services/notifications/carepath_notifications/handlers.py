"""Kafka adapters of the notifications service: events in, delivery jobs out.

Consumes referral events (created, status changed, escalated), care-plan changes and pathway
status. For each event it finds the matching subscriptions and enqueues one delivery job per
subscription, idempotently (job id = subscription and event id): the jobs of a whole poll
in one script call, made durable before the poll is committed. Delivery
itself happens in the worker: a slow or failing endpoint never holds a partition, so it
never delays other endpoints or other patients.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from carepath_contracts.events import (
    EscalationEvent,
    PathwayStatus,
    ReferralCreated,
    ReferralStatusChanged,
)
from carepath_contracts.views import CarePlanView
from carepath_notifications.domain.jobs import DeliveryJob
from carepath_notifications.domain.notice import endpoint_key, notice_body, targets
from carepath_notifications.job_queue import JobQueue
from carepath_notifications.subscription_store import SubscriptionStore
from carepath_runtime.consumer import Delivery
from carepath_runtime.effects import Deferred
from carepath_runtime.log import get_logger
from carepath_runtime.observability.tracing import inject_headers
from carepath_runtime.service import Runtime, subscribe

log = get_logger(__name__)


def make_handler(
    store: SubscriptionStore, queue: JobQueue, on_enqueued: Callable[[], None]
) -> Callable[[Delivery[Any]], Awaitable[Deferred[list[DeliveryJob]] | None]]:
    # Partitions are handled concurrently. The store lets a caller read its cached copy
    # while another refreshes it, and before the first load that copy is empty: one reader
    # at a time, so none sees the cache before it was loaded (an event would match nobody).
    reading = asyncio.Lock()
    sink = JobSink(queue, on_enqueued)

    async def handle(delivery: Delivery[Any]) -> Deferred[list[DeliveryJob]] | None:
        envelope = delivery.envelope
        # Which subscriptions want this type at all (cached per type): an event nobody
        # wants (most care-plan and status events) ends here, before its body is touched.
        async with reading:
            subscriptions = await store.current()
        wanted = subscriptions.for_type(envelope.type)
        if not wanted:
            return None
        body = delivery.body
        chosen = targets(wanted, envelope.type, {"team": getattr(body, "team", None),
                                                 "notify": getattr(body, "notify", None)})
        if not chosen:
            return None
        data: dict[str, Any] = body.model_dump(mode="json")
        notice = notice_body(envelope.id, envelope.type, envelope.source, envelope.time, data)
        now = int(time.time() * 1000)
        trace_headers: dict[str, str] = {}
        inject_headers(trace_headers)
        traceparent = trace_headers.get("traceparent", "")
        jobs = [
            DeliveryJob.new(
                event_id=envelope.id, event_type=envelope.type, subscription_id=sub.id,
                channel=sub.channel, endpoint=endpoint_key(sub), body=notice, now_ms=now,
                traceparent=traceparent,
            )
            for sub in chosen
        ]
        log.debug("notifications_matched", event_id=envelope.id, type=envelope.type,
                  matched=len(jobs))
        # Enqueued by the consumer with the rest of the poll's jobs, in one script call,
        # before the poll is committed.
        return Deferred(sink, jobs)

    return handle


class JobSink:
    """Enqueues a poll's delivery jobs in one atomic step (idempotent: a job's id is its
    subscription and event), then wakes the dispatcher if any job was new."""

    def __init__(self, queue: JobQueue, on_enqueued: Callable[[], None]) -> None:
        self.queue = queue
        self.on_enqueued = on_enqueued

    # At most this many jobs per script call: a poll of 200 events matching several
    # subscriptions each must not hold Redis in one long script.
    max_jobs_per_call = 256

    async def apply_all(self, items: Sequence[list[DeliveryJob]]) -> None:
        jobs = [job for batch in items for job in batch]
        created = 0
        for start in range(0, len(jobs), self.max_jobs_per_call):
            created += await self.queue.enqueue_many(
                jobs[start:start + self.max_jobs_per_call])
        if created:
            self.on_enqueued()
        log.debug("notifications_enqueued", records=len(items), jobs=len(jobs), new=created)


def register(
    runtime: Runtime, store: SubscriptionStore, queue: JobQueue,
    on_enqueued: Callable[[], None],
) -> None:
    handle = make_handler(store, queue, on_enqueued)
    topics = runtime.topics
    # One handler for every type: a notice is the event itself, whatever its body.
    subscribe(runtime, topic=topics.referrals, group="notifications",
              dlq_topic=topics.dlq_notifications,
              handlers={ReferralCreated: handle, ReferralStatusChanged: handle,
                        EscalationEvent: handle})
    subscribe(runtime, topic=topics.care_plans, group="notifications-careplans",
              dlq_topic=topics.dlq_notifications, handlers={CarePlanView: handle})
    subscribe(runtime, topic=topics.pathway_status, group="notifications-status",
              dlq_topic=topics.dlq_notifications, handlers={PathwayStatus: handle})
