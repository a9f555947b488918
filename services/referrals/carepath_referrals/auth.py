"""Bearer tokens to actors (a team and a role).

Tokens come from a JSON file (``CAREPATH_API_TOKENS_FILE``): ``{"<token>": {"subject": ...,
"team": ..., "role": ...}}``. Only SHA-256 digests of the tokens are kept in memory, and
lookups compare digests, so a token never sits in a log or a dict key in the clear.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from fastapi import HTTPException, Request

from carepath_referrals.domain import Actor

DEV_TOKENS_FILE = Path(__file__).resolve().parents[3] / "deploy" / "tokens.dev.json"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenRegistry:
    def __init__(self, mapping: dict[str, Actor]) -> None:
        self._by_digest = {_digest(tok): actor for tok, actor in mapping.items()}

    @classmethod
    def from_file(cls, path: str | Path) -> TokenRegistry:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls({tok: Actor.model_validate(v) for tok, v in raw.items()})

    def actor_for(self, request: Request) -> Actor:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise HTTPException(401, "missing bearer token",
                                headers={"WWW-Authenticate": "Bearer"})
        actor = self._by_digest.get(_digest(token.strip()))
        if actor is None:
            raise HTTPException(401, "unknown or revoked token",
                                headers={"WWW-Authenticate": "Bearer"})
        return actor
