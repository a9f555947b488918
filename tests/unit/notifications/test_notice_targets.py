"""Which subscriptions an event reaches (team scoping, escalations), and its notice body."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import orjson

from carepath_notifications.domain.notice import endpoint_key, event_teams, notice_body, targets
from carepath_notifications.domain.subscriptions import Subscription

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
CREATED = "carepath.referral.created.v1"
ESCALATED = "carepath.referral.escalated.v1"
STATUS = "carepath.pathway.status.v1"


def sub(sid: str, kind: str, team: str | None, types: list[str] | None = None,
        **extra: Any) -> Subscription:
    fields: dict[str, Any] = {
        "id": sid, "subscriber": sid, "kind": kind, "team": team,
        "event_types": types or ["carepath.referral.*"], "channel": "email",
        "email": f"{sid}@hospital.example",
    }
    return Subscription.model_validate(fields | extra)


SUBS = [
    sub("radiology", "team", "radiology"),
    sub("surgery", "team", "surgery"),
    sub("coord", "coordinator", None, ["*"]),
    sub("coord-team", "team", "care_coordinator"),
    sub("ehr", "system", None, ["carepath.referral.created.v1"]),
    sub("off", "team", "radiology", active=False),
]


def ids(subs: list[Subscription]) -> list[str]:
    return [s.id for s in subs]


def test_a_teams_event_reaches_that_team_coordinators_and_systems() -> None:
    got = targets(SUBS, CREATED, {"team": "radiology", "episode_id": "e"})
    assert ids(got) == ["coord", "ehr", "radiology"]


def test_other_teams_do_not_hear_of_it() -> None:
    got = ids(targets(SUBS, CREATED, {"team": "surgery"}))
    assert "radiology" not in got and "surgery" in got


def test_an_escalation_reaches_the_teams_it_names_once_each() -> None:
    data = {"team": "radiology", "notify": ["radiology", "care_coordinator"]}
    assert event_teams(data) == ["radiology", "care_coordinator"]
    got = ids(targets(SUBS, ESCALATED, data))
    assert got == ["coord", "coord-team", "radiology"]  # ehr wants created only


def test_a_team_less_event_reaches_coordinators_and_systems_only() -> None:
    assert event_teams({"episode_id": "e"}) == [None]
    assert ids(targets(SUBS, STATUS, {"episode_id": "e"})) == ["coord"]


def test_notice_body_carries_the_event() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    body = orjson.loads(notice_body("ev-1", CREATED, "/src", when, {"a": 1}))
    assert body == {"id": "ev-1", "type": CREATED, "source": "/src",
                    "time": when.isoformat(), "data": {"a": 1}}


def test_endpoint_key_groups_by_target_and_hides_it() -> None:
    a = sub("a", "team", "radiology", channel="webhook", email=None,
            url="https://ehr.example/hook", secret=SECRET)
    b = sub("b", "team", "surgery", channel="webhook", email=None,
            url="https://ehr.example/hook", secret=SECRET)
    c = sub("c", "team", "surgery", email="Desk@Hospital.example")
    d = sub("d", "team", "surgery", email="desk@hospital.example")
    assert endpoint_key(a) == endpoint_key(b)
    assert endpoint_key(c) == endpoint_key(d)
    assert endpoint_key(a).startswith("wh-") and endpoint_key(c).startswith("em-")
    assert "ehr" not in endpoint_key(a) and "hospital" not in endpoint_key(c)
