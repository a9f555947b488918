"""Deterministic ids for per-subscriber delivery, so redeliveries can be recognised.

Events arrive at least once; the same event reaching the same subscription must be one
notification. ``delivery_key`` is our own dedup/ledger key; ``webhook_message_id`` is the
``webhook-id`` header, identical on every redelivery of that pair so receivers can de-duplicate
too (Standard Webhooks: "use the webhook-id header as an idempotency key").
"""

from __future__ import annotations

from carepath_contracts.envelope import derive_id


def delivery_key(event_id: str, subscription_id: str) -> str:
    """``{subscription_id}:{event_id}``; subscription ids cannot contain ``:``."""
    if not event_id or not subscription_id or ":" in subscription_id:
        raise ValueError("event_id and subscription_id must be non-empty; no ':' in the latter")
    return f"{subscription_id}:{event_id}"


def webhook_message_id(event_id: str, subscription_id: str) -> str:
    """``msg_<uuid5>`` of the pair: stable, opaque, and free of ``.`` as the signature needs."""
    return "msg_" + derive_id("webhook", delivery_key(event_id, subscription_id)).replace("-", "")
