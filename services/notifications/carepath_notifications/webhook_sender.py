"""Sends one signed webhook request (Standard Webhooks headers) and classifies the answer.

Redirects are not followed (an endpoint that redirects needs reconfiguring); the response
body is read only up to a small bound (see :mod:`.webhook_client`).
"""

from __future__ import annotations

import time

from carepath_notifications.domain.attempts import AttemptResult
from carepath_notifications.domain.retry_policy import classify
from carepath_notifications.domain.signing import build_headers
from carepath_notifications.webhook_client import WebhookClient, WebhookError, WebhookTimeout


async def send_webhook(
    client: WebhookClient, url: str, secret: str, msg_id: str, body: bytes
) -> AttemptResult:
    headers = build_headers(secret, msg_id, int(time.time()), body)
    try:
        response = await client.post(url, body, headers)
    except WebhookTimeout as exc:
        return AttemptResult(classify(None, "timeout"), None, f"timeout: {exc}")
    except WebhookError as exc:
        return AttemptResult(classify(None, "connection"), None, str(exc)[:200])
    return AttemptResult(
        classify(response.status_code, None),
        response.status_code,
        None if response.is_success else f"HTTP {response.status_code}",
        response.retry_after,
    )
