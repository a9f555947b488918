"""Who is acting, and what they may see and do: pure authorization rules.

A caller's token is mapped (outside the domain) to an :class:`Actor`: a subject, a team and a
role. The rules:

* ``team_member``: sees, and acts on, the referrals currently assigned to their own team, with
  the team actions (claim, accept, decline, schedule, start, complete). Nothing else.
* ``coordinator``: sees every referral; reroutes and cancels any open one; on referrals assigned
  to their own team (coordination steps, ``care_coordinator``) also takes the team actions.
* ``admin``: sees every referral; reroutes, cancels and escalates. Admins take no clinical team
  action. :data:`SYSTEM_ACTOR` (the service itself: withdrawals, deadlines) is an admin.

A refusal carries its reason; the HTTP layer maps :class:`AccessDenied` to 403 (401, no or bad
token, is decided before an Actor exists).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints

from carepath_referrals.domain.codes import ActionKind, Team

if TYPE_CHECKING:
    from carepath_referrals.domain.referral import Referral

Role = Literal["team_member", "coordinator", "admin"]

TEAM_ACTIONS = frozenset(
    {
        ActionKind.CLAIM,
        ActionKind.ACCEPT,
        ActionKind.DECLINE,
        ActionKind.SCHEDULE,
        ActionKind.START,
        ActionKind.COMPLETE,
    }
)
COORDINATOR_ACTIONS = frozenset({ActionKind.REROUTE, ActionKind.CANCEL})
ADMIN_ACTIONS = frozenset({ActionKind.REROUTE, ActionKind.CANCEL, ActionKind.ESCALATE})
_ROLE_ACTIONS: dict[str, frozenset[ActionKind]] = {
    "team_member": frozenset(),
    "coordinator": COORDINATOR_ACTIONS,
    "admin": ADMIN_ACTIONS,
}


class DomainError(Exception):
    """Base of the referral domain's refusals; ``reason`` is human-readable."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AccessDenied(DomainError):
    """The actor may not see or do this (HTTP 403)."""


class Actor(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    subject: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
    team: Team
    role: Role


SYSTEM_ACTOR = Actor(subject="system:carepath-referrals", team=Team.CARE_COORDINATOR, role="admin")


@dataclass(frozen=True)
class AccessDecision:
    """A yes or no with its reason; truthy when allowed."""

    allowed: bool
    reason: str

    def __bool__(self) -> bool:
        return self.allowed


def can_view(actor: Actor, referral: Referral) -> AccessDecision:
    if actor.role in ("coordinator", "admin"):
        return AccessDecision(True, f"a {actor.role} sees every referral")
    if referral.team == actor.team:
        return AccessDecision(True, f"the referral is assigned to {actor.team.value}")
    return AccessDecision(
        False,
        f"{actor.subject} ({actor.team.value}) may only see referrals of team "
        f"{actor.team.value}; this one is assigned to {referral.team.value}",
    )


def can_act(actor: Actor, referral: Referral, action: ActionKind) -> AccessDecision:
    """May ``actor`` take ``action`` on ``referral``? (Not whether the status allows it.)"""
    seen = can_view(actor, referral)
    if not seen:
        return seen
    if action in TEAM_ACTIONS:
        if actor.role == "admin":
            return AccessDecision(False, f"an admin does not {action.value} referrals")
        if referral.team != actor.team:
            return AccessDecision(
                False,
                f"only team {referral.team.value} may {action.value} this referral; "
                f"{actor.subject} is in {actor.team.value}",
            )
        return AccessDecision(True, f"{actor.team.value} owns the referral")
    if action in _ROLE_ACTIONS[actor.role]:
        return AccessDecision(True, f"a {actor.role} may {action.value}")
    holders = " or ".join(role for role, acts in _ROLE_ACTIONS.items() if action in acts)
    return AccessDecision(
        False, f"only a {holders} may {action.value} a referral; {actor.subject} is a {actor.role}"
    )


def require_view(actor: Actor, referral: Referral) -> None:
    decision = can_view(actor, referral)
    if not decision:
        raise AccessDenied(decision.reason)


def require_act(actor: Actor, referral: Referral, action: ActionKind) -> None:
    decision = can_act(actor, referral, action)
    if not decision:
        raise AccessDenied(decision.reason)
