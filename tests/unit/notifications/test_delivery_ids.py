"""Deterministic per-subscriber delivery keys and webhook message ids."""

from __future__ import annotations

import pytest

from carepath_notifications.domain import delivery_key, sign, webhook_message_id

SECRET = "a-raw-secret-that-is-long-enough-0123"


def test_delivery_key_is_stable_and_per_subscription() -> None:
    assert delivery_key("ev-1", "s1") == delivery_key("ev-1", "s1") == "s1:ev-1"
    assert delivery_key("ev-1", "s2") != delivery_key("ev-1", "s1")


def test_webhook_message_id_is_stable_distinct_and_signable() -> None:
    first = webhook_message_id("ev-1", "s1")
    assert first == webhook_message_id("ev-1", "s1")
    assert len({first, webhook_message_id("ev-2", "s1"), webhook_message_id("ev-1", "s2")}) == 3
    assert first.startswith("msg_") and "." not in first and "ev-1" not in first
    sign(SECRET, first, 0, b"{}")  # accepted as a msg_id


@pytest.mark.parametrize(("event_id", "subscription_id"), [("", "s1"), ("ev", ""), ("ev", "a:b")])
def test_ambiguous_inputs_refused(event_id: str, subscription_id: str) -> None:
    with pytest.raises(ValueError):
        delivery_key(event_id, subscription_id)
