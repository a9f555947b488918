"""Where subscriptions live: a file (read at start) and Redis (created through the API).

File subscriptions (``CAREPATH_SUBSCRIPTIONS_FILE``, plus the default system webhook when
``CAREPATH_WEBHOOK_URL`` is set) are fixed for the life of the process. API subscriptions are
one Redis hash (id -> record) with a version counter that every change bumps; readers keep a
copy and reload it when the version moved.

Two read paths:

* the API (:meth:`SubscriptionStore.all`, :meth:`SubscriptionStore.get`) checks the version on
  every call, so a change made through one instance is visible through every other at once;
* the delivery path (:meth:`SubscriptionStore.current`, :meth:`SubscriptionStore.find`), which
  runs for every consumed event and every attempt, uses the cached set. It checks the version
  when a change notice arrives (Redis pub/sub, published by every create and delete; see
  :meth:`SubscriptionStore.watch`), immediately after a change made by this instance, and
  otherwise at most every ``refresh_s`` (the bound if a notice is lost). A job whose
  subscription the cache does not know forces a check before it is given up.

Secrets are stored with the subscription (the sender needs them to sign); they are never
returned by the API after creation.

Webhook destinations pass the destination guard (:mod:`.destination_resolver`) when they are
made: API subscriptions in :meth:`SubscriptionStore.create` (:class:`DestinationRefused`, which
the API answers with 422 naming ``url``), file subscriptions at start-up
(:func:`refused_file_destinations`; the service does not start with one refused).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import redis.asyncio as aioredis

from carepath_notifications.destination_resolver import DestinationGuard, ResolutionFailed
from carepath_notifications.domain.destination_guard import DestinationRefused
from carepath_notifications.domain.subscription_index import SubscriptionIndex
from carepath_notifications.domain.subscriptions import Subscription, load_subscriptions
from carepath_runtime.log import get_logger
from carepath_runtime.redis_client import key as rkey
from carepath_runtime.redis_client import tag
from carepath_runtime.settings import Settings

log = get_logger(__name__)

DEFAULT_WEBHOOK_ID = "default-webhook"
REFRESH_S = 1.0  # the longest the delivery path trusts its copy without a change notice


def file_subscriptions(settings: Settings) -> list[Subscription]:
    subs: list[Subscription] = []
    if settings.carepath_subscriptions_file:
        subs.extend(load_subscriptions(settings.carepath_subscriptions_file))
    if settings.carepath_webhook_url:
        if settings.carepath_webhook_secret is None:
            raise ValueError("CAREPATH_WEBHOOK_URL is set but CAREPATH_WEBHOOK_SECRET is not "
                             "(no default secret: generate one, see deploy/run-services.sh)")
        subs.append(
            Subscription(
                id=DEFAULT_WEBHOOK_ID,
                subscriber="configured webhook (CAREPATH_WEBHOOK_URL)",
                kind="system",
                event_types=["carepath.referral.*"],
                channel="webhook",
                url=settings.carepath_webhook_url,
                secret=settings.carepath_webhook_secret,
            )
        )
    return subs


def refused_file_destinations(subs: list[Subscription], guard: DestinationGuard
                              ) -> list[tuple[str, str]]:
    """(subscription id, reason) for every file webhook whose destination is refused.

    A host that does not resolve right now is only logged: the sender checks again before
    each connection.
    """
    refused: list[tuple[str, str]] = []
    for sub in subs:
        if sub.channel != "webhook" or sub.url is None:
            continue
        try:
            guard.check_now(sub.url)
        except DestinationRefused as exc:
            refused.append((sub.id, exc.reason))
        except ResolutionFailed as exc:
            log.warning("webhook_destination_unresolved", subscription=sub.id, error=str(exc))
    return refused


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
                 fixed: list[Subscription], *, guard: DestinationGuard,
                 refresh_s: float = REFRESH_S) -> None:
        self._redis = redis
        self._guard = guard
        # One hash tag: the table and its version are read in one MULTI (one cluster slot).
        prefix = rkey(namespace, tag(f"{namespace}:subs"))
        self._hash = prefix
        self._version_key = rkey(prefix, "version")
        self._channel = rkey(prefix, "changed")
        self._fixed = {s.id: StoredSubscription(s, "file") for s in fixed}
        self._version = -1  # not read yet; 0: no API subscription was ever stored
        self._api: dict[str, StoredSubscription] = {}
        self._index = SubscriptionIndex(fixed)
        self._refresh_s = refresh_s
        self._checked_at = float("-inf")  # monotonic time of the last version check
        self._stale = True  # a change notice arrived since that check

    async def _refresh(self) -> None:
        version = _version(await self._redis.get(self._version_key))
        if version == self._version:
            return
        # The version and the hash together (MULTI), so the copy is never a mix of two.
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.get(self._version_key)
            pipe.hgetall(self._hash)
            raw_version, raw = await pipe.execute()
        version = _version(raw_version)
        if self._version > version > 0:
            return  # a concurrent refresh already applied a newer copy
        api: dict[str, StoredSubscription] = {}
        for value in raw.values():
            stored = _decode(value)
            if stored.subscription.id not in self._fixed:
                api[stored.subscription.id] = stored
        self._api, self._version = api, version
        self._index = SubscriptionIndex(
            [*(s.subscription for s in self._fixed.values()),
             *(s.subscription for s in api.values())]
        )

    # ---- the API's reads: always current -------------------------------------------------

    async def all(self) -> list[StoredSubscription]:
        await self._refresh()
        return [*self._fixed.values(), *self._api.values()]

    async def get(self, subscription_id: str) -> StoredSubscription | None:
        fixed = self._fixed.get(subscription_id)
        if fixed is not None:
            return fixed
        await self._refresh()
        return self._api.get(subscription_id)

    # ---- the delivery path's reads: cached -----------------------------------------------

    async def current(self) -> SubscriptionIndex:
        """The active subscriptions; checked against Redis only after a change notice, or
        when the last check is ``refresh_s`` old."""
        now = time.monotonic()
        if self._stale or now - self._checked_at >= self._refresh_s:
            # Marked before the round trip: concurrent callers use the copy meanwhile, and
            # a notice that arrives during the check triggers another.
            self._stale, self._checked_at = False, now
            try:
                await self._refresh()
            except BaseException:
                self._stale = True
                raise
        return self._index

    async def find(self, subscription_id: str) -> Subscription | None:
        """The active subscription ``subscription_id``, from the cached set; one the cache
        does not know (created a moment ago elsewhere, or removed) is checked in Redis."""
        found = (await self.current()).get(subscription_id)
        if found is None:
            self._checked_at = time.monotonic()
            await self._refresh()
            found = self._index.get(subscription_id)
        return found

    def invalidate(self) -> None:
        """Check the version on the next read of the delivery path."""
        self._stale = True

    async def watch(self, retry_s: float = 1.0, max_retry_s: float = 30.0) -> None:
        """Mark the cached set stale on every change notice; runs until cancelled.

        While the subscription is down (Redis unreachable) notices are lost, so the set is
        marked stale whenever it (re)subscribes; ``refresh_s`` bounds the gap meanwhile.
        """
        delay = retry_s
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel)
                self._stale = True
                delay = retry_s
                async for _message in pubsub.listen():
                    self._stale = True
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("subscription_watch_failed", error=f"{type(exc).__name__}: {exc}",
                            retry_s=delay)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            self._stale = True
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_retry_s)

    async def _changed(self) -> None:
        """Bump the version and tell every instance (pub/sub), in one round trip."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.incr(self._version_key)
            pipe.publish(self._channel, b"1")
            await pipe.execute()
        self._stale = True

    async def create(self, sub: Subscription, created_by: str, at: datetime
                     ) -> StoredSubscription:
        """Store ``sub``; :class:`AlreadyExists` if its id is taken (by file or API),
        :class:`DestinationRefused` if its webhook destination is not allowed."""
        if sub.id in self._fixed:
            raise AlreadyExists(self._fixed[sub.id])
        if sub.channel == "webhook" and sub.url is not None:
            try:
                await self._guard.check(sub.url)
            except ResolutionFailed as exc:
                raise DestinationRefused("the host does not resolve") from exc
        stored = StoredSubscription(sub, "api", created_by, at.isoformat())
        added = await self._redis.hsetnx(self._hash, sub.id, _encode(stored))
        if not added:
            existing: Any = await self._redis.hget(self._hash, sub.id)
            raise AlreadyExists(_decode(existing))
        await self._changed()
        return stored

    async def delete(self, subscription_id: str) -> bool:
        removed = int(await self._redis.hdel(self._hash, subscription_id))
        if removed:
            await self._changed()
        return removed > 0


def _version(raw: Any) -> int:
    return int(raw) if raw is not None else 0


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
