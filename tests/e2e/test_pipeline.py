"""End to end on the real broker and Redis, with the four services as real processes.

An episode POSTed to intake becomes referrals in Redis (one per recommended step, for the
right team) and a signed webhook call received by a real local HTTP receiver.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from carepath_contracts.steps import STEP_TEAM
from carepath_testkit.processes import Stack
from support.api import INTAKE
from support.episodes import expected_steps
from support.observe import received_webhooks, referrals_in_redis, wait_until
from support.processes import start_stack

pytestmark = [pytest.mark.kafka, pytest.mark.redis, pytest.mark.e2e]

COORDINATOR = {"Authorization": "Bearer dev-coordinator-token"}


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, redis_url: str) -> Iterator[Stack]:
    import asyncio

    from carepath_runtime.kafka_admin import create_topics

    ns = f"e2e{uuid.uuid4().hex[:8]}"
    asyncio.run(create_topics(kafka_bootstrap, ns))
    s = start_stack(ns, kafka_bootstrap, redis_url)
    yield s
    codes = {name: svc.stop() for name, svc in s.services.items() if name != "receiver"}
    s["receiver"].stop()
    # SIGTERM is a clean shutdown: each service ran its shutdown (broker stopped, offsets
    # committed, Redis closed) and logged it; uvicorn then re-raises the signal, so the exit
    # status is 0 or -SIGTERM, never a crash.
    assert set(codes.values()) <= {0, -15}, codes
    for name in codes:
        log = s[name].log_path.read_text()
        assert '"event": "service_stopped"' in log, f"{name} did not shut down cleanly"


def test_an_episode_becomes_referrals_and_webhooks(stack: Stack, redis_url: str) -> None:
    episode = {
        "episode_id": f"ep-{uuid.uuid4().hex[:8]}",
        "region": "lumbar",
        "imaging_done": ["xray", "mri"],
        "imaging_findings": ["facet_arthropathy"],
        "facet_injections": [{"relief_percent": 20, "technically_adequate": True}],
        "medial_branch_blocks": [{"relief_percent": 85, "anesthetic": "lidocaine"}],
        "radicular_pain": False,
        "bowel_bladder_dysfunction": False,
        "neurological_deficit": "none",
        "red_flags": [],
        "phq9": 4,
        "gad7": 3,
    }
    want = expected_steps(episode)
    assert "ablation.rfa" in want  # 85% >= 70%: the seed's threshold

    r = httpx.post(f"{stack['intake'].url}/episodes", json=episode, headers=INTAKE,
                   timeout=10)
    assert r.status_code == 202, r.text
    assert r.json()["episode_id"] == episode["episode_id"]

    ep_id = episode["episode_id"]
    assert wait_until(lambda: len(referrals_in_redis(redis_url, stack.namespace, ep_id))
                      >= len(want), timeout=60)
    refs = referrals_in_redis(redis_url, stack.namespace, ep_id)
    assert sorted(r["step"] for r in refs) == want
    for ref in refs:
        expected_team = STEP_TEAM[ref["step"]]
        assert ref["team"] == expected_team
        assert ref["status"] == "requested"

    def webhooks_for_episode() -> list[dict[str, object]]:
        return [w for w in received_webhooks(stack["receiver"].url)["received"]
                if w["event"]["data"]["episode_id"] == ep_id]

    assert wait_until(lambda: len(webhooks_for_episode()) >= len(want), timeout=60)
    calls = webhooks_for_episode()
    assert sorted(c["event"]["data"]["step"] for c in calls) == want
    assert all(c["event"]["type"] == "carepath.referral.created.v1" for c in calls)
    assert received_webhooks(stack["receiver"].url)["rejected"] == 0  # all signatures valid

    # The care plan is readable and versioned.
    plan = httpx.get(f"{stack['referrals'].url}/episodes/{ep_id}/careplan", headers=COORDINATOR)
    assert plan.status_code == 200
    assert plan.json()["version"] >= 1
    assert len(plan.json()["referrals"]) == len(want)


def test_bad_input_names_the_field(stack: Stack) -> None:
    r = httpx.post(f"{stack['intake'].url}/episodes",
                   json={"region": "thoracic", "phq9": "12"}, headers=INTAKE, timeout=10)
    assert r.status_code == 422
    fields = {e["field"] for e in r.json()["errors"]}
    assert {"region", "phq9"} <= fields

    r = httpx.post(f"{stack['intake'].url}/episodes", json={"age": 50}, headers=INTAKE,
                   timeout=10)
    assert r.status_code == 422
    assert "region" in {e["field"] for e in r.json()["errors"]}

    r = httpx.post(f"{stack['intake'].url}/episodes", content=b"{not json",
                   headers={"content-type": "application/json", **INTAKE}, timeout=10)
    assert r.status_code == 400


def test_idempotency_key_is_honoured(stack: Stack, redis_url: str) -> None:
    body = {"region": "cervical", "radicular_pain": True}
    key = {"Idempotency-Key": f"k-{uuid.uuid4().hex}", **INTAKE}
    first = httpx.post(f"{stack['intake'].url}/episodes", json=body, headers=key, timeout=10)
    again = httpx.post(f"{stack['intake'].url}/episodes", json=body, headers=key, timeout=10)
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()
    assert again.headers.get("Idempotent-Replayed") == "true"

    other = httpx.post(f"{stack['intake'].url}/episodes", json={**body, "age": 40},
                       headers=key, timeout=10)
    assert other.status_code == 422

    ep_id = first.json()["episode_id"]
    want = expected_steps({**body, "episode_id": ep_id})
    assert wait_until(lambda: len(referrals_in_redis(redis_url, stack.namespace, ep_id))
                      >= len(want), timeout=60)
    # One submission, however often it was posted: one referral per step.
    refs = referrals_in_redis(redis_url, stack.namespace, ep_id)
    assert sorted(r["step"] for r in refs) == want
