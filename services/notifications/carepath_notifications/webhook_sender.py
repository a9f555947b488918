"""Sends one signed webhook request (Standard Webhooks headers) and classifies the answer."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from carepath_notifications.domain.retry_policy import classify
from carepath_notifications.domain.signing import build_headers


@dataclass(frozen=True)
class SendResult:
    outcome: str  # "success" | "retry" | "give_up"
    status_code: int | None
    error: str | None
    retry_after: str | None


async def send_webhook(
    client: httpx.AsyncClient, url: str, secret: str, msg_id: str, body: bytes
) -> SendResult:
    headers = build_headers(secret, msg_id, int(time.time()), body)
    try:
        response = await client.post(url, content=body, headers=headers)
    except httpx.TimeoutException as exc:
        return SendResult(classify(None, "timeout"), None, f"timeout: {exc}", None)
    except httpx.HTTPError as exc:
        return SendResult(classify(None, "connection"), None, f"{type(exc).__name__}: {exc}", None)
    return SendResult(
        classify(response.status_code, None),
        response.status_code,
        None if response.is_success else f"HTTP {response.status_code}",
        response.headers.get("retry-after"),
    )
