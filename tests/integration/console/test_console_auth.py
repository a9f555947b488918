"""Console sign-in and session security against real Redis and a real console process.

OpenID Connect: a tiny issuer served here on 127.0.0.1 (generated RSA key, discovery, JWKS,
an authorize endpoint that approves at once, a token endpoint that checks the PKCE verifier)
signs the console in; team and role come from the configured claims. Refusals: a wrong nonce,
a key the issuer does not publish. Sessions: HttpOnly + SameSite=Strict cookie, CSRF token and
Origin checks on state-changing requests, sign-out deletes the server-side session.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import httpx
import jwt
import pytest
import redis
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse

from support.processes import ServiceProcess, free_port

pytestmark = [pytest.mark.redis]
CLIENT_ID = "carepath-console-test"


class Issuer:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.rogue = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.codes: dict[str, dict[str, Any]] = {}
        self.mode = "good"
        self.claims: dict[str, Any] = {"carepath_team": "interventional_pain",
                                       "carepath_role": "team_member"}
        app = FastAPI()
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)

        @app.get("/.well-known/openid-configuration")
        async def discovery() -> JSONResponse:
            u = self.url
            return JSONResponse({"issuer": u, "authorization_endpoint": f"{u}/authorize",
                                 "token_endpoint": f"{u}/token", "jwks_uri": f"{u}/jwks"})

        @app.get("/jwks")
        async def jwks() -> JSONResponse:
            return JSONResponse({"keys": [{**jwk, "kid": "k1", "alg": "RS256", "use": "sig"}]})

        @app.get("/authorize")
        async def authorize(request: Request) -> RedirectResponse:
            q = request.query_params
            assert q["code_challenge_method"] == "S256" and q["response_type"] == "code"
            code = secrets.token_urlsafe(16)
            self.codes[code] = dict(q)
            back = urlencode({"code": code, "state": q["state"]})
            return RedirectResponse(f"{q['redirect_uri']}?{back}", status_code=302)

        @app.post("/token")
        async def token(request: Request) -> JSONResponse:
            form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
            code, code_verifier = form.get("code", ""), form.get("code_verifier", "")
            client_id, redirect_uri = form.get("client_id"), form.get("redirect_uri")
            grant_type = form.get("grant_type")
            asked = self.codes.pop(code, None)
            challenge = base64.urlsafe_b64encode(
                hashlib.sha256(code_verifier.encode()).digest()).rstrip(b"=").decode()
            if (asked is None or asked["code_challenge"] != challenge or client_id != CLIENT_ID
                    or redirect_uri != asked["redirect_uri"] or grant_type != "authorization_code"):
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            now = int(time.time())
            claims = {"iss": self.url, "aud": CLIENT_ID, "sub": "oidc-user-1", "iat": now,
                      "exp": now + 300, "nonce": asked["nonce"], **self.claims}
            if self.mode == "bad-nonce":
                claims["nonce"] = "not-the-one"
            signer = self.rogue if self.mode == "rogue-key" else self.key
            id_token = jwt.encode(claims, signer, algorithm="RS256", headers={"kid": "k1"})
            return JSONResponse({"id_token": id_token, "access_token": "dev-interventional-token",
                                 "token_type": "Bearer", "expires_in": 600})

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Issuer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        return self

    def __exit__(self, *_: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    with Issuer() as i:
        yield i


@pytest.fixture(scope="module")
def console(issuer: Issuer, redis_url: str) -> Iterator[ServiceProcess]:
    port = free_port()
    ns = f"consoleauth{uuid.uuid4().hex[:6]}x"
    env = {"REDIS_URL": redis_url, "CAREPATH_NAMESPACE": ns, "CONSOLE_PORT": str(port),
           "CONSOLE_OIDC_ISSUER": issuer.url, "CONSOLE_OIDC_CLIENT_ID": CLIENT_ID,
           "CONSOLE_DEV_SIGNIN": "false", "REFERRALS_PORT": str(free_port()),
           "NOTIFICATIONS_PORT": str(free_port())}
    proc = ServiceProcess("console-auth", "carepath_console.main", port, env)
    proc.start()
    yield proc
    proc.stop()
    client = redis.Redis.from_url(redis_url)
    for k in client.scan_iter(match=f"{ns}:*"):
        client.delete(k)


def sign_in(console: ServiceProcess) -> httpx.Client:
    client = httpx.Client(base_url=console.url, timeout=15)
    r = client.get("/auth/login")
    assert r.status_code == 302, r.text
    at_issuer = httpx.get(r.headers["location"], timeout=15)
    assert at_issuer.status_code == 302
    back = urlparse(at_issuer.headers["location"])
    assert f"http://{back.netloc}" == console.url and back.path == "/auth/callback"
    cb = client.get(f"/auth/callback?{back.query}")
    client.last_callback = cb  # type: ignore[attr-defined]
    return client


def test_oidc_code_flow_with_pkce_signs_in_with_team_and_role_from_claims(
        console: ServiceProcess, issuer: Issuer) -> None:
    issuer.mode = "good"
    options = httpx.get(f"{console.url}/auth/options").json()
    assert options == {"dev": [], "oidc": True}
    client = sign_in(console)
    cb = client.last_callback  # type: ignore[attr-defined]
    assert cb.status_code == 303, cb.text
    cookie = cb.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert "Path=/" in cookie and "Domain" not in cookie
    me = client.get("/api/me").json()
    assert (me["subject"], me["team"], me["role"], me["method"]) == (
        "oidc-user-1", "interventional_pain", "team_member", "oidc")
    assert "token" not in me


def test_a_replayed_state_is_refused(console: ServiceProcess, issuer: Issuer) -> None:
    issuer.mode = "good"
    client = httpx.Client(base_url=console.url, timeout=15)
    at_issuer = httpx.get(client.get("/auth/login").headers["location"], timeout=15)
    query = urlparse(at_issuer.headers["location"]).query
    assert client.get(f"/auth/callback?{query}").status_code == 303
    assert client.get(f"/auth/callback?{query}").status_code == 400


@pytest.mark.parametrize("mode", ["bad-nonce", "rogue-key"])
def test_an_id_token_that_fails_validation_signs_no_one_in(
        console: ServiceProcess, issuer: Issuer, mode: str) -> None:
    issuer.mode = mode
    try:
        client = sign_in(console)
        cb = client.last_callback  # type: ignore[attr-defined]
        assert cb.status_code == 401
        assert cb.headers["content-type"].startswith("application/problem+json")
        assert "set-cookie" not in cb.headers
        assert client.get("/api/me").status_code == 401
    finally:
        issuer.mode = "good"


def test_a_missing_role_claim_is_refused(console: ServiceProcess, issuer: Issuer) -> None:
    saved = dict(issuer.claims)
    issuer.claims = {"carepath_team": "surgery"}
    try:
        cb = sign_in(console).last_callback  # type: ignore[attr-defined]
        assert cb.status_code == 403
    finally:
        issuer.claims = saved


def test_csrf_origin_and_sign_out(console: ServiceProcess, issuer: Issuer,
                                  redis_url: str) -> None:
    issuer.mode = "good"
    client = sign_in(console)
    me = client.get("/api/me").json()
    ns_keys = redis.Redis.from_url(redis_url)
    ns = console.env["CAREPATH_NAMESPACE"]
    before = len(list(ns_keys.scan_iter(match=f"{ns}:console:session:*")))
    origin = {"Origin": console.url}
    # No CSRF token, a wrong one, a foreign origin: all refused, the session stays.
    assert client.post("/auth/signout", headers=origin).status_code == 403
    assert client.post("/auth/signout", headers={**origin, "X-CSRF-Token": "x"}).status_code == 403
    foreign = {"Origin": "http://127.0.0.2:9", "X-CSRF-Token": me["csrf"]}
    assert client.post("/auth/signout", headers=foreign).status_code == 403
    assert client.post("/auth/signout", headers={"X-CSRF-Token": me["csrf"]}).status_code == 403
    assert client.get("/api/me").status_code == 200
    # The dev sign-in does not exist here.
    assert client.post("/auth/dev", json={"subject": "pain@example.org"},
                       headers=origin).status_code == 404
    r = client.post("/auth/signout", headers={**origin, "X-CSRF-Token": me["csrf"]})
    assert r.status_code == 200
    after = len(list(ns_keys.scan_iter(match=f"{ns}:console:session:*")))
    assert after == before - 1
    assert client.get("/api/me").status_code == 401
