"""What one notice carries, which subscribers get it, and where it goes (pure).

The notice is the JSON body of a webhook (and the input of an email): the event's id, type,
source and time, and its data. The webhook body is built once per event and stored with each
delivery job, so every attempt signs exactly the same bytes.

Teams. A referral event concerns the team it is assigned to; an escalation also names the
teams to notify (``notify``). Pathway status and care-plan events have no team: they reach
coordinator and system subscriptions only (see :mod:`.subscriptions`).

Endpoints. Deliveries are grouped by endpoint (a webhook URL, a mailbox) for the
per-endpoint concurrency limit; the endpoint key is a digest, so no address sits in a
Redis key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import orjson

from carepath_notifications.domain.subscriptions import Subscription, select


def notice_body(
    event_id: str, event_type: str, source: str, time: datetime, data: Mapping[str, Any]
) -> bytes:
    return orjson.dumps(
        {"id": event_id, "type": event_type, "source": source, "time": time.isoformat(),
         "data": data}
    )


def event_teams(data: Mapping[str, Any]) -> list[str | None]:
    """The teams an event concerns: its ``team`` and any it asks to ``notify``; else [None]."""
    teams: list[str] = []
    for value in [data.get("team"), *(_as_list(data.get("notify")))]:
        if isinstance(value, str) and value and value not in teams:
            teams.append(value)
    return list(teams) if teams else [None]


def _as_list(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) else []


def targets(
    subscriptions: Iterable[Subscription], event_type: str, data: Mapping[str, Any]
) -> list[Subscription]:
    """Every subscription that should receive this event, once each, in a stable order."""
    subs = list(subscriptions)
    chosen: dict[str, Subscription] = {}
    for team in event_teams(data):
        for sub in select(subs, event_type, team):
            chosen.setdefault(sub.id, sub)
    return sorted(chosen.values(), key=lambda s: s.id)


def endpoint_key(subscription: Subscription) -> str:
    """``wh-<digest of the URL>`` or ``em-<digest of the address>``."""
    if subscription.channel == "webhook":
        prefix, target = "wh", subscription.url or ""
    else:
        prefix, target = "em", (subscription.email or "").lower()
    return f"{prefix}-{hashlib.sha256(target.encode()).hexdigest()[:20]}"
