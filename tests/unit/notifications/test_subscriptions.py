"""Subscription validation, loading, and the team-scoping/wildcard matching rule."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from carepath_notifications.domain import (
    Subscription,
    load_subscriptions,
    matches,
    parse_subscriptions,
    select,
)

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
CREATED = "carepath.referral.created.v1"
ESCALATED = "carepath.referral.escalated.v1"
STATUS = "carepath.pathway.status.v1"


def sub(**fields: Any) -> Subscription:
    base: dict[str, Any] = {
        "id": "s1",
        "subscriber": "Radiology desk",
        "kind": "team",
        "team": "radiology",
        "event_types": [CREATED],
        "channel": "email",
        "email": "radiology@hospital.example",
    }
    return Subscription.model_validate(base | fields)


def webhook(**fields: Any) -> Subscription:
    base = {
        "channel": "webhook",
        "email": None,
        "url": "https://ehr.example/hooks",
        "secret": SECRET,
    }
    return sub(**(base | fields))


# --- matching -------------------------------------------------------------------------------


def test_team_subscription_gets_only_its_teams_events() -> None:
    s = sub()
    assert matches(s, CREATED, "radiology")
    assert not matches(s, CREATED, "surgery")


def test_team_subscription_does_not_get_team_less_events() -> None:
    assert not matches(sub(event_types=["*"]), STATUS, None)


@pytest.mark.parametrize("kind", ["coordinator", "system"])
def test_unscoped_coordinator_and_system_get_everything_they_subscribe_to(kind: str) -> None:
    s = sub(kind=kind, team=None, event_types=["carepath.*"])
    assert matches(s, STATUS, None)
    assert matches(s, CREATED, "radiology") and matches(s, CREATED, "surgery")


def test_team_scoped_coordinator_gets_its_team_and_team_less_events() -> None:
    s = sub(kind="coordinator", team="surgery", event_types=["*"])
    assert matches(s, CREATED, "surgery")
    assert matches(s, STATUS, None)
    assert not matches(s, CREATED, "radiology")


def test_inactive_subscription_gets_nothing() -> None:
    assert not matches(sub(active=False), CREATED, "radiology")


@pytest.mark.parametrize(
    ("pattern", "event_type", "expected"),
    [
        (CREATED, CREATED, True),
        (CREATED, ESCALATED, False),
        ("carepath.referral.*", CREATED, True),
        ("carepath.referral.*", ESCALATED, True),
        ("carepath.referral.*", STATUS, False),
        ("carepath.referral.*", "carepath.referral", False),
        ("carepath.*", CREATED, True),
        ("*", CREATED, True),
        ("carepath.*.created.v1", CREATED, True),
        ("carepath.*.created.v1", ESCALATED, False),
        ("carepath.referral.created.*", CREATED, True),
        ("carepath.referral.created.*", "carepath.referral.created_x.v1", False),
        ("carepath.referral.created.v1", "carepath.referral.created.v1.extra", False),
        ("carepath.referral", CREATED, False),
    ],
)
def test_event_type_patterns(pattern: str, event_type: str, expected: bool) -> None:
    s = sub(kind="system", team=None, event_types=[pattern])
    assert matches(s, event_type, "radiology") is expected


def test_any_pattern_in_the_list_matches() -> None:
    s = sub(event_types=[STATUS, "carepath.referral.escalated.*"])
    assert matches(s, ESCALATED, "radiology")
    assert not matches(s, CREATED, "radiology")


def test_select_routes_one_event_to_the_right_subscribers() -> None:
    subs = [
        sub(id="rad", team="radiology"),
        sub(id="surg", team="surgery"),
        sub(id="coord", kind="coordinator", team=None, event_types=["carepath.*"]),
        webhook(id="ehr", kind="system", team=None, event_types=["carepath.referral.*"]),
    ]
    assert [s.id for s in select(subs, CREATED, "radiology")] == ["rad", "coord", "ehr"]
    assert [s.id for s in select(subs, STATUS, None)] == ["coord"]


# --- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"team": None},  # a team subscription must name its team
        {"event_types": []},
        {"event_types": ["carepath.referral*"]},
        {"event_types": ["carepath..created"]},
        {"event_types": ["Carepath.Referral"]},
        {"id": "has:colon"},
        {"id": ""},
        {"kind": "patient"},
        {"channel": "sms"},
        {"email": "not-an-email"},
        {"email": "a@b.example\r\nBcc: x@y.example"},
        {"email": None},
        {"url": "https://x.example"},  # email channel takes no url
        {"secret": SECRET},  # ... nor a secret
        {"unknown_field": 1},
    ],
)
def test_invalid_email_subscriptions_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        sub(**fields)


@pytest.mark.parametrize(
    "fields",
    [
        {"url": None},
        {"secret": None},
        {"secret": "whsec_dG9vLXNob3J0"},  # decodes to 9 bytes
        {"secret": "whsec_!!!"},
        {"url": "https://user:pw@ehr.example/hooks"},
        {"url": "http://good@127.0.0.1/hooks"},
        {"url": "https://2130706433/hooks"},  # an ambiguous IPv4 spelling
        {"url": "ftp://ehr.example/hooks"},
        {"url": "https:///no-host"},
        {"email": "ops@ehr.example"},
    ],
)
def test_invalid_webhook_subscriptions_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        webhook(**fields)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8081/h", "http://ehr.example/h", "http://[::1]:9/h"]
)
def test_the_model_checks_the_url_shape_only(url: str) -> None:
    # http and loopback are the destination guard's to refuse (it knows the allowlist and
    # resolves the host): tests/unit/notifications/test_destination_guard.py
    assert webhook(url=url).url == url


def test_secret_is_not_shown_in_repr_or_errors() -> None:
    s = webhook()
    assert SECRET not in repr(s) and SECRET not in str(s.model_dump())
    bad = "whsec_c2hvcnQtc2VjcmV0LXZhbHVl"  # 'short-secret-value', 18 bytes
    with pytest.raises(ValidationError) as exc:
        webhook(secret=bad)
    assert bad not in str(exc.value)


# --- loading --------------------------------------------------------------------------------


def _entries() -> list[dict[str, Any]]:
    return [
        {
            "id": "radiology-email",
            "subscriber": "Radiology desk",
            "kind": "team",
            "team": "radiology",
            "event_types": ["carepath.referral.*"],
            "channel": "email",
            "email": "radiology@hospital.example",
        },
        {
            "id": "ehr",
            "subscriber": "Hospital EHR",
            "kind": "system",
            "event_types": ["*"],
            "channel": "webhook",
            "url": "https://ehr.example/carepath",
            "secret": SECRET,
        },
    ]


@pytest.mark.parametrize("wrap", [False, True])
def test_load_from_json_file(tmp_path: Path, wrap: bool) -> None:
    path = tmp_path / "subscriptions.json"
    path.write_text(json.dumps({"subscriptions": _entries()} if wrap else _entries()))
    subs = load_subscriptions(path)
    assert [s.id for s in subs] == ["radiology-email", "ehr"]
    assert subs[1].secret is not None and subs[1].secret.get_secret_value() == SECRET
    assert subs[0].active and subs[1].team is None


def test_duplicate_ids_refused() -> None:
    entries = _entries()
    entries[1]["id"] = entries[0]["id"]
    with pytest.raises(ValueError, match="duplicate"):
        parse_subscriptions(entries)


@pytest.mark.parametrize("data", [{"subs": []}, "x", 3, {"subscriptions": {}}])
def test_wrong_shape_refused(data: object) -> None:
    with pytest.raises(ValueError):
        parse_subscriptions(data)
