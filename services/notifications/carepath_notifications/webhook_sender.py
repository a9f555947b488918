"""Sends one signed webhook request (Standard Webhooks headers) and classifies the answer.

Redirects are not followed (an endpoint that redirects needs reconfiguring); the response
body is not read beyond what httpx buffers.
"""

from __future__ import annotations

import time

import httpx

from carepath_notifications.domain.attempts import AttemptResult
from carepath_notifications.domain.retry_policy import classify
from carepath_notifications.domain.signing import build_headers


async def send_webhook(
    client: httpx.AsyncClient, url: str, secret: str, msg_id: str, body: bytes
) -> AttemptResult:
    headers = build_headers(secret, msg_id, int(time.time()), body)
    try:
        response = await client.post(url, content=body, headers=headers)
    except httpx.TimeoutException as exc:
        return AttemptResult(classify(None, "timeout"), None, f"timeout: {type(exc).__name__}")
    except httpx.HTTPError as exc:
        return AttemptResult(classify(None, "connection"), None,
                             f"{type(exc).__name__}: {str(exc)[:200]}")
    return AttemptResult(
        classify(response.status_code, None),
        response.status_code,
        None if response.is_success else f"HTTP {response.status_code}",
        response.headers.get("retry-after"),
    )
