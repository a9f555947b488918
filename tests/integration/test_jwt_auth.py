"""JWT bearer tokens against a JWKS served on 127.0.0.1 with keys this test generates:
RS256 and ES256 accepted; iss, aud, exp and nbf checked; role and team from configurable
claims; the JWKS cached and refetched on an unknown kid (key rotation)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from carepath_runtime.auth import Authenticator, Principal, TokenRegistry
from carepath_runtime.auth_jwt import JwtVerifier

ISSUER = "https://issuer.test/realms/carepath"
AUDIENCE = "carepath-api"


class Jwks:
    """A JWKS document whose keys the test changes, served over HTTP on loopback."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.hits = 0
        jwks = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                jwks.hits += 1
                body = json.dumps({"keys": jwks.keys}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def add(self, public: Any, kid: str, alg: str) -> None:
        algorithm = RSAAlgorithm if alg == "RS256" else ECAlgorithm
        jwk = json.loads(algorithm.to_jwk(public))
        self.keys.append({**jwk, "kid": kid, "alg": alg, "use": "sig"})


@pytest.fixture()
def jwks() -> Iterator[Jwks]:
    served = Jwks()
    yield served
    served.server.shutdown()


RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def claims(**over: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"iss": ISSUER, "aud": AUDIENCE, "sub": "nurse-17", "iat": now, "nbf": now - 5,
            "exp": now + 300, "carepath_role": "team_member", "carepath_team": "radiology"}
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def token(key: Any, kid: str, alg: str = "RS256", **over: Any) -> str:
    return jwt.encode(claims(**over), key, algorithm=alg, headers={"kid": kid})


def verifier(jwks: Jwks, **kw: Any) -> JwtVerifier:
    return JwtVerifier(issuer=ISSUER, audience=AUDIENCE, jwks_url=jwks.url,
                       min_refresh_s=0.0, leeway_s=0, **kw)


async def test_rs256_and_es256_tokens_name_their_principal(jwks: Jwks) -> None:
    jwks.add(RSA_KEY.public_key(), "rsa-1", "RS256")
    jwks.add(EC_KEY.public_key(), "ec-1", "ES256")
    v = verifier(jwks)
    assert await v.verify(token(RSA_KEY, "rsa-1")) == Principal(
        subject="nurse-17", team="radiology", role="team_member")
    es = await v.verify(token(EC_KEY, "ec-1", "ES256", carepath_role="coordinator",
                              carepath_team="care_coordinator"))
    assert es is not None and es.role == "coordinator"
    assert jwks.hits == 1  # fetched once, then cached


@pytest.mark.parametrize("over", [
    {"iss": "https://evil.test/"},
    {"aud": "another-api"},
    {"exp": -60},  # relative to now, resolved when the test runs
    {"nbf": 600},
    {"exp": None},
    {"carepath_role": None},
    {"carepath_team": None},
])
async def test_claims_are_checked(jwks: Jwks, over: dict[str, Any]) -> None:
    jwks.add(RSA_KEY.public_key(), "rsa-1", "RS256")
    v = verifier(jwks)
    assert await v.verify(token(RSA_KEY, "rsa-1")) is not None
    now = int(time.time())
    resolved = {k: (now + val if k in ("exp", "nbf") and isinstance(val, int) else val)
                for k, val in over.items()}
    assert await v.verify(token(RSA_KEY, "rsa-1", **resolved)) is None


async def test_signatures_and_algorithms_are_checked(jwks: Jwks) -> None:
    jwks.add(RSA_KEY.public_key(), "rsa-1", "RS256")
    v = verifier(jwks)
    forged_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert await v.verify(token(forged_key, "rsa-1")) is None  # not the issuer's key
    unsigned = jwt.encode(claims(), None, algorithm="none", headers={"kid": "rsa-1"})
    assert await v.verify(unsigned) is None
    hmac = jwt.encode(claims(), "shared-secret-of-32-bytes-or-more!!", algorithm="HS256",
                      headers={"kid": "rsa-1"})
    assert await v.verify(hmac) is None
    assert await v.verify(token(EC_KEY, "rsa-1", "ES256")) is None  # key/alg mismatch
    assert await v.verify("not.a.jwt") is None
    assert await v.verify("dev-coordinator-token") is None  # not a JWT: someone else's


async def test_an_unknown_kid_refetches_the_jwks_after_rotation(jwks: Jwks) -> None:
    jwks.add(RSA_KEY.public_key(), "rsa-1", "RS256")
    v = verifier(jwks)
    assert await v.verify(token(RSA_KEY, "rsa-1")) is not None
    rotated = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwks.keys = []
    jwks.add(rotated.public_key(), "rsa-2", "RS256")
    assert await v.verify(token(rotated, "rsa-2")) is not None
    assert jwks.hits == 2
    assert await v.verify(token(RSA_KEY, "rsa-1")) is None  # the retired key is gone


async def test_unknown_kids_refetch_at_most_once_per_interval(jwks: Jwks) -> None:
    jwks.add(RSA_KEY.public_key(), "rsa-1", "RS256")
    v = JwtVerifier(issuer=ISSUER, audience=AUDIENCE, jwks_url=jwks.url, min_refresh_s=60)
    assert await v.verify(token(RSA_KEY, "rsa-1")) is not None
    for n in range(5):
        assert await v.verify(token(RSA_KEY, f"random-{n}")) is None
    assert jwks.hits == 1


async def test_role_and_team_claims_are_configurable(jwks: Jwks) -> None:
    jwks.add(RSA_KEY.public_key(), "rsa-1", "RS256")
    v = verifier(jwks, role_claim="realm_access.roles", team_claim="org.team")
    t = token(RSA_KEY, "rsa-1", carepath_role=None, carepath_team=None,
              realm_access={"roles": ["offline_access", "coordinator"]},
              org={"team": "care_coordinator"})
    p = await v.verify(t)
    assert p is not None and (p.role, p.team) == ("coordinator", "care_coordinator")


async def test_one_authenticator_takes_dev_tokens_and_jwts(jwks: Jwks) -> None:
    from starlette.requests import Request

    jwks.add(RSA_KEY.public_key(), "rsa-1", "RS256")
    auth = Authenticator([
        TokenRegistry({"dev-x": Principal(subject="x", team="integration", role="integration")}),
        verifier(jwks)])

    def request(value: str) -> Request:
        return Request({"type": "http", "headers": [(b"authorization", value.encode())]})

    assert (await auth.principal_for(request("Bearer dev-x"))).role == "integration"
    assert (await auth.principal_for(request(f"Bearer {token(RSA_KEY, 'rsa-1')}"))).team == \
        "radiology"
    from carepath_runtime.http_errors import ProblemError

    for bad in ("Bearer nope", "Basic abc", "Bearer ", f"Bearer {token(RSA_KEY, 'zzz')}"):
        with pytest.raises(ProblemError) as caught:
            await auth.principal_for(request(bad))
        assert caught.value.status == 401
    with pytest.raises(ProblemError) as forbidden:
        await auth.require(request("Bearer dev-x"), frozenset({"coordinator"}))
    assert forbidden.value.status == 403
