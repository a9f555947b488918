"""A delivery job's Redis record round-trips; its id and webhook-id are per (event, sub)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from carepath_notifications.domain.dedup import webhook_message_id
from carepath_notifications.domain.jobs import DeliveryJob


def job(**changes: object) -> DeliveryJob:
    base = DeliveryJob.new(event_id="ev-1", event_type="carepath.referral.created.v1",
                           subscription_id="s1", channel="webhook", endpoint="wh-abc",
                           body=b'{"id":"ev-1"}', now_ms=1000)
    return replace(base, **changes)  # type: ignore[arg-type]


def test_round_trip_through_redis_fields() -> None:
    j = job(status="dead", attempts=3, last_status=503, last_error="HTTP 503",
            dead_reason="spent", dead_ms=5000, redriven=1)
    raw = {k.encode(): (v if isinstance(v, bytes) else v.encode())
           for k, v in j.to_fields().items()}
    assert DeliveryJob.from_fields(raw) == j


def test_ids() -> None:
    j = job()
    assert j.id == "s1:ev-1"
    assert j.message_id == webhook_message_id("ev-1", "s1")
    assert j.next_ms == j.created_ms == 1000


def test_unknown_status_or_channel_is_refused() -> None:
    fields = job().to_fields()
    with pytest.raises(ValueError):
        DeliveryJob.from_fields({**fields, "status": "lost"})
    with pytest.raises(ValueError):
        DeliveryJob.from_fields({**fields, "channel": "sms"})
