"""The delivery worker on a real Redis queue with scripted senders (no HTTP, no Kafka): the
limits on attempts in flight (per endpoint, across processes, and per process), a slow
endpoint that holds only its own slots, outcomes that finish together recorded together, and
a dead worker's jobs sent again by another with the same ``webhook-id``, and outcomes Redis
did not take retried without a second send."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis.asyncio as aioredis
import redis.exceptions as redis_errors
from pydantic import SecretStr

from carepath_contracts.topics import Topics
from carepath_notifications.completion_batcher import CompletionBatcher
from carepath_notifications.destination_resolver import DestinationGuard
from carepath_notifications.domain.attempts import AttemptResult
from carepath_notifications.domain.destination_guard import Allowlist
from carepath_notifications.domain.jobs import DeliveryJob
from carepath_notifications.domain.retry_policy import RetryPolicy
from carepath_notifications.domain.subscriptions import Subscription
from carepath_notifications.job_queue import JobQueue
from carepath_notifications.subscription_store import SubscriptionStore
from carepath_notifications.worker import DeliveryWorker, Sender, WorkerConfig

pytestmark = [pytest.mark.redis]

CREATED = "carepath.referral.created.v1"
SECRET = SecretStr("whsec_" + "QUFB" * 11)
OK = AttemptResult("success", 200, None)
# The senders are scripted: no destination is ever resolved or connected to.
GUARD = DestinationGuard(Allowlist(), lambda host, port: [])


class StubBroker:
    """Takes the attempt events the outbox flusher publishes."""

    def __init__(self) -> None:
        self.published = 0

    async def publish(self, *_: Any, **__: Any) -> None:
        self.published += 1


@dataclass
class Recorder:
    """A sender that counts what is in flight, per endpoint and in all, and what it sent."""

    delay_s: float = 0.01
    hold: dict[str, asyncio.Event] = field(default_factory=dict)  # endpoint -> released when set
    result: Callable[[DeliveryJob], AttemptResult] = lambda _: OK
    now: Counter[str] = field(default_factory=Counter)
    peak: Counter[str] = field(default_factory=Counter)
    total: int = 0
    peak_total: int = 0
    sent: list[tuple[str, str]] = field(default_factory=list)  # (job id, webhook-id)

    async def __call__(self, sub: Subscription, job: DeliveryJob) -> AttemptResult:
        self.now[job.endpoint] += 1
        self.total += 1
        self.peak[job.endpoint] = max(self.peak[job.endpoint], self.now[job.endpoint])
        self.peak_total = max(self.peak_total, self.total)
        self.sent.append((job.id, job.message_id))
        try:
            gate = self.hold.get(job.endpoint)
            if gate is not None:
                await gate.wait()
            await asyncio.sleep(self.delay_s)
            return self.result(job)
        finally:
            self.now[job.endpoint] -= 1
            self.total -= 1

    def delivered(self, endpoint: str) -> int:
        return sum(1 for job_id, _ in self.sent if job_id.startswith(f"{endpoint}:"))


@pytest.fixture()
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


def hook(sid: str) -> Subscription:
    return Subscription(id=sid, subscriber=sid, kind="system", event_types=["*"],
                        channel="webhook", url=f"https://{sid}.example/hook", secret=SECRET)


def jobs(endpoint: str, n: int, at: int = 0) -> list[DeliveryJob]:
    # The subscription id doubles as the endpoint: one subscription per endpoint here.
    return [DeliveryJob.new(event_id=f"ev{i}", event_type=CREATED, subscription_id=endpoint,
                            channel="webhook", endpoint=endpoint, body=b'{"id":"ev%d"}' % i,
                            now_ms=at) for i in range(n)]


class Setup:
    def __init__(self, redis: aioredis.Redis, endpoints: list[str], limit: int) -> None:
        self.redis = redis
        self.namespace = f"wk{uuid.uuid4().hex[:10]}"
        self.endpoints = endpoints
        self.limit = limit
        self.store = SubscriptionStore(redis, self.namespace, [hook(e) for e in endpoints],
                                       guard=GUARD)
        self.queue = JobQueue(redis, self.namespace, endpoint_limit=limit)
        self.workers: list[DeliveryWorker] = []

    def worker(self, sender: Sender, **config: Any) -> DeliveryWorker:
        worker = DeliveryWorker(
            JobQueue(self.redis, self.namespace, endpoint_limit=self.limit), self.store,
            {"webhook": sender}, RetryPolicy(max_attempts=3, base_delay_s=0.0, max_delay_s=0.0),
            Topics(self.namespace), StubBroker(),  # type: ignore[arg-type]
            WorkerConfig(**{"poll_s": 0.05, **config}),
        )
        self.workers.append(worker)
        return worker

    async def close(self) -> None:
        for worker in self.workers:
            with contextlib.suppress(Exception):
                await worker.stop()
        keys = [k async for k in self.redis.scan_iter(match=f"{self.namespace}:*")]
        if keys:
            await self.redis.delete(*keys)


@pytest.fixture()
async def setups(redis: aioredis.Redis) -> AsyncIterator[Callable[[list[str], int], Setup]]:
    made: list[Setup] = []

    def make(endpoints: list[str], limit: int) -> Setup:
        made.append(Setup(redis, endpoints, limit))
        return made[-1]

    yield make
    for setup in made:
        await setup.close()


async def until(check: Callable[[], bool] | Callable[[], Awaitable[bool]],
                timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        outcome = check()
        if outcome if isinstance(outcome, bool) else await outcome:
            return
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_attempts_in_flight_are_bounded_per_endpoint_and_per_process(
    setups: Callable[[list[str], int], Setup],
) -> None:
    endpoints = [f"ep{i}" for i in range(6)]
    setup = setups(endpoints, 3)
    for endpoint in endpoints:
        await setup.queue.enqueue_many(jobs(endpoint, 15))
    sender = Recorder(delay_s=0.02)
    worker = setup.worker(sender, max_inflight=10)
    worker.start()
    await until(lambda: worker.delivered == 90)
    # at the limits, and never over them
    assert max(sender.peak.values()) == 3 and set(sender.peak) == set(endpoints)
    assert sender.peak_total == 10
    assert sorted(job_id for job_id, _ in sender.sent) == sorted(
        j.id for e in endpoints for j in jobs(e, 15))  # each once
    assert (await setup.queue.counts())["inflight"] == 0


async def test_the_endpoint_limit_holds_across_workers(
    setups: Callable[[list[str], int], Setup],
) -> None:
    setup = setups(["shared"], 2)
    await setup.queue.enqueue_many(jobs("shared", 40))
    sender = Recorder(delay_s=0.01)  # one sender sees both processes' attempts
    first, second = setup.worker(sender), setup.worker(sender)
    first.start()
    second.start()
    await until(lambda: first.delivered + second.delivered == 40)
    assert sender.peak["shared"] == 2
    assert len(sender.sent) == 40 == len({job_id for job_id, _ in sender.sent})


async def test_a_slow_endpoint_holds_only_its_own_slots(
    setups: Callable[[list[str], int], Setup],
) -> None:
    setup = setups(["slow", "fast"], 4)
    await setup.queue.enqueue_many(jobs("slow", 30, at=0))  # due first: claimed first
    await setup.queue.enqueue_many(jobs("fast", 60, at=1))
    stuck = asyncio.Event()
    sender = Recorder(delay_s=0.002, hold={"slow": stuck})
    worker = setup.worker(sender, max_inflight=6)
    worker.start()
    # Every fast notice arrives while the slow endpoint answers none of its four.
    await until(lambda: sender.delivered("fast") == 60)
    assert sender.now["slow"] == 4 and sender.delivered("slow") == 4
    assert sender.peak["fast"] <= 2  # what the slow endpoint left of the six slots
    stuck.set()
    await until(lambda: worker.delivered == 90)
    assert sender.peak["slow"] == 4


async def test_a_freed_slot_is_claimed_for_at_once_when_the_worker_was_full(
    setups: Callable[[list[str], int], Setup],
) -> None:
    setup = setups(["slow", "fast"], 1)
    stuck = asyncio.Event()
    sender = Recorder(delay_s=0.0, hold={"slow": stuck})
    # One slot, a long poll: only a wake-up from the ending task can claim in time.
    worker = setup.worker(sender, max_inflight=1, poll_s=30.0)
    await setup.queue.enqueue_many(jobs("slow", 1))
    worker.start()
    await until(lambda: sender.now["slow"] == 1)
    await setup.queue.enqueue_many(jobs("fast", 1))  # due, but no slot (and no wake-up)
    await asyncio.sleep(0.1)
    assert sender.delivered("fast") == 0
    stuck.set()
    await until(lambda: sender.delivered("fast") == 1, timeout=5.0)


async def test_outcomes_that_finish_together_share_a_round_trip(
    setups: Callable[[list[str], int], Setup],
) -> None:
    setup = setups(["busy"], 8)
    await setup.queue.enqueue_many(jobs("busy", 80))
    sender = Recorder(delay_s=0.005)
    worker = setup.worker(sender, max_inflight=8)
    worker.start()
    await until(lambda: worker.delivered == 80)
    # 80 outcomes (and their chained claims) in far fewer calls than one each
    assert worker.completions.calls < 60
    delivered = [await setup.queue.get(j.id) for j in jobs("busy", 80)]
    assert all(d is not None and d.status == "delivered" and d.attempts == 1
               for d in delivered)


async def test_a_retry_is_sent_again_with_the_same_webhook_id(
    setups: Callable[[list[str], int], Setup],
) -> None:
    setup = setups(["flaky"], 4)
    await setup.queue.enqueue_many(jobs("flaky", 10))
    tried: set[str] = set()

    def first_fails(job: DeliveryJob) -> AttemptResult:
        if job.id in tried:
            return OK
        tried.add(job.id)
        return AttemptResult("retry", 503, "HTTP 503")

    sender = Recorder(delay_s=0.001, result=first_fails)
    worker = setup.worker(sender)
    worker.start()
    await until(lambda: worker.delivered == 10)
    by_job: dict[str, set[str]] = {}
    for job_id, message_id in sender.sent:
        by_job.setdefault(job_id, set()).add(message_id)
    assert len(sender.sent) == 20 and all(len(ids) == 1 for ids in by_job.values())


async def test_a_dead_workers_jobs_are_sent_again_by_another_with_the_same_webhook_id(
    setups: Callable[[list[str], int], Setup],
) -> None:
    setup = setups(["ep"], 3)
    await setup.queue.enqueue_many(jobs("ep", 9))
    never = Recorder(hold={"ep": asyncio.Event()})  # its sends never come back
    doomed = setup.worker(never, lease_s=0.5)
    doomed.start()
    await until(lambda: never.now["ep"] == 3)
    # The process dies: its tasks and loops end with no release and no completion.
    for task in [*doomed._tasks, *doomed._loops]:
        task.cancel()
    await asyncio.gather(*doomed._tasks, *doomed._loops, return_exceptions=True)
    setup.workers.remove(doomed)
    sender = Recorder(delay_s=0.001)
    heir = setup.worker(sender, reap_every_s=0.1)
    heir.start()
    await until(lambda: heir.delivered == 9)
    first_tries = dict(never.sent)
    again = [(job_id, mid) for job_id, mid in sender.sent if job_id in first_tries]
    assert len(again) == 3 and all(first_tries[job_id] == mid for job_id, mid in again)
    reclaimed = [await setup.queue.get(job_id) for job_id in first_tries]
    assert all(j is not None and j.reclaimed == 1 and j.status == "delivered"
               for j in reclaimed)


class Refusing(JobQueue):
    """A queue whose first ``failures`` completion calls find Redis away (after sending)."""

    failures = 2

    async def complete_many(self, requests: Any) -> Any:
        if self.failures > 0:
            self.failures -= 1
            raise redis_errors.ConnectionError("Connection reset by peer")
        return await super().complete_many(requests)


async def test_outcomes_redis_did_not_take_are_retried_without_sending_again(
    setups: Callable[[list[str], int], Setup],
) -> None:
    setup = setups(["ep"], 4)
    await setup.queue.enqueue_many(jobs("ep", 12))
    sender = Recorder(delay_s=0.005)
    worker = setup.worker(sender, complete_backoff_s=0.01)
    refusing = Refusing(setup.redis, setup.namespace, endpoint_limit=4)
    worker.queue = refusing
    worker.completions = CompletionBatcher(refusing.complete_many)
    worker.start()
    await until(lambda: worker.delivered == 12)
    assert refusing.failures == 0
    assert len(sender.sent) == 12  # each sent once: the outcome was retried, not the send
    done = [await setup.queue.get(j.id) for j in jobs("ep", 12)]
    assert all(d is not None and d.status == "delivered" and d.attempts == 1 for d in done)
