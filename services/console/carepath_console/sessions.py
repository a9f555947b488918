"""Server-side sessions in Redis: the browser holds only a random id in a cookie.

Keys are ``{namespace}:console:session:<sha256 of the id>`` (the id itself is never stored or
logged). A session holds who signed in (subject, team, role, as the sign-in established them),
the bearer token the console uses upstream on their behalf, and the CSRF token.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import Any

import orjson
import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict


class Session(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    subject: str
    team: str
    role: str
    token: str
    csrf: str
    method: str  # "dev" or "oidc"
    created_at: float
    expires_at: float

    def public(self) -> dict[str, Any]:
        """What the browser may know about its own session (never the token)."""
        return {"subject": self.subject, "team": self.team, "role": self.role,
                "method": self.method, "csrf": self.csrf, "expires_at": self.expires_at}


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class SessionStore:
    def __init__(self, redis: aioredis.Redis, namespace: str, ttl_s: int) -> None:
        self.redis = redis
        self.ns = namespace
        self.ttl_s = ttl_s

    def _key(self, sid: str) -> str:
        return f"{self.ns}:console:session:{_digest(sid)}"

    async def create(self, *, subject: str, team: str, role: str, token: str, method: str,
                     ttl_s: int | None = None) -> tuple[str, Session]:
        sid = secrets.token_urlsafe(32)
        now = time.time()
        ttl = min(ttl_s or self.ttl_s, self.ttl_s)
        session = Session(subject=subject, team=team, role=role, token=token,
                          csrf=secrets.token_urlsafe(32), method=method,
                          created_at=now, expires_at=now + ttl)
        await self.redis.set(self._key(sid), orjson.dumps(session.model_dump()), ex=ttl)
        return sid, session

    async def get(self, sid: str | None) -> Session | None:
        if not sid or len(sid) > 200:
            return None
        raw = await self.redis.get(self._key(sid))
        if raw is None:
            return None
        session = Session.model_validate(orjson.loads(raw))
        return session if session.expires_at > time.time() else None

    async def delete(self, sid: str | None) -> None:
        if sid:
            await self.redis.delete(self._key(sid))

    # -- "changed since your last visit" -------------------------------------------------

    def _seen_key(self, subject: str, episode_id: str) -> str:
        return f"{self.ns}:console:seen:{_digest(subject)}:{_digest(episode_id)}"

    async def swap_last_seen(self, subject: str, episode_id: str, version: int,
                             at: str) -> dict[str, Any] | None:
        """Record this visit (plan ``version``, time ``at``) and return the previous one."""
        key = self._seen_key(subject, episode_id)
        old = await self.redis.getset(key, orjson.dumps({"version": version, "at": at}))
        await self.redis.expire(key, 90 * 24 * 3600)
        return orjson.loads(old) if old else None

    # -- OIDC login state ----------------------------------------------------------------

    async def put_login(self, state: str, data: dict[str, Any]) -> None:
        await self.redis.set(f"{self.ns}:console:oidc:{_digest(state)}", orjson.dumps(data),
                             ex=600)

    async def pop_login(self, state: str) -> dict[str, Any] | None:
        raw = await self.redis.getdel(f"{self.ns}:console:oidc:{_digest(state)}")
        return orjson.loads(raw) if raw else None
