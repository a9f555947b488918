"""Who wants which events, over which channel, and the scoping rule that decides delivery.

Scoping: a subscription with a ``team`` receives only events of that team. Events without a
team (pathway status, care-plan changes) concern the whole episode and go only to
``coordinator`` and ``system`` subscriptions. ``team`` subscriptions must name their team;
a coordinator or system subscription may, to narrow itself to one team (it still receives
team-less events).

Event-type patterns are dot-separated; a ``*`` segment matches exactly one segment, or, as the
last segment, one or more (``carepath.referral.*`` matches ``carepath.referral.created.v1``);
``*`` alone matches every type.

The file format is JSON: a list of subscriptions, or ``{"subscriptions": [...]}``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from carepath_notifications.domain.destination_guard import parse_destination
from carepath_runtime.webhook_verify import decode_secret

Kind = Literal["team", "coordinator", "system"]
Channel = Literal["webhook", "email"]

_SEGMENT = re.compile(r"^(\*|[a-z0-9_]+)$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def validate_pattern(pattern: str) -> str:
    if pattern != "*" and not all(_SEGMENT.match(seg) for seg in pattern.split(".")):
        raise ValueError(
            f"bad event type pattern {pattern!r}: dot-separated [a-z0-9_] segments or '*'"
        )
    return pattern


def pattern_matches(pattern: str, event_type: str) -> bool:
    pat = pattern.split(".")
    typ = event_type.split(".")
    if pat[-1] == "*":  # trailing wildcard: one or more remaining segments
        if len(typ) < len(pat):
            return False
        typ = [*typ[: len(pat) - 1], "*"]
    elif len(pat) != len(typ):
        return False
    return all(p in ("*", t) for p, t in zip(pat, typ, strict=True))


class Subscription(BaseModel):
    # errors name the field and the reason but never echo the input (secrets, addresses)
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    # no ':' so that dedup keys built from it are unambiguous
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
    subscriber: str = Field(min_length=1, max_length=200)
    kind: Kind
    team: str | None = Field(default=None, min_length=1)
    event_types: list[str] = Field(min_length=1)
    channel: Channel
    url: str | None = None
    email: str | None = None
    secret: SecretStr | None = None
    active: bool = True

    @field_validator("event_types")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        return [validate_pattern(p) for p in value]

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        # The shape only (scheme, no userinfo, host spelling, port): whether the destination
        # is allowed needs the allowlist and a resolution, the guard's job
        # (carepath_notifications.destination_resolver) when the subscription is made and
        # before every connection.
        if value is None:
            return None
        if len(value) > 2048:
            raise ValueError("webhook url is longer than 2048 characters")
        parse_destination(value)  # DestinationRefused is a ValueError naming the reason
        return value

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not _EMAIL.match(value):
            raise ValueError("not an email address")
        return value

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            decode_secret(value.get_secret_value())  # raises ValueError, without the secret
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Subscription:
        if self.kind == "team" and self.team is None:
            raise ValueError("a team subscription must name its team")
        if self.channel == "webhook":
            if self.url is None or self.secret is None:
                raise ValueError("a webhook subscription needs url and secret")
            if self.email is not None:
                raise ValueError("a webhook subscription takes no email")
        elif self.email is None or self.url is not None or self.secret is not None:
            raise ValueError("an email subscription needs email, and takes no url or secret")
        return self


def matches(subscription: Subscription, event_type: str, event_team: str | None) -> bool:
    """Whether ``subscription`` should receive an event of this type and team."""
    if not subscription.active:
        return False
    if not any(pattern_matches(p, event_type) for p in subscription.event_types):
        return False
    if event_team is None:  # episode-wide events: coordinators and systems only
        return subscription.kind != "team"
    return subscription.team is None or subscription.team == event_team


def select(
    subscriptions: Iterable[Subscription], event_type: str, event_team: str | None
) -> list[Subscription]:
    return [s for s in subscriptions if matches(s, event_type, event_team)]


def parse_subscriptions(data: Any) -> list[Subscription]:
    """Subscriptions from decoded JSON; ids must be unique."""
    items = data.get("subscriptions") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ValueError("expected a list of subscriptions or {'subscriptions': [...]}")
    subs = [Subscription.model_validate(item) for item in items]
    seen: set[str] = set()
    for sub in subs:
        if sub.id in seen:
            raise ValueError(f"duplicate subscription id {sub.id!r}")
        seen.add(sub.id)
    return subs


def load_subscriptions(path: str | Path) -> list[Subscription]:
    return parse_subscriptions(json.loads(Path(path).read_text(encoding="utf-8")))
