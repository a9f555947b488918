"""Who is calling: bearer tokens to principals (a subject, a team and a role).

Every API but ``/health`` authenticates its caller through one :class:`Authenticator`, which
asks its :class:`Verifier`\\s in turn:

* :class:`TokenRegistry`, the development token file (``CAREPATH_API_TOKENS_FILE``, default
  ``deploy/tokens.dev.json`` relative to the working directory; empty turns it off):
  ``{"<token>": {"subject": ..., "team": ..., "role": ...}}``. Only SHA-256 digests of the
  tokens are kept, so a token never sits in memory as a dict key in the clear;
* :class:`carepath_runtime.auth_jwt.JwtVerifier`, JWTs signed by an OpenID Connect issuer
  (``CAREPATH_OIDC_*`` settings).

No token, or one no verifier accepts: 401 with ``WWW-Authenticate: Bearer``. A known caller
whose role may not use an endpoint: 403. Roles are plain strings (``integration``,
``team_member``, ``coordinator``, ``admin``, ``dashboard``); each service decides what a role
may do (docs/api-access.md has the table).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Protocol

from fastapi import Request
from pydantic import BaseModel, ConfigDict, StringConstraints

from carepath_runtime.http_errors import ProblemError
from carepath_runtime.settings import Settings

DEFAULT_TOKENS_FILE = "deploy/tokens.dev.json"
_Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="carepath"'}


class Principal(BaseModel):
    """Who is calling."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    subject: _Text
    team: _Text
    role: _Text


class Verifier(Protocol):
    """Turns a bearer token into a principal, or ``None`` when it does not accept it."""

    async def verify(self, token: str) -> Principal | None: ...


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenRegistry:
    """The development token file: fixed tokens, each naming its principal."""

    def __init__(self, mapping: dict[str, Principal]) -> None:
        self._by_digest = {_digest(tok): p for tok, p in mapping.items()}

    @classmethod
    def from_file(cls, path: str | Path) -> TokenRegistry:
        source = Path(path)
        raw = json.loads(source.read_text(encoding="utf-8"))
        if not isinstance(raw, dict):
            raise ValueError(f"{source}: expected a JSON object of token -> principal")
        return cls({tok: Principal.model_validate(v) for tok, v in raw.items()})

    def lookup(self, token: str) -> Principal | None:
        return self._by_digest.get(_digest(token.strip())) if token.strip() else None

    async def verify(self, token: str) -> Principal | None:
        return self.lookup(token)


class Authenticator:
    """The one door of every API: the caller, from the ``Authorization: Bearer`` header."""

    def __init__(self, verifiers: Sequence[Verifier]) -> None:
        self._verifiers = tuple(verifiers)

    async def principal_for(self, request: Request) -> Principal:
        """The caller of ``request``; 401 without a token some verifier accepts."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise ProblemError(401, "a bearer token is required", headers=_CHALLENGE)
        if len(token) <= 8192:
            for verifier in self._verifiers:
                principal = await verifier.verify(token)
                if principal is not None:
                    return principal
        raise ProblemError(401, "the bearer token is unknown, expired or invalid",
                           headers={"WWW-Authenticate": 'Bearer realm="carepath", '
                                                        'error="invalid_token"'})

    async def require(self, request: Request, roles: frozenset[str]) -> Principal:
        """The caller, who must hold one of ``roles`` (403 otherwise)."""
        principal = await self.principal_for(request)
        if principal.role not in roles:
            raise ProblemError(403, f"the role {principal.role} may not do this")
        return principal


def tokens_file(settings: Settings) -> Path | None:
    """The development token file the settings name (relative: to the working directory)."""
    configured = settings.carepath_api_tokens_file
    if configured is None:
        configured = DEFAULT_TOKENS_FILE
    return Path(configured) if configured.strip() else None


def authenticator_from_settings(settings: Settings) -> Authenticator:
    """The token file (when configured) and the OIDC issuer (when configured)."""
    verifiers: list[Verifier] = []
    path = tokens_file(settings)
    if path is not None:
        verifiers.append(TokenRegistry.from_file(path))
    if settings.carepath_oidc_issuer:
        from carepath_runtime.auth_jwt import JwtVerifier

        verifiers.append(JwtVerifier.from_settings(settings))
    return Authenticator(verifiers)
