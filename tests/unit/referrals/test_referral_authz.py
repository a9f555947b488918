"""Authorization: a team sees and changes only its own referrals; coordinators and admins."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from referral_builders import ADMIN, COORDINATOR, NOW, drive, make_referral, member

from carepath_referrals.domain import (
    SYSTEM_ACTOR,
    AccessDenied,
    ActionKind,
    Actor,
    Claim,
    Decline,
    IllegalTransition,
    TaskStatus,
    Team,
    apply_action,
    can_act,
    can_view,
    require_act,
    require_view,
)

OWN = member(Team.INTERVENTIONAL_PAIN, "ip-1")
OTHER = member(Team.RADIOLOGY, "rad-1")
TEAM_ACTIONS = [
    ActionKind.CLAIM,
    ActionKind.ACCEPT,
    ActionKind.DECLINE,
    ActionKind.SCHEDULE,
    ActionKind.START,
    ActionKind.COMPLETE,
]
MANAGEMENT = [ActionKind.CANCEL, ActionKind.REROUTE]

# (who, action) -> allowed, for a referral assigned to interventional_pain
EXPECTED: dict[str, set[ActionKind]] = {
    "own team member": set(TEAM_ACTIONS),
    "other team member": set(),
    "coordinator": set(MANAGEMENT),
    "admin": {*MANAGEMENT, ActionKind.ESCALATE},
}
ACTORS: dict[str, Actor] = {
    "own team member": OWN,
    "other team member": OTHER,
    "coordinator": COORDINATOR,
    "admin": ADMIN,
}


@pytest.mark.parametrize("who", sorted(ACTORS))
@pytest.mark.parametrize("action", list(ActionKind))
def test_can_act_matrix(who: str, action: ActionKind) -> None:
    decision = can_act(ACTORS[who], make_referral(), action)
    assert bool(decision) is (action in EXPECTED[who])
    assert decision.reason


@pytest.mark.parametrize(
    ("who", "sees"),
    [
        ("own team member", True),
        ("other team member", False),
        ("coordinator", True),
        ("admin", True),
    ],
)
def test_can_view(who: str, sees: bool) -> None:
    decision = can_view(ACTORS[who], make_referral())
    assert bool(decision) is sees
    if not sees:
        assert "radiology" in decision.reason and "interventional_pain" in decision.reason
        with pytest.raises(AccessDenied):
            require_view(ACTORS[who], make_referral())
    else:
        require_view(ACTORS[who], make_referral())


def test_other_team_is_told_why() -> None:
    with pytest.raises(AccessDenied, match="only see referrals of team radiology"):
        require_act(OTHER, make_referral(), ActionKind.CLAIM)


def test_team_member_may_not_cancel_or_reroute() -> None:
    for action in MANAGEMENT:
        with pytest.raises(AccessDenied, match="only a coordinator or admin"):
            require_act(OWN, make_referral(), action)


def test_only_admin_escalates() -> None:
    with pytest.raises(AccessDenied, match="only a admin may escalate"):
        require_act(COORDINATOR, make_referral(), ActionKind.ESCALATE)
    require_act(SYSTEM_ACTOR, make_referral(), ActionKind.ESCALATE)


def test_coordinator_works_coordination_steps_as_a_team() -> None:
    referral = make_referral(step="coordination.second_opinion")
    assert referral.team is Team.CARE_COORDINATOR
    for action in TEAM_ACTIONS:
        assert can_act(COORDINATOR, referral, action)
        assert can_act(member(Team.CARE_COORDINATOR), referral, action)
    assert not can_act(ADMIN, referral, ActionKind.ACCEPT)
    assert not can_act(member(Team.CARE_COORDINATOR), referral, ActionKind.CANCEL)


def test_coordinator_may_not_do_another_teams_clinical_work() -> None:
    with pytest.raises(AccessDenied, match="only team interventional_pain may accept"):
        require_act(COORDINATOR, make_referral(), ActionKind.ACCEPT)


def test_access_is_checked_before_the_state() -> None:
    # a completed referral of another team: 403, not 409 (don't reveal its state)
    completed = drive(make_referral(), TaskStatus.COMPLETED)
    with pytest.raises(AccessDenied):
        apply_action(completed, Claim(), OTHER, NOW)
    with pytest.raises(IllegalTransition):
        apply_action(completed, Claim(), OWN, NOW)


def test_other_team_cannot_decline() -> None:
    with pytest.raises(AccessDenied):
        apply_action(make_referral(), Decline(reason="not ours"), OTHER, NOW)


def test_declining_team_loses_sight_of_the_referral() -> None:
    declined = drive(make_referral(), TaskStatus.REJECTED)
    assert not can_view(OWN, declined)
    assert can_view(COORDINATOR, declined)
    assert can_view(member(Team.CARE_COORDINATOR), declined)


def test_actor_is_validated() -> None:
    with pytest.raises(ValidationError):
        Actor(subject="", team=Team.SURGERY, role="team_member")
    with pytest.raises(ValidationError):
        Actor(subject="x", team="orthopaedics", role="team_member")
    with pytest.raises(ValidationError):
        Actor(subject="x", team=Team.SURGERY, role="superuser")
