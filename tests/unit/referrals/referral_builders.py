"""Builders shared by the referral domain tests (imported by name: tests/unit/referrals is on
sys.path under pytest's default import mode)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from carepath_referrals.domain import (
    DEFAULT_ROUTING,
    SYSTEM_ACTOR,
    Accept,
    Action,
    Actor,
    Cancel,
    Claim,
    Complete,
    Decline,
    Referral,
    Schedule,
    TaskStatus,
    Team,
    apply_action,
    new_referral,
)

NOW = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def member(team: Team, subject: str | None = None) -> Actor:
    return Actor(subject=subject or f"{team.value}-nurse", team=team, role="team_member")


COORDINATOR = Actor(subject="coord-1", team=Team.CARE_COORDINATOR, role="coordinator")
ADMIN = Actor(subject="ops-1", team=Team.CARE_COORDINATOR, role="admin")


def make_referral(
    step: str = "ablation.rfa",
    recommendation_id: str = "rec-1",
    priority: str | None = None,
    now: datetime = NOW,
    episode_id: str = "ep-1",
) -> Referral:
    return new_referral(
        episode_id=episode_id,
        recommendation_id=recommendation_id,
        decision=DEFAULT_ROUTING.route(step, priority, now),
        now=now,
        rationale="test rationale",
        pathway_version="1.0.0",
    )


def drive(referral: Referral, status: TaskStatus, now: datetime = NOW) -> Referral:
    """Take a fresh referral to ``status`` along legal transitions.

    ``in-progress`` is scheduled but not started.
    """
    team = member(referral.team)
    steps: dict[TaskStatus, list[tuple[Action, Actor]]] = {
        TaskStatus.REQUESTED: [],
        TaskStatus.RECEIVED: [(Claim(), team)],
        TaskStatus.ACCEPTED: [(Accept(), team)],
        TaskStatus.IN_PROGRESS: [
            (Accept(), team),
            (Schedule(when=now + timedelta(days=3)), team),
        ],
        TaskStatus.REJECTED: [(Decline(reason="no capacity this quarter"), team)],
        TaskStatus.COMPLETED: [(Accept(), team), (Complete(outcome={"relief_percent": 80}), team)],
        TaskStatus.CANCELLED: [(Cancel(reason="patient moved away"), COORDINATOR)],
    }
    for action, actor in steps[status]:
        referral, _ = apply_action(referral, action, actor, now)
    assert referral.status is status
    return referral


__all__ = ["ADMIN", "COORDINATOR", "NOW", "SYSTEM_ACTOR", "drive", "make_referral", "member"]
