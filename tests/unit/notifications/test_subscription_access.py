"""Who may create, see and remove which subscriptions through the API."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from carepath_notifications.domain.subscription_access import (
    Refused,
    Scope,
    may_remove,
    may_see,
    scope_for_create,
)
from carepath_runtime.auth import Principal

RADIOLOGY = Principal(subject="r@x", team="radiology", role="team_member")
COORD = Principal(subject="c@x", team="care_coordinator", role="coordinator")
ADMIN = Principal(subject="a@x", team="care_coordinator", role="admin")
DASH = Principal(subject="d@x", team="care_coordinator", role="dashboard")


def test_team_member_gets_a_team_subscription_for_their_own_team() -> None:
    assert scope_for_create(RADIOLOGY, None, None) == Scope("team", "radiology")
    assert scope_for_create(RADIOLOGY, "team", "radiology") == Scope("team", "radiology")


@pytest.mark.parametrize(("kind", "team"), [
    ("team", "surgery"), ("coordinator", None), ("system", None), (None, "surgery"),
])
def test_team_member_cannot_widen_their_scope(kind: str | None, team: str | None) -> None:
    with pytest.raises(Refused):
        scope_for_create(RADIOLOGY, kind, team)


def test_coordinator_scopes() -> None:
    assert scope_for_create(COORD, None, None) == Scope("coordinator", None)
    assert scope_for_create(COORD, "team", "surgery") == Scope("team", "surgery")
    with pytest.raises(Refused):
        scope_for_create(COORD, "system", None)


def test_admin_may_create_system_subscriptions_and_dashboard_nothing() -> None:
    assert scope_for_create(ADMIN, None, None) == Scope("system", None)
    with pytest.raises(Refused):
        scope_for_create(DASH, None, None)


def test_visibility_and_removal() -> None:
    radiology = SimpleNamespace(kind="team", team="radiology")
    surgery = SimpleNamespace(kind="team", team="surgery")
    system = SimpleNamespace(kind="system", team=None)
    assert may_see(RADIOLOGY, radiology) and not may_see(RADIOLOGY, surgery)
    assert not may_see(RADIOLOGY, system) and not may_see(DASH, radiology)
    assert may_see(COORD, system) and may_see(COORD, surgery)
    assert may_remove(RADIOLOGY, radiology) and not may_remove(RADIOLOGY, surgery)
    assert may_remove(COORD, surgery) and not may_remove(COORD, system)
    assert may_remove(ADMIN, system)
