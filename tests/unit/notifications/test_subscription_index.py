"""The delivery path's view of the subscriptions: active ones only, matched per event type."""

from __future__ import annotations

from typing import Any

from carepath_notifications.domain.notice import targets
from carepath_notifications.domain.subscription_index import SubscriptionIndex
from carepath_notifications.domain.subscriptions import Subscription

CREATED = "carepath.referral.created.v1"
ESCALATED = "carepath.referral.escalated.v1"
CARE_PLAN = "carepath.careplan.updated.v1"
STATUS = "carepath.pathway.status.v1"


def sub(sid: str, types: list[str], kind: str = "system", team: str | None = None,
        **extra: Any) -> Subscription:
    return Subscription.model_validate({
        "id": sid, "subscriber": sid, "kind": kind, "team": team, "event_types": types,
        "channel": "email", "email": f"{sid}@hospital.example", **extra,
    })


SUBS = [
    sub("referrals", ["carepath.referral.*"]),
    sub("created-only", [CREATED]),
    sub("everything", ["*"], kind="coordinator"),
    sub("radiology", ["carepath.referral.*"], kind="team", team="radiology"),
    sub("paused", ["*"], active=False),
]


def ids(subs: tuple[Subscription, ...] | list[Subscription]) -> list[str]:
    return sorted(s.id for s in subs)


def test_only_subscriptions_whose_patterns_match_the_type_are_candidates() -> None:
    index = SubscriptionIndex(SUBS)
    assert ids(index.for_type(CREATED)) == ["created-only", "everything", "radiology",
                                            "referrals"]
    assert ids(index.for_type(ESCALATED)) == ["everything", "radiology", "referrals"]
    assert ids(index.for_type(CARE_PLAN)) == ["everything"]


def test_a_type_nobody_wants_has_no_candidates() -> None:
    index = SubscriptionIndex([s for s in SUBS if s.id != "everything"])
    assert index.for_type(CARE_PLAN) == ()
    assert index.for_type(STATUS) == ()
    assert index.for_type(CARE_PLAN) == ()  # asked again: the kept answer


def test_inactive_subscriptions_are_left_out_entirely() -> None:
    index = SubscriptionIndex(SUBS)
    assert index.get("paused") is None
    assert "paused" not in ids(index.for_type(STATUS))
    assert len(index) == 4
    assert index.get("referrals") is SUBS[0]


def test_candidates_then_team_scoping_give_the_same_targets_as_the_full_list() -> None:
    index = SubscriptionIndex(SUBS)
    for event_type in (CREATED, ESCALATED, CARE_PLAN, STATUS):
        for data in ({"team": "radiology"}, {"team": "surgery"}, {},
                     {"team": "surgery", "notify": ["radiology"]}):
            assert targets(index.for_type(event_type), event_type, data) == \
                targets(SUBS, event_type, data)
