"""Webhook delivery on the real broker and Redis, with the service and receivers as processes.

One run, several subscribers, each endpoint misbehaving in its own way:

* ``flaky``       fails half of its requests for a while (503): every notice arrives exactly
                  once or is dead-lettered, none is lost; the test counts both;
* ``radiology``   a team subscription: only radiology's events, each once;
* ``gone``        answers 410: dead at the first attempt, never retried;
* ``throttled``   answers 429 with ``Retry-After: 1``: retried no sooner than that;
* ``hanging``     never answers in time: its jobs are still pending when everyone else is done
                  (a failing endpoint does not hold up other endpoints or other patients);
* ``recoverable`` fails every request until it is fixed; its dead letters are then redriven
                  with the CLI and arrive exactly once.

Every event is published twice (a redelivery): no subscriber hears of it twice.
"""

from __future__ import annotations

import asyncio
import io
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from notify_support import (
    Jobs,
    allowlist,
    base_env,
    new_namespace,
    referral_created,
    referral_escalated,
    start_notifications,
    start_receiver,
    webhook_sub,
    write_subscriptions,
)

from carepath_contracts.envelope import Envelope
from carepath_contracts.events import (
    NOTIFICATION_ATTEMPTED,
    NOTIFICATION_FAILED,
    NOTIFICATION_REDRIVEN,
)
from carepath_contracts.topics import Topics
from carepath_notifications.cli import list_dead_letters, redrive_command
from carepath_runtime.kafka_broker import make_broker, publish_all
from carepath_runtime.settings import Settings
from support.observe import received_webhooks, wait_until
from support.processes import ServiceProcess

pytestmark = [pytest.mark.kafka, pytest.mark.redis]

N = 40
MAX_ATTEMPTS = 4
CREATED = "carepath.referral.created.v1"
ESCALATED = "carepath.referral.escalated.v1"


@dataclass
class Run:
    ns: str
    a: ServiceProcess  # flaky for a while, plus fixed-status and hanging paths
    b: ServiceProcess  # fails every request until told otherwise
    service: ServiceProcess
    jobs: Jobs
    events: list[str]
    teams: dict[str, str]
    escalations: list[str]


@pytest.fixture(scope="module")
def run(kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[Run]:
    ns = new_namespace(kafka_bootstrap, "nwh")
    a = start_receiver(ns, "a", "--fail-rate", "0.5", "--fail-for-requests", "120",
                       "--seed", "5")
    b = start_receiver(ns, "b", "--fail-rate", "1.0")
    subs = [
        webhook_sub("flaky", f"{a.url}/webhook/flaky"),
        webhook_sub("radiology", f"{a.url}/webhook/radiology", ["carepath.referral.*"],
                    kind="team", team="radiology"),
        webhook_sub("gone", f"{a.url}/status/410"),
        webhook_sub("throttled", f"{a.url}/status/429?retry_after=1", [ESCALATED]),
        webhook_sub("hanging", f"{a.url}/slow/3"),
        webhook_sub("recoverable", f"{b.url}/webhook/recoverable"),
    ]
    path = write_subscriptions(tmp_path_factory.mktemp("subs") / "subs.json", subs)
    env = {**base_env(ns, kafka_bootstrap, redis_url), **allowlist(a, b),
           "CAREPATH_SUBSCRIPTIONS_FILE": path,
           "CAREPATH_NOTIFY_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
           "CAREPATH_NOTIFY_HTTP_TIMEOUT_S": "1"}
    service = start_notifications(ns, env)
    topics = Topics(ns)
    teams = {f"ev-d-{i:03d}": ("radiology" if i % 2 else "surgery") for i in range(N)}
    created = [referral_created(topics.referrals, i, teams[f"ev-d-{i:03d}"], "d")
               for i in range(N)]
    escalated = [referral_escalated(topics.referrals, i, "surgery", "d") for i in range(2)]

    async def feed() -> None:
        broker = make_broker(Settings(kafka_bootstrap_servers=kafka_bootstrap), "test-feed")
        await broker.start()
        try:
            await publish_all(broker, created + escalated)
            await publish_all(broker, created + escalated)  # the redelivery
        finally:
            await broker.stop()

    asyncio.run(feed())
    jobs = Jobs(redis_url, ns)
    r = Run(ns, a, b, service, jobs, list(teams), teams,
            [Envelope.from_headers(e.headers).id for e in escalated])
    yield r
    service.stop()
    a.stop()
    b.stop()
    jobs.close()


def settled(r: Run) -> list[tuple[str, str]]:
    return ([(s, e) for s in ("flaky", "gone", "recoverable") for e in r.events]
            + [("radiology", e) for e, t in r.teams.items() if t == "radiology"]
            + [("throttled", e) for e in r.escalations])


@pytest.fixture(scope="module")
def done(run: Run) -> Run:
    assert wait_until(lambda: run.jobs.terminal(settled(run)), timeout=120, interval=0.5), \
        "deliveries did not settle"
    return run


def arrivals(receiver: ServiceProcess, path: str) -> Counter[str]:
    got = received_webhooks(receiver.url)["received"]
    return Counter(w["event"]["id"] for w in got if w["path"] == path)


def dead_letters(ns: str, subscription: str) -> set[str]:
    out = io.StringIO()
    assert list_dead_letters(ns, subscription, limit=10_000, as_json=True, out=out) == 0
    return {orjson.loads(line)["event_id"] for line in out.getvalue().splitlines()}


def test_flaky_receiver_every_notice_once_or_dead_lettered(done: Run) -> None:
    received = arrivals(done.a, "/webhook/flaky")
    dead = dead_letters(done.ns, "flaky")
    delivered = {e for e in done.events if done.jobs.status("flaky", e) == "delivered"}
    assert received_webhooks(done.a.url)["failed"] > 0, "the receiver never failed"
    assert all(n == 1 for n in received.values()), "a notice arrived twice"
    assert set(received) == delivered, "received and recorded deliveries differ"
    assert not (set(received) & dead), "a dead-lettered notice had arrived"
    assert set(received) | dead == set(done.events), "a notice was lost"
    assert len(received) + len(dead) == N
    assert received_webhooks(done.a.url)["rejected"] == 0  # every signature verified
    print(f"flaky: {len(received)} delivered once, {len(dead)} dead-lettered")


def test_team_subscription_hears_only_its_team_once(done: Run) -> None:
    received = arrivals(done.a, "/webhook/radiology")
    radiology = {e for e, t in done.teams.items() if t == "radiology"}
    assert set(received) | dead_letters(done.ns, "radiology") == radiology
    assert all(n == 1 for n in received.values())
    assert not any(done.jobs.status("radiology", e) for e, t in done.teams.items()
                   if t != "radiology")


def test_4xx_is_dead_after_one_attempt(done: Run) -> None:
    assert dead_letters(done.ns, "gone") == set(done.events)
    assert {done.jobs.field("gone", e, "attempts") for e in done.events} == {"1"}
    assert {done.jobs.field("gone", e, "last_status") for e in done.events} == {"410"}


def test_5xx_is_retried_until_the_budget_is_spent(done: Run) -> None:
    assert dead_letters(done.ns, "recoverable") == set(done.events)
    assert {done.jobs.field("recoverable", e, "attempts") for e in done.events} == \
        {str(MAX_ATTEMPTS)}


def test_a_hanging_endpoint_holds_up_nobody(done: Run) -> None:
    states = Counter(done.jobs.status("hanging", e) for e in done.events)
    # Everyone else settled while most of the hanging endpoint's notices still wait.
    assert states["pending"] + states["inflight"] >= N // 2, states
    assert states["inflight"] <= 1  # its concurrency limit


def read_attempts(bootstrap: str, topic: str, want: Any, timeout: float = 30
                  ) -> list[tuple[str, dict[str, Any]]]:
    async def go() -> list[tuple[str, dict[str, Any]]]:
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                    auto_offset_reset="earliest", enable_auto_commit=False)
        await consumer.start()
        out: list[tuple[str, dict[str, Any]]] = []
        try:
            deadline = asyncio.get_running_loop().time() + timeout
            while asyncio.get_running_loop().time() < deadline:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    for rec in records:
                        headers = {k: v.decode() for k, v in rec.headers}
                        out.append((headers["ce_type"], orjson.loads(rec.value)))
                if want(out):
                    break
        finally:
            await consumer.stop()
        return out

    return asyncio.run(go())


def test_attempts_are_published_as_events(done: Run, kafka_bootstrap: str) -> None:
    subs = ("flaky", "gone", "recoverable")
    expected = {(s, e): int(done.jobs.field(s, e, "attempts") or 0)
                for s in subs for e in done.events}

    def complete(events: list[tuple[str, dict[str, Any]]]) -> bool:
        n = Counter((b["subscription_id"], b["event_id"]) for t, b in events
                    if t == NOTIFICATION_ATTEMPTED)
        return all(n[k] >= v for k, v in expected.items())

    events = read_attempts(kafka_bootstrap, Topics(done.ns).notification_attempts, complete)
    attempted: dict[tuple[str, str], set[int]] = {}
    failed: Counter[tuple[str, str]] = Counter()
    for etype, body in events:
        key = (body["subscription_id"], body["event_id"])
        if key not in expected:
            continue
        if etype == NOTIFICATION_ATTEMPTED:
            attempted.setdefault(key, set()).add(body["attempt"])
        elif etype == NOTIFICATION_FAILED:
            failed[key] += 1
            assert body["outcome"] == "failed"
    for key, n in expected.items():
        assert attempted.get(key) == set(range(1, n + 1)), key
        dead = done.jobs.status(*key) == "dead"
        assert failed[key] == (1 if dead else 0), key


def test_429_waits_for_retry_after(done: Run, kafka_bootstrap: str) -> None:
    from datetime import datetime

    def have_all(events: list[tuple[str, dict[str, Any]]]) -> bool:
        return sum(1 for t, b in events if t == NOTIFICATION_ATTEMPTED
                   and b["subscription_id"] == "throttled") >= 2 * MAX_ATTEMPTS

    events = read_attempts(kafka_bootstrap, Topics(done.ns).notification_attempts, have_all)
    for esc in done.escalations:
        times = sorted(datetime.fromisoformat(b["at"]) for t, b in events
                       if t == NOTIFICATION_ATTEMPTED and b["subscription_id"] == "throttled"
                       and b["event_id"] == esc)
        assert len(times) == MAX_ATTEMPTS
        gaps = [(b - a).total_seconds() for a, b in pairwise(times)]
        # Backoff alone would wait at most 1 s with jitter, often far less; Retry-After: 1
        # sets the floor. (A lower bound: the clock can only make the gaps longer.)
        assert min(gaps) >= 0.95, gaps
        assert done.jobs.field("throttled", esc, "last_status") == "429"


def test_redrive_resends_dead_letters_exactly_once(done: Run, kafka_bootstrap: str) -> None:
    assert arrivals(done.b, "/webhook/recoverable") == Counter()
    httpx.post(f"{done.b.url}/control", json={"fail_rate": 0}, timeout=5).raise_for_status()
    out = io.StringIO()
    assert redrive_command(all_=True, subscription="recoverable", namespace=done.ns,
                           out=out) == 0
    assert f"{N} redriven" in out.getvalue()
    assert wait_until(lambda: all(done.jobs.status("recoverable", e) == "delivered"
                                  for e in done.events), timeout=60)
    received = arrivals(done.b, "/webhook/recoverable")
    assert set(received) == set(done.events) and set(received.values()) == {1}
    assert dead_letters(done.ns, "recoverable") == set()
    assert redrive_command(["recoverable:" + done.events[0]], namespace=done.ns,
                           out=io.StringIO()) == 1  # delivered, not dead: skipped
    events = read_attempts(
        kafka_bootstrap, Topics(done.ns).notification_attempts,
        lambda ev: sum(1 for t, _ in ev if t == NOTIFICATION_REDRIVEN) >= N,
    )
    assert sum(1 for t, _ in events if t == NOTIFICATION_REDRIVEN) == N
