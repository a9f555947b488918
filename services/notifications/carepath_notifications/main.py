"""Entry point of the notifications service: the composition root.

Kafka handlers enqueue delivery jobs; the delivery worker sends them (webhooks, email); the
HTTP app serves the subscriptions API and the live stream.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys

from fastapi import FastAPI

from carepath_notifications import handlers
from carepath_notifications.api import register_routes
from carepath_notifications.domain.attempts import AttemptResult
from carepath_notifications.domain.jobs import DeliveryJob
from carepath_notifications.domain.retry_policy import RetryPolicy
from carepath_notifications.domain.subscriptions import Subscription
from carepath_notifications.email_sender import SmtpConfig, send_email
from carepath_notifications.job_queue import JobQueue
from carepath_notifications.stream import register_stream
from carepath_notifications.subscription_store import SubscriptionStore, file_subscriptions
from carepath_notifications.webhook_client import WebhookClient, make_webhook_client
from carepath_notifications.webhook_sender import send_webhook
from carepath_notifications.worker import DeliveryWorker, Sender, WorkerConfig
from carepath_shared.auth import authenticator_from_settings
from carepath_shared.service import Runtime, make_app, make_runtime, serve
from carepath_shared.settings import Settings, get_settings

SERVICE = "notifications"

# httpcore (behind the proxy fallback, :class:`HttpxWebhookClient`) tries ``import sniffio`` on
# every request and falls back to asyncio when it is missing (anyio 4.16 no longer pulls it
# in). A failed import is not cached, so each request searched sys.path again (a third of the
# sender's CPU). Record the absence once.
if importlib.util.find_spec("sniffio") is None:
    sys.modules["sniffio"] = None  # type: ignore[assignment]


def retry_policy(settings: Settings) -> RetryPolicy:
    base = settings.carepath_notify_backoff_base_s
    return RetryPolicy(
        max_attempts=settings.carepath_notify_max_attempts,
        base_delay_s=base,
        max_delay_s=max(base, settings.carepath_notify_backoff_max_s),
    )


def make_senders(settings: Settings, client: WebhookClient) -> dict[str, Sender]:
    smtp = SmtpConfig(
        host=settings.carepath_smtp_host,
        port=settings.carepath_smtp_port,
        sender=settings.carepath_smtp_sender,
        timeout_s=settings.carepath_smtp_timeout_s,
        link_base=settings.carepath_link_base,
    )

    async def webhook(sub: Subscription, job: DeliveryJob) -> AttemptResult:
        assert sub.url is not None and sub.secret is not None  # the model guarantees both
        return await send_webhook(client, sub.url, sub.secret.get_secret_value(),
                                  job.message_id, job.body)

    async def email(sub: Subscription, job: DeliveryJob) -> AttemptResult:
        assert sub.email is not None
        return await send_email(smtp, sub.email, job.message_id, job.body)

    return {"webhook": webhook, "email": email}


def create_app(settings: Settings | None = None) -> FastAPI:
    rt = make_runtime(SERVICE, settings)
    s = rt.settings
    store = SubscriptionStore(rt.redis, s.namespace, file_subscriptions(s))
    queue = JobQueue(rt.redis, s.namespace, s.carepath_notify_endpoint_concurrency)
    client = make_webhook_client(s.carepath_notify_http_timeout_s,
                                 max_idle=s.carepath_notify_max_inflight)
    worker = DeliveryWorker(
        queue, store, make_senders(s, client), retry_policy(s), rt.topics, rt.broker,
        WorkerConfig(max_inflight=s.carepath_notify_max_inflight, lease_s=s.carepath_notify_lease_s,
                     poll_s=s.carepath_notify_poll_s),
    )
    rt.extras.update(http_client=client, worker=worker, queue=queue, store=store)
    handlers.register(rt, store, queue, worker.wake)

    watcher: list[asyncio.Task[None]] = []

    async def started(_: Runtime) -> None:
        watcher.append(asyncio.create_task(store.watch(), name="notify-subs-watch"))
        worker.start()

    async def stopping(_: Runtime) -> None:
        await worker.stop()
        for task in watcher:
            task.cancel()
        await asyncio.gather(*watcher, return_exceptions=True)

    async def stopped(_: Runtime) -> None:
        await client.aclose()

    app = make_app(rt, on_started=started, on_stopping=stopping, on_stopped=stopped)
    tokens = authenticator_from_settings(s)
    register_routes(app, store, tokens)
    register_stream(app, s, rt.topics, tokens)
    return app


def main() -> None:
    settings = get_settings()
    serve(create_app(settings), SERVICE, settings.notifications_port, settings)


if __name__ == "__main__":
    main()
