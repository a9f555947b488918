"""Deadlines on the real broker: an overdue referral raises an escalation event, once.

A site configuration makes referrals due within seconds, and the deadline sweep runs often.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from carepath_runtime.kafka_admin import create_topics
from carepath_testkit.kafka_reading import read_topic
from carepath_testkit.processes import Stack
from support.api import INTAKE, ReferralsApi, auth
from support.observe import wait_until
from support.processes import start_stack

pytestmark = [pytest.mark.kafka, pytest.mark.redis, pytest.mark.e2e]


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory,
          ) -> Iterator[Stack]:
    site = tmp_path_factory.mktemp("site") / "routing.json"
    site.write_text(json.dumps({"due_in": {"urgent": 2, "routine": 3}}))
    ns = f"dl{uuid.uuid4().hex[:8]}"
    asyncio.run(create_topics(kafka_bootstrap, ns))
    s = start_stack(ns, kafka_bootstrap, redis_url, extra_env={
        "CAREPATH_ROUTING_FILE": str(Path(site)),
        "CAREPATH_DEADLINE_SCAN_SECONDS": "0.5",
    })
    yield s
    s.stop()


def escalations(bootstrap: str, topic: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    for rec in asyncio.run(read_topic(bootstrap, topic)):
        if dict(rec.headers).get("ce_type") == b"carepath.referral.escalated.v1":
            counts[json.loads(rec.value)["referral_id"]] += 1
    return counts


def test_an_overdue_referral_is_escalated_once(stack: Stack, kafka_bootstrap: str) -> None:
    api = ReferralsApi(stack["referrals"].url)
    ep = f"late-{uuid.uuid4().hex[:6]}"
    r = httpx.post(f"{stack['intake'].url}/episodes", timeout=15, headers=INTAKE,
                   json={"episode_id": ep, "region": "lumbar", "medial_branch_blocks": []})
    assert r.status_code == 202
    assert wait_until(lambda: bool(api.plan_or_none(ep)), timeout=60)
    plan = api.plan(ep)
    rids = list(plan["referrals"])
    assert rids

    def all_escalated() -> bool:
        refs = api.plan(ep)["referrals"].values()
        return all(r["business_status"] == "overdue-escalated" for r in refs)

    assert wait_until(all_escalated, timeout=60)
    topic = f"{stack.namespace}.referrals"
    assert wait_until(lambda: set(escalations(kafka_bootstrap, topic)) >= set(rids), timeout=30)
    import time

    time.sleep(2.0)  # let several more sweeps run
    # Several sweeps ran meanwhile: still exactly one escalation per referral.
    final = escalations(kafka_bootstrap, topic)
    assert set(final) == set(rids)
    assert max(final.values()) == 1
    # The escalation is visible in the audit trail, by the system actor.
    detail = httpx.get(f"{stack['referrals'].url}/referrals/{rids[0]}",
                       headers=auth("coordinator")).json()
    assert detail["history"][-1]["action"] == "escalate"
