"""OpenID Connect sign-in: authorization code flow with PKCE (S256), id token validation.

The console is a confidential client when a client secret is configured, public otherwise;
PKCE is used either way. The id token must be signed by a key of the issuer's JWKS (RS256,
ES256 or PS256), name the issuer and this client, be unexpired and carry the nonce sent.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt

ALGORITHMS = ["RS256", "ES256", "PS256"]


class OidcError(Exception):
    """Sign-in failed; the message says why (no token or code in it)."""


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


@dataclass
class OidcClient:
    issuer: str
    client_id: str
    client_secret: str | None
    scopes: str
    timeout_s: float = 10.0
    _discovery: dict[str, Any] | None = None
    _jwks: dict[str, Any] = field(default_factory=dict)

    async def discovery(self) -> dict[str, Any]:
        if self._discovery is None:
            url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                r = await client.get(url)
            if r.status_code != 200:
                raise OidcError(f"issuer discovery answered {r.status_code}")
            doc = r.json()
            if doc.get("issuer", "").rstrip("/") != self.issuer.rstrip("/"):
                raise OidcError("discovery document names another issuer")
            self._discovery = doc
        return self._discovery

    async def authorize_url(self, redirect_uri: str, state: str, nonce: str,
                            challenge: str) -> str:
        doc = await self.discovery()
        query = urlencode({
            "response_type": "code", "client_id": self.client_id, "redirect_uri": redirect_uri,
            "scope": self.scopes, "state": state, "nonce": nonce,
            "code_challenge": challenge, "code_challenge_method": "S256",
        })
        return f"{doc['authorization_endpoint']}?{query}"

    async def exchange(self, code: str, redirect_uri: str, verifier: str) -> dict[str, Any]:
        doc = await self.discovery()
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                "client_id": self.client_id, "code_verifier": verifier}
        async with httpx.AsyncClient(timeout=self.timeout_s) as client:
            if self.client_secret:
                r = await client.post(doc["token_endpoint"], data=form,
                                      auth=(self.client_id, self.client_secret))
            else:
                r = await client.post(doc["token_endpoint"], data=form)
        if r.status_code != 200:
            raise OidcError(f"token endpoint answered {r.status_code}")
        tokens: dict[str, Any] = r.json()
        if "id_token" not in tokens or "access_token" not in tokens:
            raise OidcError("token answer lacks id_token or access_token")
        return tokens

    async def _key(self, kid: str | None) -> Any:
        doc = await self.discovery()
        for attempt in range(2):
            if not self._jwks or attempt:
                async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                    r = await client.get(doc["jwks_uri"])
                if r.status_code != 200:
                    raise OidcError(f"jwks answered {r.status_code}")
                self._jwks = r.json()
            for k in self._jwks.get("keys", []):
                if kid is None or k.get("kid") == kid:
                    return jwt.PyJWK(k).key
        raise OidcError("id token signed by an unknown key")

    async def validate_id_token(self, id_token: str, nonce: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.PyJWTError as exc:
            raise OidcError("id token is not a JWT") from exc
        if header.get("alg") not in ALGORITHMS:
            raise OidcError("id token uses a refused algorithm")
        key = await self._key(header.get("kid"))
        try:
            claims: dict[str, Any] = jwt.decode(
                id_token, key, algorithms=ALGORITHMS, audience=self.client_id,
                issuer=(await self.discovery())["issuer"],
                options={"require": ["exp", "iat", "iss", "aud", "sub"]}, leeway=30,
            )
        except jwt.PyJWTError as exc:
            raise OidcError(f"id token refused: {type(exc).__name__}") from exc
        if not secrets.compare_digest(str(claims.get("nonce", "")), nonce):
            raise OidcError("id token nonce does not match")
        return claims
