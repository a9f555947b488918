"""Where subscriptions live: a file (read at start) and Redis (created through the API).

File subscriptions (``CAREPATH_SUBSCRIPTIONS_FILE``, plus the default system webhook when
``CAREPATH_WEBHOOK_URL`` is set) are fixed for the life of the process. API subscriptions are
one Redis hash (id -> record) with a version counter that every change bumps; readers keep a
copy and reload it when the version moved, so a subscription created on one instance is used
by every instance on its next event.

Secrets are stored with the subscription (the sender needs them to sign); they are never
returned by the API after creation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import redis.asyncio as aioredis
from pydantic import SecretStr

from carepath_notifications.domain.subscriptions import Subscription, load_subscriptions
from carepath_shared.redis_client import key as rkey
from carepath_shared.settings import Settings

DEFAULT_WEBHOOK_ID = "default-webhook"


def file_subscriptions(settings: Settings) -> list[Subscription]:
    subs: list[Subscription] = []
    if settings.carepath_subscriptions_file:
        subs.extend(load_subscriptions(settings.carepath_subscriptions_file))
    if settings.carepath_webhook_url:
        subs.append(
            Subscription(
                id=DEFAULT_WEBHOOK_ID,
                subscriber="configured webhook (CAREPATH_WEBHOOK_URL)",
                kind="system",
                event_types=["carepath.referral.*"],
                channel="webhook",
                url=settings.carepath_webhook_url,
                secret=SecretStr(settings.carepath_webhook_secret),
            )
        )
    return subs


@dataclass(frozen=True)
class StoredSubscription:
    subscription: Subscription
    source: str  # "file" | "api"
    created_by: str | None = None
    created_at: str | None = None

    def public(self) -> dict[str, Any]:
        """The subscription as the API shows it: never the secret."""
        data = self.subscription.model_dump(mode="json", exclude={"secret"})
        data["source"] = self.source
        if self.created_by:
            data["created_by"] = self.created_by
        if self.created_at:
            data["created_at"] = self.created_at
        return data


class AlreadyExists(Exception):
    def __init__(self, existing: StoredSubscription) -> None:
        super().__init__(existing.subscription.id)
        self.existing = existing


class SubscriptionStore:
    def __init__(self, redis: aioredis.Redis, namespace: str,
                 fixed: list[Subscription]) -> None:
        self._redis = redis
        self._hash = rkey(namespace, "notify", "subs")
        self._version_key = rkey(namespace, "notify", "subs", "version")
        self._fixed = {s.id: StoredSubscription(s, "file") for s in fixed}
        self._version: bytes | None = b"unread"
        self._api: dict[str, StoredSubscription] = {}

    async def _refresh(self) -> None:
        version: Any = await self._redis.get(self._version_key)
        if version == self._version:
            return
        raw: Any = await self._redis.hgetall(self._hash)
        api: dict[str, StoredSubscription] = {}
        for value in raw.values():
            stored = _decode(value)
            if stored.subscription.id not in self._fixed:
                api[stored.subscription.id] = stored
        self._api, self._version = api, version

    async def all(self) -> list[StoredSubscription]:
        await self._refresh()
        return [*self._fixed.values(), *self._api.values()]

    async def active(self) -> list[Subscription]:
        return [s.subscription for s in await self.all() if s.subscription.active]

    async def get(self, subscription_id: str) -> StoredSubscription | None:
        fixed = self._fixed.get(subscription_id)
        if fixed is not None:
            return fixed
        await self._refresh()
        return self._api.get(subscription_id)

    async def create(self, sub: Subscription, created_by: str, at: datetime
                     ) -> StoredSubscription:
        """Store ``sub``; :class:`AlreadyExists` if its id is taken (by file or API)."""
        if sub.id in self._fixed:
            raise AlreadyExists(self._fixed[sub.id])
        stored = StoredSubscription(sub, "api", created_by, at.isoformat())
        added = await self._redis.hsetnx(self._hash, sub.id, _encode(stored))
        if not added:
            existing: Any = await self._redis.hget(self._hash, sub.id)
            raise AlreadyExists(_decode(existing))
        await self._redis.incr(self._version_key)
        return stored

    async def delete(self, subscription_id: str) -> bool:
        removed = int(await self._redis.hdel(self._hash, subscription_id))
        if removed:
            await self._redis.incr(self._version_key)
        return removed > 0


def _encode(stored: StoredSubscription) -> bytes:
    sub = stored.subscription.model_dump(mode="json")
    if stored.subscription.secret is not None:
        sub["secret"] = stored.subscription.secret.get_secret_value()
    return orjson.dumps({"subscription": sub, "created_by": stored.created_by,
                         "created_at": stored.created_at})


def _decode(raw: bytes) -> StoredSubscription:
    obj = orjson.loads(raw)
    return StoredSubscription(Subscription.model_validate(obj["subscription"]), "api",
                              obj.get("created_by"), obj.get("created_at"))
