"""Sends one signed webhook request (Standard Webhooks headers) and classifies the answer.

Before connecting, the destination is checked again (:class:`DestinationGuard`: the host is
resolved now and every address must be allowed), and the request goes to the address that was
checked, so a name that resolved to a public address when the subscription was made and to a
private one now (DNS rebinding) is never reached. A refused destination is a permanent failure
of the job (cause ``destination_refused``): no retry can make it allowed. A resolver failure is
transient and retried like a connection error.

Redirects are not followed (an endpoint that redirects needs reconfiguring); the response
body is read only up to a small bound (see :mod:`.webhook_client`).
"""

from __future__ import annotations

import time

from carepath_notifications.destination_resolver import DestinationGuard, ResolutionFailed
from carepath_notifications.domain.attempts import AttemptResult
from carepath_notifications.domain.destination_guard import CAUSE, DestinationRefused
from carepath_notifications.domain.retry_policy import classify
from carepath_notifications.domain.signing import build_headers
from carepath_notifications.webhook_client import WebhookClient, WebhookError, WebhookTimeout
from carepath_runtime.observability.metrics import WEBHOOK_DELIVERIES, status_class
from carepath_runtime.observability.tracing import inject_headers


async def send_webhook(
    client: WebhookClient, guard: DestinationGuard, url: str, secret: str, msg_id: str,
    body: bytes,
) -> AttemptResult:
    try:
        pinned = await guard.check(url)
    except DestinationRefused as exc:
        return AttemptResult("give_up", None, f"destination refused: {exc.reason}",
                             cause=CAUSE)
    except ResolutionFailed as exc:
        return AttemptResult(classify(None, "connection"), None, str(exc)[:200])
    headers = build_headers(secret, msg_id, int(time.time()), body)
    inject_headers(headers)  # traceparent of the delivery span, when tracing is on
    try:
        response = await client.post(url, body, headers, address=pinned.address)
    except WebhookTimeout as exc:
        WEBHOOK_DELIVERIES.labels("timeout").inc()
        return AttemptResult(classify(None, "timeout"), None, f"timeout: {exc}")
    except WebhookError as exc:
        WEBHOOK_DELIVERIES.labels("connect_error").inc()
        return AttemptResult(classify(None, "connection"), None, str(exc)[:200])
    WEBHOOK_DELIVERIES.labels(status_class(response.status_code)).inc()
    return AttemptResult(
        classify(response.status_code, None),
        response.status_code,
        None if response.is_success else f"HTTP {response.status_code}",
        response.retry_after,
    )
