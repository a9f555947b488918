"""The delivery worker: claims due jobs, sends them concurrently, records each outcome.

One dispatcher loop claims due jobs in batches (at most ``max_inflight`` held by this
process, at most the endpoint limit in flight per endpoint across all processes) and runs each
in its own task. A task sends, asks the pure :func:`decide` what follows, and completes the job
in one Redis step that also queues the attempt's events and, when the endpoint has more due
jobs, claims the next one, so a busy endpoint drains without waiting for the dispatcher. The
completions of attempts that finish together share that step (:class:`CompletionBatcher`:
one script call, one round trip, for every outcome ready meanwhile). A slow or failing
endpoint only ever occupies its own slots: other endpoints' jobs are claimed and sent
meanwhile, a task that ends while every slot was taken wakes the dispatcher for its slot, and
nothing here holds a Kafka partition.

The claim itself reports when the next job is due, so an idle dispatcher sleeps until then
(or the poll interval, or a wake-up from the consumer) without a round trip of its own.
Claims and outbox flushes are coalesced: at most one per ``min_claim_gap_s`` /
``min_flush_gap_s``, and the first after a quiet spell at once.

Beside it: a lease renewer (our claimed jobs stay ours while we work on them), a reaper (jobs
of a worker that died return to the due set when their lease runs out) and the outbox flusher
(attempt events to Kafka, at least once, with deterministic ids).

A crash between a receiver's 2xx and the completion repeats that notice after the lease,
with the same ``webhook-id``: at most as many per endpoint as its limit allows in flight (one
with the default limit of 1).

Redis being away is waited out, never counted (:mod:`carepath_runtime.transient`): a job whose
send went through is completed by retrying the completion until Redis takes it (its lease is
renewed meanwhile, and the dispatcher neither reaps nor claims while a completion is pending),
so a Redis hiccup at that moment never causes a second delivery. A job that could not even be
looked up is let go unattempted; its lease runs out and it is claimed again.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from faststream.kafka import KafkaBroker

from carepath_contracts.topics import Topics
from carepath_notifications.attempt_events import attempt_events
from carepath_notifications.completion_batcher import CompletionBatcher
from carepath_notifications.domain.attempts import AttemptResult, decide
from carepath_notifications.domain.jobs import DeliveryJob
from carepath_notifications.domain.retry_policy import RetryPolicy
from carepath_notifications.domain.subscriptions import Subscription
from carepath_notifications.job_queue import CompletionRequest, JobQueue, decode_outbox_entry
from carepath_notifications.subscription_store import SubscriptionStore
from carepath_runtime.dependency_health import DependencyHealth
from carepath_runtime.error_text import describe
from carepath_runtime.kafka_broker import publish_all
from carepath_runtime.log import get_logger
from carepath_runtime.observability.metrics import NOTIFICATION_JOBS
from carepath_runtime.observability.tracing import continued_span
from carepath_runtime.transient import REDIS, transient_dependency

log = get_logger(__name__)

Sender = Callable[[Subscription, DeliveryJob], Awaitable[AttemptResult]]
MAX_CHAIN = 50  # jobs one task takes from one endpoint before yielding to the dispatcher
OUTBOX_BATCH = 200  # outbox entries published per round


@dataclass(frozen=True)
class WorkerConfig:
    max_inflight: int = 64
    lease_s: float = 15.0
    poll_s: float = 0.2
    reap_every_s: float = 1.0
    outbox_every_s: float = 0.5
    # At most one claim per gap, to coalesce a burst of wake-ups into one; a wake-up after a
    # quiet spell claims at once (the gap only applies to the time since the last claim).
    min_claim_gap_s: float = 0.01
    # Likewise for outbox flushes: under load, one flush carries many attempts' events.
    min_flush_gap_s: float = 0.05
    stop_grace_s: float = 10.0
    # Retrying a completion Redis did not take: first after this, doubling, capped.
    complete_backoff_s: float = 0.05
    complete_max_backoff_s: float = 1.0


def now_ms() -> int:
    return int(time.time() * 1000)


def coalesce_delay(since_last_s: float, gap_s: float) -> float:
    """How long to hold a claim (or flush) back so that there is at most one per ``gap_s``:
    the rest of the gap since the last one, and nothing after a quiet spell."""
    return max(0.0, gap_s - since_last_s)


async def _wait(event: asyncio.Event, seconds: float) -> None:
    """Until ``event`` is set or ``seconds`` passed (``asyncio.timeout``: unlike 3.11's
    ``wait_for`` it never swallows a cancellation)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()


class DeliveryWorker:
    def __init__(
        self,
        queue: JobQueue,
        store: SubscriptionStore,
        senders: dict[str, Sender],
        policy: RetryPolicy,
        topics: Topics,
        broker: KafkaBroker,
        config: WorkerConfig | None = None,
        rng: random.Random | None = None,
        health: DependencyHealth | None = None,
    ) -> None:
        self.health = health
        self._completing = 0  # completions waiting for Redis: no reaping, no claiming
        self.queue = queue
        self.store = store
        self.senders = senders
        self.policy = policy
        self.topics = topics
        self.broker = broker
        self.config = config or WorkerConfig()
        self.owner = f"w-{uuid.uuid4().hex[:12]}"
        self._rng = rng or random.Random()
        self._held: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loops: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()
        self._outbox_wake = asyncio.Event()
        self._stopping = False  # no new claims
        self._closed = False  # background loops end
        self._closing = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._full = False  # the dispatcher waits because every slot is taken
        # Outcomes that finish together are recorded together: one round trip per batch.
        self.completions = CompletionBatcher(queue.complete_many,
                                             max_batch=max(1, self.config.max_inflight))
        self.delivered = 0  # counters for logs and tests; not patient data

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        self._loops = [
            asyncio.create_task(self._dispatch_loop(), name="notify-dispatch"),
            asyncio.create_task(self._renew_loop(), name="notify-renew"),
            asyncio.create_task(self._outbox_loop(), name="notify-outbox"),
        ]

    def wake(self) -> None:
        """New jobs were enqueued: claim now rather than at the next poll."""
        self._wake.set()

    async def stop(self) -> None:
        """Stop claiming, let attempts in flight finish (up to the grace), hand back the rest."""
        self._stopping = True
        self._wake.set()
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=self.config.stop_grace_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.queue.release(sorted(self._held), self.owner, now_ms())
        self._held.clear()
        self._closed = True
        self._closing.set()
        self._outbox_wake.set()
        _, stuck = await asyncio.wait(self._loops, timeout=5.0)
        for loop in stuck:
            loop.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.flush_outbox()

    # ---- loops -----------------------------------------------------------------------------

    async def _dispatch_loop(self) -> None:
        last_reap = 0.0
        last_claim = float("-inf")
        while not self._stopping:
            self._wake.clear()  # before looking: a wake-up from now on is not lost
            next_due: int | None = None
            if self._completing:
                # A finished send is still being recorded: reaping now could hand its job
                # out again (a second delivery). Wait until Redis took the completion.
                await asyncio.sleep(self.config.complete_backoff_s)
                continue
            try:
                if time.monotonic() - last_reap >= self.config.reap_every_s:
                    last_reap = time.monotonic()
                    if self._held:  # our leases first: after an outage they may have run out
                        await self.queue.renew(sorted(self._held), self.owner,
                                               self._lease_until())
                    if await self.queue.reap(now_ms()):
                        log.info("notify_leases_reclaimed")
                last_claim = time.monotonic()
                claimed, next_due = await self._claim()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("notify_dispatch_failed", error=f"{type(exc).__name__}: {exc}")
                claimed = 0
            if claimed:
                continue
            await self._idle(next_due)
            # Coalesce wake-ups: a burst of enqueued events is one claim, not one each. Only
            # the rest of the gap since the last claim: after a quiet spell, none.
            delay = coalesce_delay(time.monotonic() - last_claim, self.config.min_claim_gap_s)
            if delay > 0 and not self._stopping:
                await asyncio.sleep(delay)

    async def _idle(self, next_due: int | None) -> None:
        wait = self.config.poll_s
        if next_due is not None:
            wait = min(wait, max(0.0, (next_due - now_ms()) / 1000))
        if len(self._tasks) >= self.config.max_inflight:
            wait = self.config.poll_s
            self._full = True
        await _wait(self._wake, wait)
        self._full = False

    async def _claim(self) -> tuple[int, int | None]:
        """Claim what is due and start it; return how many, and when the next one is due."""
        room = self.config.max_inflight - len(self._tasks)
        if room <= 0 or self._stopping:
            return 0, None
        claimed = await self.queue.claim_due(now_ms(), room, self._lease_until(), self.owner)
        for job in claimed.jobs:
            self._held.add(job.id)
            task = asyncio.create_task(self._run(job))
            self._tasks.add(task)
            task.add_done_callback(self._task_done)
        return len(claimed.jobs), claimed.next_due_ms

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self._full:  # a slot is free: claim for it now, not at the next poll
            self._full = False
            self._wake.set()

    async def _renew_loop(self) -> None:
        while not self._closed:
            await _wait(self._closing, self.config.lease_s / 3)
            if self._closed:
                return
            try:
                await self.queue.renew(sorted(self._held), self.owner, self._lease_until())
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("notify_renew_failed", error=f"{type(exc).__name__}: {exc}")

    async def _outbox_loop(self) -> None:
        last_flush = float("-inf")
        while not self._closed:
            self._outbox_wake.clear()
            await _wait(self._outbox_wake, self.config.outbox_every_s)
            # Let a burst of completions gather: one flush for many attempts' events.
            delay = coalesce_delay(time.monotonic() - last_flush, self.config.min_flush_gap_s)
            if delay > 0:
                await _wait(self._closing, delay)
            if self._closed:
                return
            last_flush = time.monotonic()
            try:
                await self.flush_outbox()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("notify_outbox_flush_failed", error=f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(1.0)

    async def flush_outbox(self, batch: int = OUTBOX_BATCH) -> int:
        """Publish queued attempt events (awaited, acks=all), then drop them from the outbox."""
        sent = 0
        async with self._flush_lock:
            while True:
                entries = await self.queue.outbox_peek(batch)
                if not entries:
                    return sent
                await publish_all(self.broker, [decode_outbox_entry(e) for e in entries])
                await self.queue.outbox_trim(entries)
                sent += len(entries)
                if len(entries) < batch:  # that was all of it: no round trip to learn so
                    return sent

    # ---- one job ---------------------------------------------------------------------------

    def _lease_until(self) -> int:
        return now_ms() + int(self.config.lease_s * 1000)

    async def _run(self, job: DeliveryJob) -> None:
        current: DeliveryJob | None = job
        chained = 0
        while current is not None:
            self._held.add(current.id)
            try:
                chain = not self._stopping and chained < MAX_CHAIN
                nxt = await self._attempt(current, chain)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Redis unreachable or a bug: stop renewing the lease, so that it runs out
                # and the reaper puts the job back on the due set.
                self._held.discard(current.id)
                log.error("notify_attempt_failed", subscription=current.subscription_id,
                          event_id=current.event_id, error=describe(exc, 300),
                          transient=transient_dependency(exc) is not None)
                return
            self._held.discard(current.id)
            current, chained = nxt, chained + 1
        if chained >= MAX_CHAIN:
            self.wake()

    async def _complete_backoff(self, job: DeliveryJob, tries: int, exc: Exception) -> None:
        if self.health is not None:
            self.health.report_down(REDIS, describe(exc, 200))
        log.warning("notify_complete_retrying", subscription=job.subscription_id,
                    event_id=job.event_id, tries=tries, error=describe(exc, 200))
        delay = min(self.config.complete_backoff_s * 2 ** min(tries - 1, 10),
                    self.config.complete_max_backoff_s)
        if self.health is not None:
            with self.health.waiting_on(REDIS):
                await asyncio.sleep(delay)
        else:
            await asyncio.sleep(delay)

    async def _attempt(self, job: DeliveryJob, chain: bool) -> DeliveryJob | None:
        attempt = job.attempts + 1
        sub = await self.store.find(job.subscription_id)
        if sub is None:
            result = AttemptResult("give_up", None, "subscription removed or inactive")
        else:
            sender = self.senders.get(job.channel)
            if sender is None:
                result = AttemptResult("give_up", None, f"no sender for channel {job.channel}")
            else:
                with continued_span(f"deliver {job.channel}", job.traceparent,
                                    {"carepath.notification.channel": job.channel}):
                    result = await sender(sub, job)
        decision = decide(attempt, result, self.policy, self._rng)
        NOTIFICATION_JOBS.labels(job.channel, decision.kind).inc()
        at = datetime.now(UTC)
        now = now_ms()
        events = attempt_events(self.topics, job, attempt, decision, result.status_code,
                                result.error, at, result.cause)
        tries = 0
        try:
            while True:
                try:
                    done = await self.completions.complete(CompletionRequest(
                        job, owner=self.owner, kind=decision.kind, now_ms=now,
                        attempt=attempt, next_ms=now + int(decision.delay_s * 1000),
                        status_code=result.status_code, error=result.error,
                        reason=decision.reason, events=events,
                        chain_lease_until_ms=self._lease_until() if chain else None,
                    ))
                    break
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if transient_dependency(exc) is None:
                        raise
                    # The send happened; only recording it failed. Keep the job (its lease
                    # is renewed) and retry until Redis takes it: no second delivery.
                    tries += 1
                    if tries == 1:
                        self._completing += 1
                    await self._complete_backoff(job, tries, exc)
        finally:
            if tries:
                self._completing -= 1
        if tries:
            log.info("notify_complete_recorded", event_id=job.event_id, tries=tries)
        self._outbox_wake.set()
        if decision.kind == "delivered":
            self.delivered += 1
            log.debug("notification_delivered", subscription=job.subscription_id,
                     event_id=job.event_id, channel=job.channel, attempt=attempt,
                     status=result.status_code)
        elif decision.kind == "retry":
            log.info("notification_retry", subscription=job.subscription_id,
                     event_id=job.event_id, attempt=attempt, status=result.status_code,
                     delay_s=round(decision.delay_s, 3))
            self._wake.set()
        else:
            log.warning("notification_dead_lettered", subscription=job.subscription_id,
                        event_id=job.event_id, attempt=attempt, status=result.status_code,
                        cause=result.cause, reason=(decision.reason or "")[:200])
        if not done.applied:
            log.info("notification_result_superseded", subscription=job.subscription_id,
                     event_id=job.event_id)
        return done.next_job
