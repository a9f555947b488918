"""The ``Idempotency-Key`` header, kept in Redis.

A key first seen is claimed (``SET NX`` with a short lease) while the request runs; once the
event is durably published the response is stored for 24 hours. The same key with the same
body replays the stored response; with a different body it is refused (422); while the
first request still runs, a second gets 409.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as aioredis

from carepath_runtime.redis_client import key as rkey

LEASE_SECONDS = 30
KEEP_SECONDS = 86400


@dataclass(frozen=True)
class Claim:
    state: str  # "claimed" | "replay" | "conflict" | "in_progress"
    response: dict[str, Any] | None = None


class IdempotencyStore:
    def __init__(self, redis: aioredis.Redis, namespace: str) -> None:
        self._redis = redis
        self._ns = namespace

    def _key(self, scope: str, idem_key: str) -> str:
        return rkey(self._ns, "intake", "idem", scope, idem_key)

    async def claim(self, scope: str, idem_key: str, body_hash: str) -> Claim:
        k = self._key(scope, idem_key)
        record = orjson.dumps({"state": "processing", "hash": body_hash})
        if await self._redis.set(k, record, nx=True, ex=LEASE_SECONDS):
            return Claim("claimed")
        raw = await self._redis.get(k)
        if raw is None:  # lease expired between the two calls
            return await self.claim(scope, idem_key, body_hash)
        existing = orjson.loads(raw)
        if existing.get("hash") != body_hash:
            return Claim("conflict")
        if existing.get("state") == "done":
            return Claim("replay", existing.get("response"))
        return Claim("in_progress")

    async def complete(
        self, scope: str, idem_key: str, body_hash: str, response: dict[str, Any]
    ) -> None:
        record = orjson.dumps({"state": "done", "hash": body_hash, "response": response})
        await self._redis.set(self._key(scope, idem_key), record, ex=KEEP_SECONDS)

    async def release(self, scope: str, idem_key: str) -> None:
        await self._redis.delete(self._key(scope, idem_key))
