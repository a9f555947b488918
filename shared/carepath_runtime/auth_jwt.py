"""JWT bearer tokens signed by an OpenID Connect issuer, checked against its JWKS.

* Algorithms: RS256 and ES256 (``CAREPATH_OIDC_ALGORITHMS``); ``none`` and HMAC never.
* Claims: ``iss`` must equal ``CAREPATH_OIDC_ISSUER``, ``aud`` must hold
  ``CAREPATH_OIDC_AUDIENCE``, ``exp`` is required and ``nbf``/``iat`` are checked when present
  (``CAREPATH_OIDC_LEEWAY_S`` of clock skew).
* The principal: subject, role and team from configurable claims (dotted paths such as
  ``realm_access.roles``; a list names its first known role). A token without a role or team
  is refused.
* Keys: the JWKS (``CAREPATH_OIDC_JWKS_URL``, else the ``jwks_uri`` of the issuer's
  ``/.well-known/openid-configuration``) is fetched on first use and cached
  (``CAREPATH_OIDC_JWKS_CACHE_S``); a token whose ``kid`` is not in the cache refetches it
  (key rotation), at most once per ``CAREPATH_OIDC_JWKS_MIN_REFRESH_S``.

A token this verifier refuses yields ``None`` (the caller answers 401); the reason goes to the
log by name only, never with the token or its claims.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import httpx
import jwt

from carepath_runtime.auth import Principal
from carepath_runtime.log import get_logger
from carepath_runtime.settings import Settings

log = get_logger(__name__)

SUPPORTED_ALGORITHMS = frozenset({"RS256", "ES256"})
KNOWN_ROLES = ("admin", "coordinator", "team_member", "dashboard", "integration")


class JwtVerifier:
    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        jwks_url: str | None = None,
        algorithms: Sequence[str] = ("RS256", "ES256"),
        role_claim: str = "carepath_role",
        team_claim: str = "carepath_team",
        subject_claim: str = "sub",
        leeway_s: float = 30.0,
        cache_s: float = 300.0,
        min_refresh_s: float = 10.0,
        http_timeout_s: float = 5.0,
    ) -> None:
        unsupported = set(algorithms) - SUPPORTED_ALGORITHMS
        if unsupported or not algorithms:
            raise ValueError(f"JWT algorithms must be among {sorted(SUPPORTED_ALGORITHMS)}")
        self.issuer = issuer
        self.audience = audience
        self._jwks_url = jwks_url
        self.algorithms = tuple(algorithms)
        self.role_claim = role_claim
        self.team_claim = team_claim
        self.subject_claim = subject_claim
        self.leeway_s = leeway_s
        self.cache_s = cache_s
        self.min_refresh_s = min_refresh_s
        self.http_timeout_s = http_timeout_s
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0

    @classmethod
    def from_settings(cls, s: Settings) -> JwtVerifier:
        if not s.carepath_oidc_issuer or not s.carepath_oidc_audience:
            raise ValueError("CAREPATH_OIDC_ISSUER and CAREPATH_OIDC_AUDIENCE are both needed")
        return cls(
            issuer=s.carepath_oidc_issuer,
            audience=s.carepath_oidc_audience,
            jwks_url=s.carepath_oidc_jwks_url,
            algorithms=[a.strip() for a in s.carepath_oidc_algorithms.split(",") if a.strip()],
            role_claim=s.carepath_oidc_role_claim,
            team_claim=s.carepath_oidc_team_claim,
            subject_claim=s.carepath_oidc_subject_claim,
            leeway_s=s.carepath_oidc_leeway_s,
            cache_s=s.carepath_oidc_jwks_cache_s,
            min_refresh_s=s.carepath_oidc_jwks_min_refresh_s,
        )

    # -- keys ------------------------------------------------------------------------------

    async def _jwks_location(self, client: httpx.AsyncClient) -> str:
        if self._jwks_url is None:
            url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
            r = await client.get(url)
            r.raise_for_status()
            self._jwks_url = str(r.json()["jwks_uri"])
        return self._jwks_url

    async def _refresh(self, *, forced: bool) -> None:
        async with self._lock:
            now = time.monotonic()
            if self._fetched_at is not None:
                age = now - self._fetched_at
                if (forced and age < self.min_refresh_s) or (not forced and age < self.cache_s):
                    return
            async with httpx.AsyncClient(timeout=self.http_timeout_s) as client:
                r = await client.get(await self._jwks_location(client))
                r.raise_for_status()
                document = r.json()
            keys: dict[str, jwt.PyJWK] = {}
            for n, raw in enumerate(document.get("keys", [])):
                if raw.get("use", "sig") != "sig":
                    continue
                try:
                    key = jwt.PyJWK(raw)
                except (jwt.PyJWKError, jwt.InvalidKeyError):
                    log.warning("jwks_key_skipped", index=n)
                    continue
                keys[str(raw.get("kid", f"#{n}"))] = key
            self._keys = keys
            self._fetched_at = now
            self.fetches += 1

    async def _key_for(self, kid: str | None) -> jwt.PyJWK | None:
        if self._fetched_at is None or time.monotonic() - self._fetched_at >= self.cache_s:
            await self._refresh(forced=False)
        if kid is None:
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        if kid not in self._keys:
            await self._refresh(forced=True)
        return self._keys.get(kid)

    # -- tokens ----------------------------------------------------------------------------

    async def verify(self, token: str) -> Principal | None:
        if token.count(".") != 2:
            return None  # not a JWT: another verifier's token
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return self._refused("malformed")
        alg = header.get("alg")
        if alg not in self.algorithms:
            return self._refused("algorithm")
        try:
            key = await self._key_for(header.get("kid"))
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            log.warning("jwks_unavailable", error_type=type(exc).__name__)
            return None
        if key is None:
            return self._refused("unknown_key")
        if key.algorithm_name != alg:
            return self._refused("key_algorithm")
        try:
            claims: dict[str, Any] = jwt.decode(
                token, key, algorithms=[alg], audience=self.audience, issuer=self.issuer,
                leeway=self.leeway_s,
                options={"require": ["exp", "iss", "aud"], "verify_nbf": True},
            )
        except jwt.ExpiredSignatureError:
            return self._refused("expired")
        except jwt.ImmatureSignatureError:
            return self._refused("not_yet_valid")
        except jwt.InvalidAudienceError:
            return self._refused("audience")
        except jwt.InvalidIssuerError:
            return self._refused("issuer")
        except jwt.PyJWTError:
            return self._refused("invalid")
        subject = _claim(claims, self.subject_claim)
        role = _role(_claim(claims, self.role_claim))
        team = _claim(claims, self.team_claim)
        if not isinstance(subject, str) or role is None or not isinstance(team, str):
            return self._refused("claims")
        try:
            return Principal(subject=subject, team=team, role=role)
        except ValueError:
            return self._refused("claims")

    @staticmethod
    def _refused(reason: str) -> None:
        log.info("jwt_refused", reason=reason)
        return None


def _claim(claims: dict[str, Any], path: str) -> Any:
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _role(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        for role in KNOWN_ROLES:
            if role in value:
                return role
    return None
