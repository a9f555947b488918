"""Entry point of the notifications service: the composition root.

Kafka handlers enqueue delivery jobs; the delivery worker sends them (webhooks, email); the
HTTP app serves the subscriptions API and the live stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import sys
from typing import NoReturn

from fastapi import FastAPI

from carepath_notifications import handlers
from carepath_notifications.api import register_routes
from carepath_notifications.destination_resolver import DestinationGuard
from carepath_notifications.domain.attempts import AttemptResult
from carepath_notifications.domain.destination_guard import Allowlist
from carepath_notifications.domain.jobs import DeliveryJob
from carepath_notifications.domain.retry_policy import RetryPolicy
from carepath_notifications.domain.subscriptions import Subscription
from carepath_notifications.email_sender import SmtpConfig, send_email
from carepath_notifications.job_queue import JobQueue
from carepath_notifications.stream import register_stream
from carepath_notifications.subscription_store import (
    SubscriptionStore,
    file_subscriptions,
    refused_file_destinations,
)
from carepath_notifications.webhook_client import WebhookClient, make_webhook_client
from carepath_notifications.webhook_sender import send_webhook
from carepath_notifications.worker import DeliveryWorker, Sender, WorkerConfig
from carepath_runtime.auth import authenticator_from_settings
from carepath_runtime.log import configure_logging, get_logger
from carepath_runtime.observability.metrics import NOTIFICATION_DEAD_JOBS
from carepath_runtime.service import Runtime, make_app, make_runtime, serve
from carepath_runtime.settings import Settings, get_settings

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


def make_guard(settings: Settings) -> DestinationGuard:
    """The webhook destination guard: ``CAREPATH_WEBHOOK_ALLOWLIST`` and ``getaddrinfo``."""
    return DestinationGuard(Allowlist.parse(settings.carepath_webhook_allowlist))


def _refuse_to_start(setting: str, reason: str, settings: Settings) -> NoReturn:
    configure_logging(SERVICE, settings.carepath_log_level)
    get_logger(SERVICE).error("configuration_refused", setting=setting, reason=reason)
    raise SystemExit(78)


def checked_file_subscriptions(settings: Settings, guard: DestinationGuard
                               ) -> list[Subscription]:
    """The file subscriptions (and the default webhook), each destination checked; the
    service does not start with a refused one (one log line per refusal, exit 78)."""
    try:
        subs = file_subscriptions(settings)
    except ValueError as exc:
        _refuse_to_start("CAREPATH_SUBSCRIPTIONS_FILE", str(exc)[:300], settings)
    refused = refused_file_destinations(subs, guard)
    for sub_id, reason in refused:
        configure_logging(SERVICE, settings.carepath_log_level)
        get_logger(SERVICE).error("webhook_destination_refused", subscription=sub_id,
                                  reason=reason, setting="CAREPATH_WEBHOOK_ALLOWLIST")
    if refused:
        raise SystemExit(78)
    return subs


def make_senders(settings: Settings, client: WebhookClient,
                 guard: DestinationGuard) -> dict[str, Sender]:
    smtp = SmtpConfig(
        host=settings.carepath_smtp_host,
        port=settings.carepath_smtp_port,
        sender=settings.carepath_smtp_sender,
        timeout_s=settings.carepath_smtp_timeout_s,
        link_base=settings.carepath_link_base,
    )

    async def webhook(sub: Subscription, job: DeliveryJob) -> AttemptResult:
        assert sub.url is not None and sub.secret is not None  # the model guarantees both
        return await send_webhook(client, guard, sub.url, sub.secret.get_secret_value(),
                                  job.message_id, job.body)

    async def email(sub: Subscription, job: DeliveryJob) -> AttemptResult:
        assert sub.email is not None
        return await send_email(smtp, sub.email, job.message_id, job.body)

    return {"webhook": webhook, "email": email}


def create_app(settings: Settings | None = None) -> FastAPI:
    runtime = make_runtime(SERVICE, settings)
    s = runtime.settings
    try:
        guard = make_guard(s)
    except ValueError as exc:
        _refuse_to_start("CAREPATH_WEBHOOK_ALLOWLIST", str(exc), s)
    store = SubscriptionStore(runtime.redis, s.namespace, checked_file_subscriptions(s, guard),
                              guard=guard)
    queue = JobQueue(runtime.redis, s.namespace, s.carepath_notify_endpoint_concurrency)
    client = make_webhook_client(s.carepath_notify_http_timeout_s,
                                 max_idle=s.carepath_notify_max_inflight)
    worker = DeliveryWorker(
        queue, store, make_senders(s, client, guard), retry_policy(s), runtime.topics,
        runtime.broker,
        WorkerConfig(max_inflight=s.carepath_notify_max_inflight, lease_s=s.carepath_notify_lease_s,
                     poll_s=s.carepath_notify_poll_s),
        health=runtime.health,
    )
    runtime.resources.append(client)  # closed when the service stops (or by whoever built it)
    handlers.register(runtime, store, queue, worker.wake)

    watcher: list[asyncio.Task[None]] = []

    async def sample_dead_jobs() -> None:
        while True:
            with contextlib.suppress(Exception):  # Redis away: keep the last value
                NOTIFICATION_DEAD_JOBS.set((await queue.counts())["dead"])
            await asyncio.sleep(s.carepath_lag_sample_seconds)

    async def started(_: Runtime) -> None:
        watcher.append(asyncio.create_task(store.watch(), name="notify-subs-watch"))
        watcher.append(asyncio.create_task(sample_dead_jobs(), name="notify-dead-jobs"))
        worker.start()

    async def stopping(_: Runtime) -> None:
        await worker.stop()
        for task in watcher:
            task.cancel()
        await asyncio.gather(*watcher, return_exceptions=True)

    app = make_app(runtime, on_started=started, on_stopping=stopping)
    tokens = authenticator_from_settings(s)
    register_routes(app, store, tokens)
    register_stream(app, s, runtime.topics, tokens)
    return app


def main() -> None:
    settings = get_settings()
    serve(create_app(settings), SERVICE, settings.notifications_port, settings)


if __name__ == "__main__":
    main()
