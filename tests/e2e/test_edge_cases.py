"""Issue 10's observed defects at the HTTP edge, each reproduced on the running stack (real
Kafka, Redis and the four services with the development tokens). EDGE_CASES.md lists each
case with its answer before and after."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from carepath_testkit.processes import Stack
from support.api import INTAKE, ReferralsApi, auth
from support.namespaces import drop_namespace, private_namespace
from support.observe import wait_until
from support.processes import start_stack

pytestmark = [pytest.mark.kafka, pytest.mark.redis, pytest.mark.e2e]

JSON = {"content-type": "application/json"}
ANON_OUTCOME = {"kind": "clinical_review", "red_flags": [], "bowel_bladder_dysfunction": False,
                "neurological_deficit": "stable"}


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, redis_url: str) -> Iterator[Stack]:
    from carepath_runtime.kafka_admin import create_topics

    ns = private_namespace("edge")
    asyncio.run(create_topics(kafka_bootstrap, ns))
    s = start_stack(ns, kafka_bootstrap, redis_url)
    yield s
    s.stop()
    asyncio.run(drop_namespace(kafka_bootstrap, redis_url, ns))


@pytest.fixture(scope="module")
def api(stack: Stack) -> ReferralsApi:
    return ReferralsApi(stack["referrals"].url)


def problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json", r.headers
    body: dict[str, Any] = r.json()
    assert body["status"] == status and {"type", "title"} <= set(body)
    return body


def fields(body: dict[str, Any]) -> set[str]:
    return {e["field"] for e in body.get("errors", [])}


def submit(stack: Stack, episode: dict[str, Any]) -> str:
    r = httpx.post(f"{stack['intake'].url}/episodes", json=episode, headers=INTAKE, timeout=15)
    assert r.status_code == 202, r.text
    return str(r.json()["episode_id"])


def post_intake(stack: Stack, path: str, content: bytes,
                headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(f"{stack['intake'].url}{path}", content=content,
                      headers={**JSON, **INTAKE, **(headers or {})}, timeout=30)


@pytest.fixture(scope="module")
def shared_episode(stack: Stack, api: ReferralsApi) -> dict[str, Any]:
    """An episode with radiology, interventional pain and psychology referrals; pain declines
    its block with a reason, psychology completes its assessment with PHQ-9/GAD-7 scores."""
    ep = submit(stack, {"episode_id": f"shared-{uuid.uuid4().hex[:6]}", "region": "lumbar",
                        "imaging_done": ["xray"], "phq9": 16, "gad7": 13,
                        "medial_branch_blocks": []})
    steps = ("imaging.mri", "diagnostic.medial_branch_block", "psychology.assessment")
    assert wait_until(lambda: all(api.referral_for(ep, s) for s in steps), timeout=60), \
        api.plan_or_none(ep)
    refs = {s: api.referral_for(ep, s) for s in steps}
    block = refs["diagnostic.medial_branch_block"]
    psy = refs["psychology.assessment"]
    assert block is not None and psy is not None
    r = api.act("interventional_pain", block["referral_id"], "decline",
                reason="DECLINE-REASON-OF-PAIN-TEAM")
    assert r.status_code == 200, r.text
    for action, body in (("accept", {}), ("start", {}),
                         ("complete", {"outcome": {"kind": "psychological_evaluation",
                                                   "phq9": 17, "gad7": 14}})):
        r = api.act("psychology", psy["referral_id"], action, **body)
        assert r.status_code == 200, (action, r.text)
    return {"episode_id": ep, "refs": refs}


# -- 1. authentication -----------------------------------------------------------------------


def test_anonymous_callers_are_refused_everywhere(stack: Stack,
                                                  shared_episode: dict[str, Any]) -> None:
    ep = shared_episode["episode_id"]
    # Before: an anonymous outcome cancelled an urgent surgical referral (202).
    r = httpx.post(f"{stack['intake'].url}/episodes/{ep}/outcomes", json=ANON_OUTCOME)
    problem(r, 401)
    assert r.headers["www-authenticate"].startswith("Bearer")
    problem(httpx.post(f"{stack['intake'].url}/episodes", json={"region": "lumbar"}), 401)
    problem(httpx.post(f"{stack['intake'].url}/fhir/Bundle", json={}), 401)
    # Before: pathway's state answered anyone.
    problem(httpx.get(f"{stack['pathway'].url}/episodes/{ep}/state"), 401)
    problem(httpx.get(f"{stack['pathway'].url}/episodes/{ep}/state",
                      headers={"Authorization": "Bearer forged"}), 401)
    problem(httpx.get(f"{stack['referrals'].url}/episodes/{ep}/careplan"), 401)
    problem(httpx.get(f"{stack['notifications'].url}/subscriptions"), 401)
    for svc in ("intake", "pathway", "referrals", "notifications"):
        assert httpx.get(f"{stack[svc].url}/health").status_code == 200  # open


def test_each_role_reaches_only_its_apis(stack: Stack, shared_episode: dict[str, Any]) -> None:
    ep = shared_episode["episode_id"]
    pathway_state = f"{stack['pathway'].url}/episodes/{ep}/state"
    assert httpx.get(pathway_state, headers=auth("coordinator")).status_code == 200
    problem(httpx.get(pathway_state, headers=auth("radiology")), 403)
    problem(httpx.get(pathway_state, headers=INTAKE), 403)
    # The integration client writes to intake and nothing else.
    problem(httpx.get(f"{stack['referrals'].url}/inbox", headers=INTAKE), 403)
    problem(httpx.get(f"{stack['notifications'].url}/subscriptions", headers=INTAKE), 403)
    problem(httpx.get(f"{stack['notifications'].url}/stream", headers=INTAKE), 403)
    # Teams and dashboards do not write to intake; a coordinator may report an outcome.
    for who in ("radiology", "dashboard"):
        problem(httpx.post(f"{stack['intake'].url}/episodes", json={"region": "lumbar"},
                           headers=auth(who)), 403)
    r = httpx.post(f"{stack['intake'].url}/episodes/{ep}/outcomes", headers=auth("coordinator"),
                   json={"kind": "pain_score", "pain_nrs": 6}, timeout=15)
    assert r.status_code == 202, r.text
    # Dashboards read the stream only, not the JSON API.
    problem(httpx.get(f"{stack['referrals'].url}/episodes/{ep}/careplan",
                      headers=auth("dashboard")), 403)


# -- 2./3. access by care relationship, no existence leak --------------------------------------


def test_a_team_without_a_referral_gets_what_an_unknown_episode_gets(
        stack: Stack, shared_episode: dict[str, Any]) -> None:
    ep = shared_episode["episode_id"]
    base = stack["referrals"].url
    for path in ("/episodes/{}/careplan", "/episodes/{}/referrals", "/fhir/CarePlan/{}"):
        hidden = httpx.get(base + path.format(ep), headers=auth("surgery"))
        unknown = httpx.get(base + path.format("no-such-episode"), headers=auth("surgery"))
        assert problem(hidden, 404) == problem(unknown, 404)
        assert httpx.get(base + path.format(ep), headers=auth("radiology")).status_code == 200


def test_another_teams_referral_answers_as_an_unknown_one(
        stack: Stack, shared_episode: dict[str, Any]) -> None:
    rid = shared_episode["refs"]["imaging.mri"]["referral_id"]
    base = stack["referrals"].url
    unknown_id = str(uuid.uuid4())
    # Before: 404 for an unknown id, 403 "assigned to radiology" for a real one.
    for path in ("/referrals/{}", "/fhir/Task/{}", "/fhir/ServiceRequest/{}"):
        hidden = httpx.get(base + path.format(rid), headers=auth("psychology"))
        unknown = httpx.get(base + path.format(unknown_id), headers=auth("psychology"))
        assert problem(hidden, 404) == problem(unknown, 404)
    act = httpx.post(f"{base}/referrals/{rid}/claim", json={}, headers=auth("psychology"))
    unknown = httpx.post(f"{base}/referrals/{unknown_id}/claim", json={},
                         headers=auth("psychology"))
    assert problem(act, 404) == problem(unknown, 404)


def test_the_plan_hides_other_teams_reasons_and_scores(
        stack: Stack, shared_episode: dict[str, Any]) -> None:
    ep = shared_episode["episode_id"]
    base = stack["referrals"].url
    full = httpx.get(f"{base}/episodes/{ep}/careplan", headers=auth("coordinator")).text
    assert "DECLINE-REASON-OF-PAIN-TEAM" in full and '"phq9":17' in full.replace(" ", "")
    for path in (f"/episodes/{ep}/careplan", f"/episodes/{ep}/referrals", f"/fhir/CarePlan/{ep}"):
        seen = httpx.get(base + path, headers=auth("radiology"))
        assert seen.status_code == 200, seen.text
        assert "DECLINE-REASON-OF-PAIN-TEAM" not in seen.text
        assert "phq9" not in seen.text and "gad7" not in seen.text
    own = httpx.get(f"{base}/episodes/{ep}/careplan", headers=auth("psychology")).text
    assert '"phq9":17' in own.replace(" ", "")
    assert "DECLINE-REASON-OF-PAIN-TEAM" not in own
    pain = httpx.get(f"{base}/episodes/{ep}/careplan", headers=auth("interventional_pain"))
    assert "DECLINE-REASON-OF-PAIN-TEAM" in pain.text  # its own decline, though no longer its


# -- 5./6. size limits: nothing oversized is saved, nothing is wedged -------------------------


def test_an_oversized_note_is_refused_and_wedges_nothing(stack: Stack, api: ReferralsApi) -> None:
    ep = submit(stack, {"episode_id": f"note-{uuid.uuid4().hex[:6]}", "region": "lumbar",
                        "imaging_done": ["xray"]})
    assert wait_until(lambda: api.referral_for(ep, "imaging.mri") is not None, timeout=60)
    mri = api.referral_for(ep, "imaging.mri")
    assert mri is not None
    before = api.plan(ep)["version"]
    # Before: 500, the change saved but never published, every later action 500.
    problem(api.act("radiology", mri["referral_id"], "claim", note="n" * 1_100_000), 413)
    body = problem(api.act("radiology", mri["referral_id"], "claim", note="n" * 2001), 422)
    assert "note" in {f.split(".")[-1] for f in fields(body)}
    assert "nnnnnnnn" not in str(body)
    assert api.plan(ep)["version"] == before  # nothing was saved
    r = api.act("radiology", mri["referral_id"], "claim", note="n" * 2000)
    assert r.status_code == 200 and r.json()["status"] == "received"
    assert api.act("radiology", mri["referral_id"], "accept").status_code == 200


def test_oversized_bodies_lists_and_ids_are_refused(stack: Stack) -> None:
    big = b'{"region":"lumbar","levels":"' + b"x" * (10 * 1024 * 1024) + b'"}'
    problem(post_intake(stack, "/episodes", big), 413)  # before: 500
    huge_id = b'{"region":"lumbar","episode_id":"' + b"e" * (1024 * 1024) + b'"}'
    problem(post_intake(stack, "/episodes", huge_id), 413)  # before: 500
    long_id = b'{"region":"lumbar","episode_id":"' + b"e" * 150_000 + b'"}'
    body = problem(post_intake(stack, "/episodes", long_id), 422)  # before: 202, dead letter
    assert fields(body) == {"episode_id"}
    many = b'{"region":"lumbar","imaging_done":[' + b",".join([b'"bad"'] * 100_000) + b"]}"
    r = post_intake(stack, "/episodes", many)
    body = problem(r, 422)  # before: a 13 MB answer
    assert fields(body) == {"imaging_done"} and len(r.content) < 2000


def test_error_lists_are_capped(stack: Stack) -> None:
    wrong = {f"field_{i}": i for i in range(60)}
    body = problem(post_intake(stack, "/episodes",
                               httpx.Request("POST", "/", json={"region": "lumbar", **wrong})
                               .read()), 422)
    assert len(body["errors"]) == 20 and body["errors_truncated"] == 40


# -- 7. one episode-id rule ------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["", "   ", "a/b", " padded", "x" * 129])
def test_a_present_bad_episode_id_is_422_never_replaced(stack: Stack, bad: str) -> None:
    r = httpx.post(f"{stack['intake'].url}/episodes", json={"episode_id": bad,
                                                              "region": "lumbar"},
                   headers=INTAKE, timeout=15)
    assert fields(problem(r, 422)) == {"episode_id"}  # before: 202 (or a derived id)


def test_an_absent_episode_id_is_derived(stack: Stack) -> None:
    ep = submit(stack, {"region": "lumbar"})
    assert ep and "/" not in ep


# -- 8. outcomes for unknown episodes --------------------------------------------------------


def test_an_outcome_for_an_unknown_episode_is_404(stack: Stack) -> None:
    r = httpx.post(f"{stack['intake'].url}/episodes/never-submitted-{uuid.uuid4().hex[:6]}"
                   "/outcomes", json={"kind": "pain_score", "pain_nrs": 4}, headers=INTAKE)
    problem(r, 404)  # before: 202, then a dead letter in pathway


# -- 9. strict parsing -----------------------------------------------------------------------


def test_parsing_is_strict(stack: Stack) -> None:
    url = f"{stack['intake'].url}/episodes"
    ok = b'{"region": "lumbar"}'
    for ctype in ("text/json", "application/json-seq", "application/x-www-form-urlencoded"):
        problem(httpx.post(url, content=ok, headers={"content-type": ctype, **INTAKE}), 415)
    problem(httpx.post(url, content=ok, headers=INTAKE), 415)  # no Content-Type at all
    dup = b'{"region": "lumbar", "phq9": 3, "phq9": 25}'
    body = problem(post_intake(stack, "/episodes", dup), 400)
    assert fields(body) == {"phq9"} and "25" not in str(body)
    ep = submit(stack, {"episode_id": f"ts-{uuid.uuid4().hex[:6]}", "region": "lumbar"})
    r = post_intake(stack, f"/episodes/{ep}/outcomes",
                    b'{"kind": "pain_score", "pain_nrs": 4, "reported_at": 12345}')
    assert any("reported_at" in f for f in fields(problem(r, 422)))  # before: 1970
    bundle = (b'{"resourceType": "Bundle", "type": "collection", "entry": ['
              b'{"resource": {"resourceType": "Condition"}},'
              b'{"resource": {"resourceType": "NotAResource", "id": "x"}}]}')
    r = post_intake(stack, "/fhir/Bundle", bundle, {"content-type": "application/fhir+json"})
    assert fields(problem(r, 422)) == {"entry[1].resource.resourceType"}  # before: 500


# -- 10. banner and one error shape ----------------------------------------------------------


def test_no_banner_and_one_error_shape(stack: Stack) -> None:
    for svc in ("intake", "pathway", "referrals", "notifications"):
        health = httpx.get(f"{stack[svc].url}/health")
        assert "server" not in health.headers, svc  # before: server: uvicorn
        missing = problem(httpx.get(f"{stack[svc].url}/no/such/route",
                                    headers=auth("coordinator")), 404)
        assert "error" not in missing and "detail" in missing
        problem(httpx.delete(f"{stack[svc].url}/health"), 405)
    # Notifications answered {"detail"}; now a problem naming the fields.
    r = httpx.post(f"{stack['notifications'].url}/subscriptions", headers=auth("coordinator"),
                   json={"channel": "sms"})
    assert {"event_types", "channel"} <= fields(problem(r, 422))
