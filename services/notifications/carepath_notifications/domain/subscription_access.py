"""Who may create, see and remove which subscriptions through the API (pure rules).

* ``team_member``: subscriptions of kind ``team`` for their own team only (the team is taken
  from the token; naming another team is refused). Sees and removes those of their team.
* ``coordinator``: ``coordinator`` subscriptions (optionally narrowed to a team) and ``team``
  subscriptions for any team; not ``system``. Sees every subscription; removes any but
  ``system`` ones.
* ``admin``: everything.
* any other role (e.g. ``dashboard``): nothing.

Scoping then holds at delivery: a team subscription receives only its team's events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class Principal(Protocol):
    """The caller (``carepath_runtime.auth.Principal`` fits)."""

    @property
    def subject(self) -> str: ...
    @property
    def team(self) -> str: ...
    @property
    def role(self) -> str: ...


class Refused(Exception):
    """The caller may not do this (HTTP 403); ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


MANAGING_ROLES = frozenset({"team_member", "coordinator", "admin"})


@dataclass(frozen=True)
class Scope:
    """The kind and team a request's subscription ends up with."""

    kind: str
    team: str | None


def scope_for_create(principal: Principal, kind: str | None, team: str | None) -> Scope:
    role = principal.role
    if role == "team_member":
        if kind not in (None, "team"):
            raise Refused("a team member may only create team subscriptions")
        if team not in (None, principal.team):
            raise Refused("a team member may only subscribe for their own team")
        return Scope("team", principal.team)
    if role == "coordinator":
        chosen = kind or "coordinator"
        if chosen == "system":
            raise Refused("only an admin may create system subscriptions")
        return Scope(chosen, team)
    if role == "admin":
        return Scope(kind or "system", team)
    raise Refused(f"role {role!r} may not manage subscriptions")


def may_see(principal: Principal, subscription: Any) -> bool:
    if principal.role in ("coordinator", "admin"):
        return True
    if principal.role == "team_member":
        return bool(subscription.kind == "team" and subscription.team == principal.team)
    return False


def may_remove(principal: Principal, subscription: Any) -> bool:
    if principal.role == "admin":
        return True
    if principal.role == "coordinator":
        return bool(subscription.kind != "system")
    return may_see(principal, subscription)
