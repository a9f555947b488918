"""Fault: services SIGKILLed and restarted while 200 episodes flow.

Every episode must still yield its referrals exactly once: none lost (each expected step has
a referral) and none duplicated (no extra referral, and no referral announced twice to the
webhook receiver). The test counts both.
"""

from __future__ import annotations

import asyncio
import random
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from carepath_testkit.episodes import random_episode
from carepath_testkit.processes import Stack
from support.api import INTAKE
from support.episodes import expected_steps
from support.observe import received_webhooks, referrals_in_redis, wait_until
from support.processes import start_stack

pytestmark = [pytest.mark.kafka, pytest.mark.redis, pytest.mark.fault]

N_EPISODES = 200


@pytest.fixture()
def stack(kafka_bootstrap: str, redis_url: str) -> Iterator[Stack]:
    from carepath_runtime.kafka_admin import create_topics

    ns = f"fault{uuid.uuid4().hex[:8]}"
    asyncio.run(create_topics(kafka_bootstrap, ns))
    s = start_stack(ns, kafka_bootstrap, redis_url)
    yield s
    s.stop()


@pytest.mark.parametrize("victim", ["pathway", "referrals", "notifications"])
def test_sigkill_mid_flow_loses_and_duplicates_nothing(
    stack: Stack, redis_url: str, victim: str
) -> None:
    rng = random.Random(f"fault-{victim}")
    episodes = [random_episode(rng, f"ep-{victim}-{i:04d}") for i in range(N_EPISODES)]
    expected = {ep["episode_id"]: expected_steps(ep) for ep in episodes}
    posted: list[str] = []
    errors: list[str] = []

    def feed() -> None:
        with httpx.Client(timeout=15) as client:
            for ep in episodes:
                r = client.post(f"{stack['intake'].url}/episodes", json=ep, headers=INTAKE)
                if r.status_code == 202:
                    posted.append(ep["episode_id"])
                else:
                    errors.append(f"{r.status_code} {r.text[:200]}")
                time.sleep(0.01)

    feeder = threading.Thread(target=feed)
    feeder.start()
    assert wait_until(lambda: len(posted) >= N_EPISODES // 3, timeout=60)
    stack[victim].kill(signal.SIGKILL)  # no shutdown hooks, no final commit
    time.sleep(1.0)
    stack[victim].start()
    feeder.join(timeout=120)
    assert not errors, errors[:3]
    assert len(posted) == N_EPISODES

    total_expected = sum(len(v) for v in expected.values())

    def all_referrals() -> dict[str, list[dict[str, object]]]:
        return {ep_id: referrals_in_redis(redis_url, stack.namespace, ep_id)
                for ep_id in expected}

    def complete() -> bool:
        refs = all_referrals()
        return sum(len(v) for v in refs.values()) >= total_expected

    assert wait_until(complete, timeout=180, interval=1.0)
    refs = all_referrals()
    lost = {ep: sorted(set(want) - {r["step"] for r in refs[ep]})  # type: ignore[misc]
            for ep, want in expected.items()}
    lost = {ep: steps for ep, steps in lost.items() if steps}
    duplicated = {ep: [s for s, n in Counter(r["step"] for r in refs[ep]).items() if n > 1]
                  for ep in expected}
    duplicated = {ep: steps for ep, steps in duplicated.items() if steps}
    extra = {ep: sorted({str(r["step"]) for r in refs[ep]} - set(want))
             for ep, want in expected.items()}
    extra = {ep: steps for ep, steps in extra.items() if steps}
    assert lost == {}, f"lost referrals: {list(lost.items())[:5]}"
    assert duplicated == {}, f"duplicated referrals: {list(duplicated.items())[:5]}"
    assert extra == {}, f"unexpected referrals: {list(extra.items())[:5]}"
    assert sum(len(v) for v in refs.values()) == total_expected

    # Each referral announced to the webhook receiver exactly once.
    def webhooks() -> Counter[str]:
        got = received_webhooks(stack["receiver"].url)["received"]
        return Counter(str(w["event"]["data"]["referral_id"]) for w in got)

    assert wait_until(lambda: len(webhooks()) >= total_expected, timeout=120, interval=1.0)
    counts = webhooks()
    referral_ids = {str(r["referral_id"]) for v in refs.values() for r in v}
    assert set(counts) == referral_ids, "every referral announced, nothing else"
    if victim != "notifications":
        # A kill upstream never duplicates a notification: the dedup marker holds.
        assert max(counts.values()) == 1, [k for k, n in counts.items() if n > 1][:5]
    else:
        # Killed between a receiver's 2xx and the marker write, at most the in-flight
        # notice is repeated, always with the same webhook-id so the receiver can drop it.
        repeated = [k for k, n in counts.items() if n > 1]
        assert len(repeated) <= 1, repeated
