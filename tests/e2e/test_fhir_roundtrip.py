"""FHIR round trip on the real broker and Redis, with the services as real processes.

The sample FHIR R4 Bundle goes to intake's ``POST /fhir/Bundle``; it becomes an episode, the
pathway's recommendations, referrals; the referrals service then serves the care plan as a
FHIR CarePlan and each referral as a ServiceRequest and a Task, all valid R4 resources
(fhir.resources R4B models) whose statuses follow the referrals through their lifecycle.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fhir.resources.R4B.careplan import CarePlan
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.task import Task

from carepath_contracts import fhir_codes as C
from carepath_contracts.steps import STEP_TEAM
from carepath_intake.fhir import map_bundle
from carepath_runtime.kafka_admin import create_topics
from carepath_testkit.processes import Stack
from support.episodes import expected_steps
from support.observe import referrals_in_redis, wait_until
from support.processes import start_stack

pytestmark = [pytest.mark.kafka, pytest.mark.redis, pytest.mark.e2e]

COORDINATOR = {"Authorization": "Bearer dev-coordinator-token"}
TEAM_TOKENS = {
    "radiology": "dev-radiology-token",
    "interventional_pain": "dev-interventional-token",
    "physical_therapy": "dev-physio-token",
    "psychology": "dev-psychology-token",
    "surgery": "dev-surgery-token",
    "neuromodulation": "dev-neuromodulation-token",
}
FHIR_JSON = {"content-type": "application/fhir+json",
             "Authorization": "Bearer dev-ehr-token"}
SAMPLE_BUNDLE_PATH = Path(__file__).resolve().parents[2] / "docs" / "examples" / "bundle.json"


def bearer(team: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TEAM_TOKENS[team]}"}


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, redis_url: str) -> Iterator[Stack]:
    ns = f"fhir{uuid.uuid4().hex[:8]}"
    asyncio.run(create_topics(kafka_bootstrap, ns))
    s = start_stack(ns, kafka_bootstrap, redis_url)
    yield s
    s.stop()


def sample(episode_id: str) -> dict[str, Any]:
    bundle: dict[str, Any] = json.loads(SAMPLE_BUNDLE_PATH.read_text(encoding="utf-8"))
    bundle["identifier"]["value"] = episode_id
    return bundle


def get_fhir(stack: Stack, path: str, headers: dict[str, str]) -> httpx.Response:
    r = httpx.get(f"{stack['referrals'].url}/fhir/{path}", headers=headers, timeout=10)
    # Resources are FHIR JSON; errors are RFC 9457 problems like every Carepath API.
    expected = "application/fhir+json" if r.is_success else "application/problem+json"
    assert r.headers["content-type"].startswith(expected), r.text
    return r


def resource(stack: Stack, path: str, headers: dict[str, str]) -> dict[str, Any]:
    """GET a FHIR resource, check it is valid R4 (fhir.resources R4B model), return its JSON."""
    r = get_fhir(stack, path, headers)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    models: dict[str, Any] = {"CarePlan": CarePlan, "ServiceRequest": ServiceRequest,
                              "Task": Task}
    models[data["resourceType"]].model_validate(data)
    assert r.headers["etag"] == f'W/"{data["meta"]["versionId"]}"'
    return data


def test_a_bundle_becomes_a_careplan_with_service_requests_and_tasks(
        stack: Stack, redis_url: str) -> None:
    episode_id = f"ep-fhir-{uuid.uuid4().hex[:8]}"
    bundle = sample(episode_id)
    r = httpx.post(f"{stack['intake'].url}/fhir/Bundle", json=bundle, headers=FHIR_JSON,
                   timeout=10)
    assert r.status_code == 202, r.text
    answer = r.json()
    assert answer["episode_id"] == episode_id and answer["status"] == "accepted"
    assert {u["resource"] for u in answer["unmapped"]} == {
        "Patient (entry[0])", "Observation/obs-bmi", "Bundle"}

    mapped = map_bundle(bundle).episode
    assert mapped is not None
    want = expected_steps(mapped.model_dump(exclude_none=True))
    assert "ablation.rfa" in want  # the 85% medial branch block from the Bundle
    assert wait_until(lambda: len(referrals_in_redis(redis_url, stack.namespace, episode_id))
                      >= len(want), timeout=60)
    refs = {r["referral_id"]: r for r in referrals_in_redis(redis_url, stack.namespace,
                                                              episode_id)}
    assert sorted(r["step"] for r in refs.values()) == want

    plan = resource(stack, f"CarePlan/{episode_id}", COORDINATOR)
    assert (plan["status"], plan["intent"]) == ("active", "plan")
    assert sorted(a["reference"]["reference"] for a in plan["activity"]) == sorted(
        f"ServiceRequest/{rid}" for rid in refs)
    assert plan["subject"]["identifier"]["value"] == episode_id
    assert "Patient/" not in json.dumps(plan)  # no patient reference travels out

    for rid, ref in refs.items():
        sr = resource(stack, f"ServiceRequest/{rid}", COORDINATOR)
        task = resource(stack, f"Task/{rid}", COORDINATOR)
        assert (sr["status"], sr["intent"]) == ("active", "order")
        assert sr["code"]["coding"][0]["code"] == ref["step"]
        assert sr["performerType"]["coding"][0]["code"] == STEP_TEAM[ref["step"]]
        assert task["status"] == "requested"
        assert task["businessStatus"]["coding"][0]["code"] == "awaiting-triage"
        assert task["focus"]["reference"] == f"ServiceRequest/{rid}"
        assert task["status"] in C.TASK_STATUSES and sr["status"] in C.REQUEST_STATUSES

    # The Task and ServiceRequest follow the referral through its lifecycle.
    rfa = next(rid for rid, ref in refs.items() if ref["step"] == "ablation.rfa")
    pain = bearer("interventional_pain")
    assert httpx.post(f"{stack['referrals'].url}/referrals/{rfa}/accept", headers=pain,
                      json={}, timeout=10).status_code == 200
    task = resource(stack, f"Task/{rfa}", pain)
    assert (task["status"], task["businessStatus"]["coding"][0]["code"]) == ("accepted",
                                                                           "accepted")
    assert task["owner"]["identifier"]["value"] == "pain@example.org"
    done = httpx.post(f"{stack['referrals'].url}/referrals/{rfa}/complete", headers=pain,
                      json={"outcome": {"kind": "rfa", "relief_percent": 80}}, timeout=10)
    assert done.status_code == 200, done.text
    task = resource(stack, f"Task/{rfa}", pain)
    sr = resource(stack, f"ServiceRequest/{rfa}", pain)
    assert (task["status"], sr["status"]) == ("completed", "completed")

    other = next(rid for rid in refs if rid != rfa)
    assert httpx.post(f"{stack['referrals'].url}/referrals/{other}/cancel", headers=COORDINATOR,
                      json={"reason": "patient declined"}, timeout=10).status_code == 200
    task = resource(stack, f"Task/{other}", COORDINATOR)
    sr = resource(stack, f"ServiceRequest/{other}", COORDINATOR)
    assert (task["status"], sr["status"]) == ("cancelled", "revoked")
    assert task["statusReason"]["text"] == "patient declined"
    later = resource(stack, f"CarePlan/{episode_id}", COORDINATOR)
    assert int(later["meta"]["versionId"]) > int(plan["meta"]["versionId"])


def test_fhir_reads_are_authenticated_and_team_scoped(stack: Stack, redis_url: str) -> None:
    episode_id = f"ep-fhir-{uuid.uuid4().hex[:8]}"
    r = httpx.post(f"{stack['intake'].url}/fhir/Bundle", json=sample(episode_id),
                   headers=FHIR_JSON, timeout=10)
    assert r.status_code == 202, r.text
    assert wait_until(lambda: referrals_in_redis(redis_url, stack.namespace, episode_id),
                      timeout=60)
    ref = referrals_in_redis(redis_url, stack.namespace, episode_id)[0]
    rid, team = ref["referral_id"], ref["team"]
    outsider = next(t for t in TEAM_TOKENS if t != team)

    assert get_fhir(stack, f"Task/{rid}", bearer(team)).status_code == 200
    unknown = get_fhir(stack, "Task/no-such-referral", bearer(outsider))
    for path in (f"Task/{rid}", f"ServiceRequest/{rid}"):
        hidden = get_fhir(stack, path, bearer(outsider))
        # Another team's referral answers exactly as an unknown one (no existence leak).
        assert hidden.status_code == unknown.status_code == 404
        assert hidden.json() == unknown.json()
        assert hidden.headers["content-type"] == "application/problem+json"
    unauthenticated = get_fhir(stack, f"CarePlan/{episode_id}", {})
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["status"] == 401
    assert get_fhir(stack, "Task/no-such-referral", COORDINATOR).status_code == 404
    assert get_fhir(stack, "CarePlan/no-such-episode", COORDINATOR).status_code == 404
    # The CarePlan: the team with a referral reads it, a team without one gets 404.
    assert get_fhir(stack, f"CarePlan/{episode_id}", bearer(team)).status_code == 200
    teams_on_it = {r["team"] for r in referrals_in_redis(redis_url, stack.namespace, episode_id)}
    stranger = next((t for t in TEAM_TOKENS if t not in teams_on_it), None)
    if stranger is not None:
        assert get_fhir(stack, f"CarePlan/{episode_id}", bearer(stranger)).json() == \
            get_fhir(stack, "CarePlan/no-such-episode", bearer(stranger)).json()


def test_bad_bundles_are_refused_and_idempotency_holds(stack: Stack) -> None:
    url = f"{stack['intake'].url}/fhir/Bundle"
    invalid = {"resourceType": "Bundle", "type": "collection",
               "entry": [{"resource": {"resourceType": "Observation", "code": {"text": "x"}}}]}
    r = httpx.post(url, json=invalid, headers=FHIR_JSON, timeout=10)
    assert r.status_code == 422
    assert any("status" in e["field"] for e in r.json()["errors"])

    no_region = sample(f"ep-{uuid.uuid4().hex[:8]}")
    no_region["entry"] = [e for e in no_region["entry"]
                          if e["resource"]["resourceType"] != "Condition"]
    r = httpx.post(url, json=no_region, headers=FHIR_JSON, timeout=10)
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "region"
    assert r.json()["unmapped"]  # the report comes with the refusal

    assert httpx.post(url, content=b"<Bundle/>", headers={"content-type": "application/xml",
                                                       "Authorization": "Bearer dev-ehr-token"},
                      timeout=10).status_code == 415

    anonymous = sample("unused")
    del anonymous["identifier"]
    key = {"Idempotency-Key": f"k-{uuid.uuid4().hex}", **FHIR_JSON}
    first = httpx.post(url, json=anonymous, headers=key, timeout=10)
    again = httpx.post(url, json=anonymous, headers=key, timeout=10)
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert first.json()["episode_id"]  # derived: the Bundle carried no identifier
