"""The end-to-end path once more, with Redis Cluster (3 masters) as the store.

Every key, transaction and script must stay in one hash slot: a CROSSSLOT error anywhere in
intake, pathway, referrals or notifications would leave the episode without its referrals or
its webhooks. The broker is the shared one (own namespace).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from carepath_contracts.steps import STEP_TEAM
from carepath_testkit.processes import Stack
from support.clusters import redis_cluster
from support.episodes import expected_steps
from support.observe import received_webhooks, referrals_in_redis, sync_redis, wait_until
from support.processes import start_stack

pytestmark = [pytest.mark.kafka, pytest.mark.redis, pytest.mark.e2e,
              pytest.mark.timeout(600)]  # starts its own Redis Cluster

COORDINATOR = {"Authorization": "Bearer dev-coordinator-token"}


@pytest.fixture(scope="module")
def cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_cluster(Path(tmp_path_factory.mktemp("redis-cluster"))) as url:
        yield url


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, cluster_url: str) -> Iterator[Stack]:
    from carepath_runtime.kafka_admin import create_topics

    ns = f"rc{uuid.uuid4().hex[:8]}"
    asyncio.run(create_topics(kafka_bootstrap, ns))
    s = start_stack(ns, kafka_bootstrap, cluster_url)
    yield s
    for name, svc in s.services.items():
        if name != "receiver":
            svc.stop()
    s["receiver"].stop()


def test_an_episode_becomes_referrals_and_webhooks_on_redis_cluster(
    stack: Stack, cluster_url: str
) -> None:
    r = sync_redis(cluster_url)
    try:
        assert len(r.get_nodes()) == 3  # really a cluster, not one node
    finally:
        r.close()
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
    key = {"Idempotency-Key": f"k-{uuid.uuid4().hex}", "Authorization": "Bearer dev-ehr-token"}
    first = httpx.post(f"{stack['intake'].url}/episodes", json=episode, headers=key, timeout=10)
    again = httpx.post(f"{stack['intake'].url}/episodes", json=episode, headers=key, timeout=10)
    assert first.status_code == again.status_code == 202, first.text
    assert again.headers.get("Idempotent-Replayed") == "true"

    ep_id = episode["episode_id"]
    assert wait_until(lambda: len(referrals_in_redis(cluster_url, stack.namespace, ep_id))
                      >= len(want), timeout=90)
    refs = referrals_in_redis(cluster_url, stack.namespace, ep_id)
    assert sorted(x["step"] for x in refs) == want
    assert all(x["team"] == STEP_TEAM[x["step"]] for x in refs)

    def webhooks_for_episode() -> list[dict[str, object]]:
        return [w for w in received_webhooks(stack["receiver"].url)["received"]
                if w["event"]["data"]["episode_id"] == ep_id]

    assert wait_until(lambda: len(webhooks_for_episode()) >= len(want), timeout=90)
    assert sorted(c["event"]["data"]["step"] for c in webhooks_for_episode()) == want

    # The coordinator API reads across slots: the team and global indexes, each referral.
    plan = httpx.get(f"{stack['referrals'].url}/episodes/{ep_id}/careplan",
                     headers=COORDINATOR, timeout=10)
    assert plan.status_code == 200 and len(plan.json()["referrals"]) == len(want)
    listed = httpx.get(f"{stack['referrals'].url}/inbox", headers=COORDINATOR, timeout=10)
    assert listed.status_code == 200, listed.text
    ids = {x["referral_id"] for x in refs}
    assert ids <= {x["referral_id"] for x in listed.json()["referrals"]}
    one = next(iter(ids))
    got = httpx.get(f"{stack['referrals'].url}/referrals/{one}", headers=COORDINATOR,
                    timeout=10)
    assert got.status_code == 200, got.text
