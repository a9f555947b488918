"""The subscriptions API in process (ASGI) over a real Redis: authentication, team scoping,
idempotent creation, secrets shown once, persistence across instances."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI
from pydantic import SecretStr

from carepath_notifications.api import register_routes
from carepath_notifications.destination_resolver import DestinationGuard
from carepath_notifications.domain.destination_guard import Allowlist
from carepath_notifications.domain.subscriptions import Subscription
from carepath_notifications.subscription_store import SubscriptionStore
from carepath_runtime.auth import Authenticator, Principal, TokenRegistry
from carepath_runtime.http_errors import install_problem_handlers
from carepath_runtime.webhook_verify import decode_secret

pytestmark = [pytest.mark.redis]

TOKENS = Authenticator([TokenRegistry({
    "t-radiology": Principal(subject="rad@x", team="radiology", role="team_member"),
    "t-surgery": Principal(subject="surg@x", team="surgery", role="team_member"),
    "t-coord": Principal(subject="coord@x", team="care_coordinator", role="coordinator"),
    "t-admin": Principal(subject="admin@x", team="care_coordinator", role="admin"),
    "t-dash": Principal(subject="wall@x", team="care_coordinator", role="dashboard"),
})])
FILE_SUB = Subscription(
    id="from-file", subscriber="EHR", kind="system", event_types=["*"], channel="webhook",
    url="https://ehr.example/hook", secret=SecretStr("whsec_" + "QUFB" * 11),
)
HOOK = {"event_types": ["carepath.referral.*"], "channel": "webhook",
        "url": "https://radiology.example/hook"}
# A stub resolver (nothing is looked up, nothing connected to): the example names resolve to
# a public address, "rebind.example" to the cloud metadata address.
STUB_DNS = {"radiology.example": ["93.184.215.14"], "ehr.example": ["93.184.215.14"],
            "rebind.example": ["169.254.169.254"], "localhost": ["127.0.0.1"]}


def stub_resolver(host: str, port: int) -> list[str]:
    return STUB_DNS.get(host, ["93.184.215.14"])


GUARD = DestinationGuard(Allowlist.parse("127.0.0.1:8099"), stub_resolver)


def auth(who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer t-{who}"}


@dataclass
class Api:
    client: httpx.AsyncClient
    store: SubscriptionStore
    redis: aioredis.Redis
    ns: str


@pytest.fixture()
async def api(redis_url: str) -> AsyncIterator[Api]:
    redis = aioredis.Redis.from_url(redis_url)
    ns = f"api{uuid.uuid4().hex[:8]}"
    store = SubscriptionStore(redis, ns, [FILE_SUB], guard=GUARD)
    app = FastAPI()
    install_problem_handlers(app)
    register_routes(app, store, TOKENS)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://api") as client:
        yield Api(client, store, redis, ns)
    await redis.aclose()


async def test_authentication_is_required(api: Api) -> None:
    assert (await api.client.get("/subscriptions")).status_code == 401
    bad = await api.client.get("/subscriptions", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    assert (await api.client.get("/subscriptions", headers=auth("dash"))).status_code == 403


async def test_a_team_member_subscribes_for_their_team_only(api: Api) -> None:
    r = await api.client.post("/subscriptions", json=HOOK, headers=auth("radiology"))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["kind"] == "team" and body["team"] == "radiology"
    assert body["subscriber"] == "rad@x" and body["source"] == "api"
    decode_secret(body["secret"])  # a usable whsec_ secret, shown this once
    for other in ({"team": "surgery"}, {"kind": "coordinator"}, {"kind": "system"}):
        refused = await api.client.post("/subscriptions", json={**HOOK, **other},
                                        headers=auth("radiology"))
        assert refused.status_code == 403, other


async def test_secrets_are_never_shown_again_and_teams_see_only_theirs(api: Api) -> None:
    created = (await api.client.post("/subscriptions", json=HOOK,
                                     headers=auth("radiology"))).json()
    sid = created["id"]
    again = await api.client.get(f"/subscriptions/{sid}", headers=auth("radiology"))
    assert again.status_code == 200 and "secret" not in again.json()
    listed = (await api.client.get("/subscriptions", headers=auth("radiology"))).json()
    assert [s["id"] for s in listed["subscriptions"]] == [sid]
    assert all("secret" not in s for s in listed["subscriptions"])
    surgery = (await api.client.get("/subscriptions", headers=auth("surgery"))).json()
    assert surgery["subscriptions"] == []
    assert (await api.client.get(f"/subscriptions/{sid}", headers=auth("surgery"))
            ).status_code == 404
    everyone = (await api.client.get("/subscriptions", headers=auth("coord"))).json()
    assert {s["id"] for s in everyone["subscriptions"]} == {sid, "from-file"}


async def test_creating_is_idempotent_and_conflicts_are_refused(api: Api) -> None:
    first = await api.client.post("/subscriptions", json=HOOK, headers=auth("radiology"))
    second = await api.client.post("/subscriptions", json=HOOK, headers=auth("radiology"))
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"] and "secret" not in second.json()
    named = {**HOOK, "id": "rad-hook"}
    assert (await api.client.post("/subscriptions", json=named, headers=auth("radiology"))
            ).status_code == 201
    changed = {**named, "event_types": ["carepath.referral.created.v1"]}
    assert (await api.client.post("/subscriptions", json=changed, headers=auth("radiology"))
            ).status_code == 409
    clash = {**HOOK, "id": "from-file"}
    assert (await api.client.post("/subscriptions", json=clash, headers=auth("admin"))
            ).status_code == 409


async def test_invalid_input_names_fields_without_echoing_them(api: Api) -> None:
    bad = {**HOOK, "url": "https://ops@evil.example/hook", "secret": "short-secret-value"}
    r = await api.client.post("/subscriptions", json=bad, headers=auth("coord"))
    assert r.status_code == 422
    fields = {e["field"] for e in r.json()["errors"]}
    assert {"url", "secret"} <= fields
    assert "evil.example" not in r.text and "short-secret-value" not in r.text
    r = await api.client.post("/subscriptions", json={"channel": "sms"}, headers=auth("coord"))
    assert r.status_code == 422
    assert {"event_types", "channel"} <= {e["field"] for e in r.json()["errors"]}


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:6379/",  # the observed probe of Redis
    "https://127.0.0.1:8003/",  # another service's port
    "https://[::1]/hook",
    "https://[::ffff:127.0.0.1]/hook",
    "https://10.0.0.5/hook",
    "https://169.254.169.254/latest/meta-data/",
    "https://2130706433/hook",
    "https://0177.0.0.1/hook",
    "http://good@127.0.0.1:8099/webhook",
    "https://localhost./hook",
    "https://rebind.example/hook",  # a name that resolves to a link-local address
    "http://radiology.example/hook",  # plain http off the allowlist
])
async def test_ssrf_destinations_are_refused_naming_url_without_echoing_it(
        api: Api, url: str) -> None:
    r = await api.client.post("/subscriptions", json={**HOOK, "url": url},
                              headers=auth("coord"))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json") or \
        "errors" in r.json()
    assert [e["field"] for e in r.json()["errors"]] == ["url"]
    assert r.json()["errors"][0]["reason"]
    host = url.split("//", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1]
    assert url not in r.text and host not in r.text
    assert await api.store.all() == [await api.store.get("from-file")]  # nothing stored


async def test_an_allowlisted_receiver_may_be_subscribed_over_http(api: Api) -> None:
    r = await api.client.post("/subscriptions", headers=auth("coord"), json={
        **HOOK, "url": "http://127.0.0.1:8099/webhook"})
    assert r.status_code == 201, r.text


async def test_removal_rules(api: Api) -> None:
    sid = (await api.client.post("/subscriptions", json=HOOK, headers=auth("radiology"))
           ).json()["id"]
    assert (await api.client.delete(f"/subscriptions/{sid}", headers=auth("surgery"))
            ).status_code == 404
    assert (await api.client.delete("/subscriptions/from-file", headers=auth("coord"))
            ).status_code == 403  # a system subscription
    assert (await api.client.delete("/subscriptions/from-file", headers=auth("admin"))
            ).status_code == 409  # configured by file
    assert (await api.client.delete(f"/subscriptions/{sid}", headers=auth("radiology"))
            ).status_code == 200
    assert (await api.client.get(f"/subscriptions/{sid}", headers=auth("radiology"))
            ).status_code == 404


async def test_api_subscriptions_persist_in_redis_for_every_instance(api: Api) -> None:
    r = await api.client.post(
        "/subscriptions", headers=auth("coord"),
        json={"event_types": ["carepath.pathway.status.v1"], "channel": "email",
              "email": "coord@hospital.example"},
    )
    created = r.json()
    hook = (await api.client.post("/subscriptions", json=HOOK, headers=auth("radiology"))
            ).json()
    # another process, or a restart
    other = SubscriptionStore(api.redis, api.ns, [FILE_SUB], guard=GUARD)
    seen = {s.subscription.id: s for s in await other.all()}
    assert set(seen) == {"from-file", created["id"], hook["id"]}
    assert seen[created["id"]].subscription.kind == "coordinator"
    stored_secret = seen[hook["id"]].subscription.secret
    assert stored_secret is not None and stored_secret.get_secret_value() == hook["secret"]
    # A removal through one instance is seen by the other on its next read.
    await other.delete(created["id"])
    assert created["id"] not in {s.subscription.id for s in await api.store.all()}
