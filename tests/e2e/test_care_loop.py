"""The closed loop on the real broker and Redis, told as one patient's story.

Teams work referrals through the coordinator API; completing one with an outcome publishes
the outcome event; the pathway re-evaluates; the care plan moves on, version by version:
imaging -> medial branch block -> RFA -> repeat RFA a year later. Along the way: auth (401/404),
team scoping, validation (422), illegal transitions (409), concurrent updates by two teams,
and a replay of the recommendation topic that must create no duplicate referral.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from carepath_contracts.envelope import derive_id
from carepath_testkit.kafka_reading import committed_lag, read_topic, topic_partitions
from carepath_testkit.processes import Stack
from support.api import INTAKE, ReferralsApi, auth
from support.observe import wait_until
from support.processes import start_stack

pytestmark = [pytest.mark.kafka, pytest.mark.redis, pytest.mark.e2e]


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, redis_url: str) -> Iterator[Stack]:
    from carepath_runtime.kafka_admin import create_topics

    ns = f"loop{uuid.uuid4().hex[:8]}"
    asyncio.run(create_topics(kafka_bootstrap, ns))
    s = start_stack(ns, kafka_bootstrap, redis_url)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def api(stack: Stack) -> ReferralsApi:
    return ReferralsApi(stack["referrals"].url)


def submit(stack: Stack, episode: dict[str, Any]) -> str:
    r = httpx.post(f"{stack['intake'].url}/episodes", json=episode, headers=INTAKE,
                   timeout=15)
    assert r.status_code == 202, r.text
    return str(r.json()["episode_id"])


def open_steps(plan: dict[str, Any]) -> set[str]:
    return {r["step"] for r in plan["referrals"].values()
            if r["status"] not in ("completed", "cancelled")}


def wait_for_step(api: ReferralsApi, episode_id: str, step: str) -> dict[str, Any]:
    assert wait_until(lambda: api.referral_for(episode_id, step) is not None, timeout=60), (
        f"no referral for {step}; plan: {api.plan_or_none(episode_id)}"
    )
    ref = api.referral_for(episode_id, step)
    assert ref is not None
    return ref


def work_to_completion(api: ReferralsApi, team: str, referral_id: str,
                       outcome: dict[str, Any] | None) -> dict[str, Any]:
    for action, body in (("claim", {}), ("accept", {}),
                         ("schedule", {"when": "2026-12-01T09:00:00+00:00"}), ("start", {})):
        r = api.act(team, referral_id, action, **body)
        assert r.status_code == 200, (action, r.text)
    body = {"outcome": outcome} if outcome is not None else {}
    r = api.act(team, referral_id, "complete", **body)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "completed"
    return dict(r.json())


BASE_EPISODE: dict[str, Any] = {
    "region": "lumbar",
    "pain_nrs": 7,
    "symptom_duration_months": 9,
    "facet_injections": [{"levels": ["L4-L5"], "relief_percent": 20,
                          "relief_duration_weeks": 1, "technically_adequate": True}],
    "medial_branch_blocks": [],
    "rfa_history": [],
    "imaging_done": ["xray"],
    "imaging_findings": ["facet_arthropathy"],
    "radicular_pain": False,
    "neurological_deficit": "none",
    "bowel_bladder_dysfunction": False,
    "red_flags": [],
    "si_provocation_positive": 0,
    "trigger_points": False,
    "neuropathic_features": False,
    "phq9": 3,
    "gad7": 2,
    "pain_catastrophizing": 8,
    "prior_spine_surgery": False,
    "physical_therapy_weeks": 8,
}


def test_a_patient_moves_through_the_pathway(stack: Stack, api: ReferralsApi) -> None:
    ep = submit(stack, {**BASE_EPISODE, "episode_id": f"story-{uuid.uuid4().hex[:6]}"})

    # 1. Imaging first: no MRI yet, and the facet joints are untested by a block.
    mri = wait_for_step(api, ep, "imaging.mri")
    mbb = wait_for_step(api, ep, "diagnostic.medial_branch_block")
    assert mri["team"] == "radiology" and mbb["team"] == "interventional_pain"
    assert "ablation.rfa" not in open_steps(api.plan(ep))
    v1 = api.plan(ep)["version"]

    # Radiology reports the MRI through its referral.
    work_to_completion(api, "radiology", mri["referral_id"],
                       {"kind": "imaging", "modality": "mri", "findings": ["facet_arthropathy"]})

    # 2. The block: 80% relief, at or above the seed's 70%.
    work_to_completion(api, "interventional_pain", mbb["referral_id"],
                       {"kind": "medial_branch_block", "relief_percent": 80,
                        "anesthetic": "lidocaine"})
    rfa = wait_for_step(api, ep, "ablation.rfa")
    plan = api.plan(ep)
    assert plan["version"] > v1
    # The block's referral is completed, not cancelled, and was never duplicated.
    blocks = [r for r in plan["referrals"].values()
              if r["step"] == "diagnostic.medial_branch_block"]
    assert [b["status"] for b in blocks] == ["completed"]

    # 3. RFA done: 85% relief.
    work_to_completion(api, "interventional_pain", rfa["referral_id"],
                       {"kind": "rfa", "relief_percent": 85})
    v3 = api.plan(ep)["version"]

    # 4. A year later the relief has worn off and the pain is back (reported via intake).
    for report in ({"kind": "rfa_follow_up", "relief_duration_months": 12},
                   {"kind": "pain_recurred", "pain_nrs": 7, "after_months": 12}):
        r = httpx.post(f"{stack['intake'].url}/episodes/{ep}/outcomes", json=report,
                       headers=INTAKE, timeout=15)
        assert r.status_code == 202, r.text
    repeat = wait_for_step(api, ep, "ablation.repeat_rfa")
    assert repeat["team"] == "interventional_pain"
    final = api.plan(ep)
    assert final["version"] > v3
    steps = Counter(r["step"] for r in final["referrals"].values())
    assert steps["ablation.rfa"] == 1 and steps["ablation.repeat_rfa"] == 1
    assert steps["diagnostic.medial_branch_block"] == 1  # no new block for a repeat RFA
    assert {o["step"] for o in final["outcomes"]} >= {
        "imaging.mri", "diagnostic.medial_branch_block", "ablation.rfa"}


def test_every_call_is_authenticated_and_scoped(stack: Stack, api: ReferralsApi) -> None:
    ep = submit(stack, {**BASE_EPISODE, "episode_id": f"auth-{uuid.uuid4().hex[:6]}"})
    mbb = wait_for_step(api, ep, "diagnostic.medial_branch_block")
    wait_for_step(api, ep, "imaging.mri")
    base = stack["referrals"].url
    rid = mbb["referral_id"]

    assert httpx.get(f"{base}/inbox").status_code == 401
    assert httpx.get(f"{base}/inbox", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert httpx.get(f"{base}/episodes/{ep}/careplan").status_code == 401
    assert httpx.post(f"{base}/referrals/{rid}/claim").status_code == 401

    # Radiology neither sees nor changes interventional pain's referral: it answers exactly
    # as an unknown referral does (no existence leak).
    unknown = httpx.get(f"{base}/referrals/{uuid.uuid4()}", headers=auth("radiology"))
    hidden = httpx.get(f"{base}/referrals/{rid}", headers=auth("radiology"))
    assert hidden.status_code == unknown.status_code == 404
    assert hidden.json() == unknown.json()
    claimed = api.act("radiology", rid, "claim")
    assert claimed.status_code == 404 and claimed.json() == unknown.json()
    inbox = httpx.get(f"{base}/inbox", headers=auth("radiology")).json()["referrals"]
    assert inbox and {r["team"] for r in inbox} == {"radiology"}
    assert httpx.get(f"{base}/inbox?team=surgery", headers=auth("radiology")).status_code == 403
    mine = httpx.get(f"{base}/inbox?status=requested&sort=priority",
                     headers=auth("interventional_pain")).json()["referrals"]
    assert rid in {r["referral_id"] for r in mine}
    assert httpx.get(f"{base}/inbox?sort=nonsense",
                     headers=auth("interventional_pain")).status_code == 422

    # Validation: a decline needs a reason (422 naming it); illegal transitions are 409.
    r = api.act("interventional_pain", rid, "decline")
    assert r.status_code == 422
    assert "reason" in {e["field"].split(".")[-1] for e in r.json()["errors"]}
    r = api.act("interventional_pain", rid, "complete")
    assert r.status_code == 409
    assert r.headers["content-type"] == "application/problem+json"
    assert "requested" in r.json()["detail"]
    r = api.act("interventional_pain", rid, "complete",
                outcome={"kind": "medial_branch_block", "relief_percent": 180})
    assert r.status_code == 422
    assert any("relief_percent" in e["field"] for e in r.json()["errors"])

    # A decline with a reason goes back to the coordinator, who reroutes it.
    r = api.act("interventional_pain", rid, "decline", reason="no capacity this month")
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    assert r.json()["team"] == "care_coordinator"
    assert httpx.get(f"{base}/referrals/{rid}",
                     headers=auth("interventional_pain")).status_code == 404
    r = api.act("coordinator", rid, "reroute", to_team="interventional_pain",
                reason="capacity found at the second site")
    assert r.status_code == 200 and r.json()["status"] == "requested"

    # Every change is audited: who, what, when, why.
    detail = httpx.get(f"{base}/referrals/{rid}", headers=auth("coordinator")).json()
    actions = [(h["action"], h["actor_subject"], h["reason"]) for h in detail["history"]]
    assert ("decline", "pain@example.org", "no capacity this month") in actions
    assert ("reroute", "coordinator@example.org", "capacity found at the second site") in actions


def test_two_teams_updating_one_plan_at_once_lose_nothing(
    stack: Stack, api: ReferralsApi
) -> None:
    ep = submit(stack, {**BASE_EPISODE, "episode_id": f"race-{uuid.uuid4().hex[:6]}"})
    mri = wait_for_step(api, ep, "imaging.mri")
    mbb = wait_for_step(api, ep, "diagnostic.medial_branch_block")
    before = api.plan(ep)["version"]
    base = stack["referrals"].url

    async def work(team: str, rid: str) -> list[int]:
        codes = []
        async with httpx.AsyncClient(base_url=base, headers=auth(team), timeout=30) as client:
            for action, body in (("claim", {}), ("accept", {}),
                                 ("schedule", {"when": "2026-12-03T10:00:00+00:00"})):
                codes.append((await client.post(f"/referrals/{rid}/{action}", json=body))
                             .status_code)
        return codes

    async def both() -> list[list[int]]:
        return list(await asyncio.gather(work("radiology", mri["referral_id"]),
                                         work("interventional_pain", mbb["referral_id"])))

    results = asyncio.run(both())
    assert results == [[200, 200, 200], [200, 200, 200]]
    plan = api.plan(ep)
    assert plan["version"] == before + 6  # six changes, six versions: none lost
    for rid in (mri["referral_id"], mbb["referral_id"]):
        ref = plan["referrals"][rid]
        assert ref["status"] == "in-progress" and ref["business_status"] == "scheduled"


async def _referral_created_counts(bootstrap: str, topic: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    for rec in await read_topic(bootstrap, topic):
        headers = dict(rec.headers)
        if headers.get("ce_type") == b"carepath.referral.created.v1":
            counts[headers["ce_id"].decode()] += 1
    return counts


async def _rewind_group(bootstrap: str, group: str, topic: str) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        parts = await topic_partitions(bootstrap, topic)
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        offsets = {tp: await consumer.position(tp) for tp in parts}
        await consumer.commit(offsets)
    finally:
        await consumer.stop()


def test_replaying_recommendations_creates_no_duplicate(
    stack: Stack, api: ReferralsApi, kafka_bootstrap: str
) -> None:
    # Make sure there is history to replay.
    ep = submit(stack, {**BASE_EPISODE, "episode_id": f"replay-{uuid.uuid4().hex[:6]}"})
    wait_for_step(api, ep, "diagnostic.medial_branch_block")
    ns = stack.namespace
    referrals_topic = f"{ns}.referrals"
    # The plan is in Redis a moment before its events are on Kafka: wait for them.
    created_ids = {derive_id("carepath.referral.created.v1", rid)
                   for rid in api.plan(ep)["referrals"]}
    assert wait_until(lambda: created_ids <= set(
        asyncio.run(_referral_created_counts(kafka_bootstrap, referrals_topic))), timeout=30)
    before_counts = asyncio.run(_referral_created_counts(kafka_bootstrap, referrals_topic))
    before_plan = api.plan(ep)

    stack["referrals"].stop()
    asyncio.run(_rewind_group(kafka_bootstrap, f"{ns}.referrals", f"{ns}.pathway.recommendations"))
    stack["referrals"].start()

    # Wait until the restarted consumer has re-read the whole topic (lag 0).
    recommendations, group = f"{ns}.pathway.recommendations", f"{ns}.referrals"
    assert wait_until(lambda: asyncio.run(committed_lag(kafka_bootstrap, recommendations, group))
                      == 0, timeout=90, interval=1.0)
    after_counts = asyncio.run(_referral_created_counts(kafka_bootstrap, referrals_topic))
    assert after_counts == before_counts  # not one referral.created more
    assert all(n == 1 for n in after_counts.values())
    after_plan = api.plan(ep)
    assert after_plan["version"] == before_plan["version"]
    assert after_plan["referrals"].keys() == before_plan["referrals"].keys()
