"""Kafka adapters of the notifications service.

Consumes referral events and delivers each one to every matching subscription, once per
(event, subscription): a Redis marker is set only after the receiver answered 2xx, and a
redelivered event skips subscriptions already served. The ``webhook-id`` is derived from the
event id and subscription, so a receiver can also de-duplicate.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson
from pydantic import SecretStr

from carepath_notifications.domain.dedup import delivery_key, webhook_message_id
from carepath_notifications.domain.subscriptions import Subscription, load_subscriptions, select
from carepath_notifications.webhook_sender import send_webhook
from carepath_shared.consumer import Delivery, PermanentError, RetryConfig, reliable_subscriber
from carepath_shared.events import REFERRAL_CREATED
from carepath_shared.log import get_logger
from carepath_shared.redis_client import key as rkey
from carepath_shared.service import Runtime

GROUP = "carepath-notifications"
DELIVERED_TTL = 30 * 86400
log = get_logger(__name__)


class DeliveryFailed(RuntimeError):
    pass


def configured_subscriptions(rt: Runtime) -> list[Subscription]:
    subs: list[Subscription] = []
    if rt.settings.carepath_subscriptions_file:
        subs.extend(load_subscriptions(rt.settings.carepath_subscriptions_file))
    if rt.settings.carepath_webhook_url:
        subs.append(
            Subscription(
                id="default-webhook",
                subscriber="configured webhook (CAREPATH_WEBHOOK_URL)",
                kind="system",
                event_types=["carepath.referral.*"],
                channel="webhook",
                url=rt.settings.carepath_webhook_url,
                secret=SecretStr(rt.settings.carepath_webhook_secret),
            )
        )
    return subs


def register(rt: Runtime) -> None:
    subscriptions = configured_subscriptions(rt)
    client = httpx.AsyncClient(timeout=httpx.Timeout(5.0, connect=2.0))
    rt.extras["http_client"] = client

    async def handle(d: Delivery) -> None:
        body: Any = d.body
        team = getattr(body, "team", None)
        targets = select(subscriptions, d.envelope.type, team)
        payload = orjson.dumps(
            {
                "id": d.envelope.id,
                "type": d.envelope.type,
                "source": d.envelope.source,
                "time": d.envelope.time.isoformat(),
                "data": body.model_dump(mode="json"),
            }
        )
        failures: list[str] = []
        for sub in targets:
            if sub.channel != "webhook" or not sub.url or sub.secret is None:
                continue
            marker = rkey(rt.settings.namespace, "notify", "delivered",
                          delivery_key(d.envelope.id, sub.id))
            if await rt.redis.exists(marker):
                continue
            result = await send_webhook(
                client, sub.url, sub.secret.get_secret_value(),
                webhook_message_id(d.envelope.id, sub.id), payload,
            )
            if result.outcome == "success":
                await rt.redis.set(marker, b"1", ex=DELIVERED_TTL)
                log.info("webhook_delivered", event_id=d.envelope.id, subscription=sub.id,
                         status=result.status_code)
            elif result.outcome == "give_up":
                failures.append(f"{sub.id}: permanent {result.error}")
            else:
                failures.append(f"{sub.id}: {result.error}")
        if failures:
            if all("permanent" in f for f in failures):
                raise PermanentError("; ".join(failures))
            raise DeliveryFailed("; ".join(failures))

    reliable_subscriber(
        rt.broker,
        topic=rt.topics.referrals,
        group_id=GROUP,
        dlq_topic=rt.topics.dlq_notifications,
        handler=handle,
        redis=rt.redis,
        namespace=rt.settings.namespace,
        accepted_types=frozenset({REFERRAL_CREATED}),
        retry=RetryConfig(
            max_attempts=rt.settings.carepath_max_attempts,
            backoff_ms=rt.settings.carepath_retry_backoff_ms,
        ),
    )
