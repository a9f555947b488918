"""Fault: two instances of each consuming service share the work; one of each is SIGKILLed
mid-flow and not restarted.

Each pathway, referrals and notifications instance is one member of its consumer group: the
survivor takes over the partitions of the killed one (after the group's session timeout) and
redelivered records change nothing twice. Both referrals instances run the deadline sweep
(due times of seconds, a sweep every 0.5 s): each referral is escalated exactly once whichever
instance sees it first. Both notifications instances claim from the same Redis job queue:
the killed one's leases expire and the survivor delivers those jobs. The live stream (SSE)
answers from the second instance as from the first.

Checked: 0 referrals lost, 0 duplicated, every referral announced by webhook (a notice in
flight at the kill may repeat once, with the same webhook-id), one escalation per referral.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from carepath_testkit.kafka_reading import read_topic
from carepath_testkit.processes import ServiceProcess, Stack, free_port
from support.flow import Feed, settle
from support.observe import wait_until
from support.processes import LOG_DIR, start_stack

pytestmark = [pytest.mark.kafka, pytest.mark.redis, pytest.mark.fault,
              pytest.mark.timeout(900)]

N_EPISODES = 60
CONSUMERS = ("pathway", "referrals", "notifications")
COORDINATOR = {"Authorization": "Bearer dev-coordinator-token"}


@pytest.fixture(scope="module")
def kafka_bootstrap(own_kafka_cluster: Any) -> str:
    """The fault session's own 3-node cluster (tests/fault/conftest.py)."""
    return str(own_kafka_cluster.bootstrap)


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory,
          ) -> Iterator[Stack]:
    from carepath_runtime.kafka_admin import create_topics

    site = Path(tmp_path_factory.mktemp("site")) / "routing.json"
    site.write_text(json.dumps({"due_in": {"urgent": 20, "routine": 25}}))
    ns = f"mi{uuid.uuid4().hex[:8]}"
    asyncio.run(create_topics(kafka_bootstrap, ns))
    s = start_stack(ns, kafka_bootstrap, redis_url, extra_env={
        "CAREPATH_ROUTING_FILE": str(site),
        "CAREPATH_DEADLINE_SCAN_SECONDS": "0.5",
        "CAREPATH_NOTIFY_LEASE_S": "3",
    })
    try:
        for name in CONSUMERS:  # the second instance: same group, same queue, another port
            first = s[name]
            port = free_port()
            twin = ServiceProcess(f"{name}2", first.argv, port,
                                  {**first.env, f"{name.upper()}_PORT": str(port)},
                                  LOG_DIR / f"{ns}-{name}2.log")
            twin.start(timeout=120)
            s.services[f"{name}2"] = twin
    except Exception:
        s.stop()
        raise
    yield s
    s.stop()


def test_the_live_stream_answers_from_either_instance(stack: Stack) -> None:
    for name in ("notifications", "notifications2"):
        with httpx.stream("GET", f"{stack[name].url}/stream", headers=COORDINATOR,
                          timeout=httpx.Timeout(20.0)) as r:
            assert r.status_code == 200, name
            assert r.headers["content-type"].startswith("text/event-stream")


def test_one_of_each_killed_loses_duplicates_nothing_and_escalates_once(
    stack: Stack, redis_url: str, kafka_bootstrap: str
) -> None:
    feed = Feed.of([stack["intake"].url], N_EPISODES, "multi-instance", "ep-mi", pause=0.05)
    feed.start()
    assert feed.wait_posted(N_EPISODES // 3, timeout=120)
    killed_at = time.monotonic()
    for name in CONSUMERS:
        stack[name].kill(signal.SIGKILL)  # no leave-group, no final commit, leases held
    feed.join(timeout=300)
    assert not feed.errors, feed.errors[:3]

    out = settle(redis_url, stack.namespace, feed.expected, stack["receiver"].url,
                 timeout=240)
    settled_s = time.monotonic() - killed_at
    total = sum(len(v) for v in feed.expected.values())
    print(f"\nmulti-instance: {N_EPISODES} episodes, {total} referrals expected, "
          f"{out.referrals} found, lost {len(out.lost)}, duplicated {len(out.duplicated)}, "
          f"webhooks {sum(out.webhook_counts.values())} for {len(out.webhook_counts)} "
          f"referrals; settled {settled_s:.0f}s after the kills")
    assert out.lost == {}, list(out.lost.items())[:5]
    assert out.duplicated == {}, list(out.duplicated.items())[:5]
    assert out.extra == {}, list(out.extra.items())[:5]
    assert out.referrals == total
    assert set(out.webhook_counts) == out.referral_ids, "every referral announced"
    repeated = [k for k, n in out.webhook_counts.items() if n > 1]
    assert len(repeated) <= 1, repeated  # at most the notice in flight at the kill

    # Nobody accepts anything: every referral falls due and is escalated, exactly once,
    # by whichever referrals instance's sweep saw it first (the survivor, here).
    topic = f"{stack.namespace}.referrals"

    def escalations() -> Counter[str]:
        counts: Counter[str] = Counter()
        for rec in asyncio.run(read_topic(kafka_bootstrap, topic)):
            if dict(rec.headers).get("ce_type") == b"carepath.referral.escalated.v1":
                counts[json.loads(rec.value)["referral_id"]] += 1
        return counts

    assert wait_until(lambda: len(escalations()) >= total, timeout=120, interval=2.0)
    counts = escalations()
    assert set(counts) == out.referral_ids
    assert max(counts.values()) == 1, [k for k, n in counts.items() if n > 1][:5]
