"""Bearer tokens to principals (a subject, a team and a role), for any service's HTTP API.

Tokens come from a JSON file (``CAREPATH_API_TOKENS_FILE``, else the repository's
``deploy/tokens.dev.json``): ``{"<token>": {"subject": ..., "team": ..., "role": ...}}``.
Only SHA-256 digests of the tokens are kept in memory and lookups compare digests, so a
token never sits in a log line or a dict key in the clear.

Roles are plain strings here (``team_member``, ``coordinator``, ``admin``, ``dashboard``...);
each service decides what a role may do.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated

from fastapi import HTTPException, Request
from pydantic import BaseModel, ConfigDict, StringConstraints

DEV_TOKENS_FILE = Path(__file__).resolve().parents[2] / "deploy" / "tokens.dev.json"

_Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class Principal(BaseModel):
    """Who is calling."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    subject: _Text
    team: _Text
    role: _Text


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenRegistry:
    def __init__(self, mapping: dict[str, Principal]) -> None:
        self._by_digest = {_digest(tok): p for tok, p in mapping.items()}

    @classmethod
    def from_file(cls, path: str | Path | None = None) -> TokenRegistry:
        source = Path(path) if path else DEV_TOKENS_FILE
        raw = json.loads(source.read_text(encoding="utf-8"))
        if not isinstance(raw, dict):
            raise ValueError(f"{source}: expected a JSON object of token -> principal")
        return cls({tok: Principal.model_validate(v) for tok, v in raw.items()})

    def lookup(self, token: str) -> Principal | None:
        return self._by_digest.get(_digest(token.strip())) if token.strip() else None

    def principal_for(self, request: Request) -> Principal:
        """The caller of ``request``; HTTP 401 without a known bearer token."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
        principal = self.lookup(token)
        if principal is None:
            raise HTTPException(401, "unknown or revoked token",
                                headers={"WWW-Authenticate": "Bearer"})
        return principal

    def require(self, request: Request, roles: frozenset[str]) -> Principal:
        """The caller, who must hold one of ``roles`` (HTTP 403 otherwise)."""
        principal = self.principal_for(request)
        if principal.role not in roles:
            raise HTTPException(403, f"role {principal.role!r} may not do this")
        return principal
