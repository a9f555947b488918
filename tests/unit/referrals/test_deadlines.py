"""Deadlines: finding overdue referrals and escalating them once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from referral_builders import ADMIN, COORDINATOR, NOW, drive, make_referral, member

from carepath_referrals.domain import (
    BusinessStatus,
    Claim,
    IllegalTransition,
    Reroute,
    Start,
    TaskStatus,
    Team,
    apply_action,
    escalate,
    find_overdue,
    is_overdue,
)

ROUTINE_DUE = NOW + timedelta(days=14)


def test_urgent_referral_is_overdue_after_four_hours() -> None:
    urgent = make_referral(step="surgery.urgent_referral")
    assert find_overdue([urgent], NOW + timedelta(hours=3, minutes=59)) == []
    assert find_overdue([urgent], NOW + timedelta(hours=4)) == []  # due_at < now, strictly
    assert find_overdue([urgent], NOW + timedelta(hours=4, seconds=1)) == [urgent]


@pytest.mark.parametrize(
    ("status", "overdue"),
    [
        (TaskStatus.REQUESTED, True),
        (TaskStatus.RECEIVED, True),
        (TaskStatus.ACCEPTED, True),
        (TaskStatus.IN_PROGRESS, True),  # scheduled, not yet started
        (TaskStatus.REJECTED, True),  # waiting for the coordinator is still waiting
        (TaskStatus.COMPLETED, False),
        (TaskStatus.CANCELLED, False),
    ],
)
def test_only_open_referrals_become_overdue(status: TaskStatus, overdue: bool) -> None:
    referral = drive(make_referral(), status)
    later = ROUTINE_DUE + timedelta(minutes=1)
    assert is_overdue(referral, later) is overdue
    assert (find_overdue([referral], later) == [referral]) is overdue


def test_started_referral_is_not_overdue() -> None:
    referral = drive(make_referral(), TaskStatus.IN_PROGRESS)
    referral, _ = apply_action(referral, Start(), member(referral.team), NOW)
    assert find_overdue([referral], ROUTINE_DUE + timedelta(days=30)) == []


def test_overdue_are_sorted_most_overdue_first() -> None:
    a = make_referral(recommendation_id="a", now=NOW)
    b = make_referral(recommendation_id="b", now=NOW - timedelta(days=1))
    c = make_referral(recommendation_id="c", now=NOW + timedelta(days=20))  # not due yet
    assert find_overdue([a, b, c], ROUTINE_DUE + timedelta(hours=1)) == [b, a]


def test_escalate_raises_an_event_and_audits() -> None:
    referral = drive(make_referral(), TaskStatus.RECEIVED)
    at = ROUTINE_DUE + timedelta(hours=2)
    escalated, event = escalate(referral, at)
    assert escalated.status is TaskStatus.RECEIVED  # status kept
    assert escalated.business_status is BusinessStatus.OVERDUE_ESCALATED
    assert escalated.escalated_at == at
    assert event.referral_id == referral.referral_id
    assert event.previous_business_status is BusinessStatus.CLAIMED
    assert event.overdue_seconds == 7200
    assert event.notify == (Team.INTERVENTIONAL_PAIN, Team.CARE_COORDINATOR)
    assert event.audit == escalated.history[-1]
    assert event.audit.action == "escalate" and "overdue" in (event.audit.reason or "")
    # escalated once: not found again, and a second escalation is refused
    assert find_overdue([escalated], at + timedelta(days=1)) == []
    with pytest.raises(IllegalTransition, match="already escalated"):
        escalate(escalated, at + timedelta(days=1))


def test_escalation_id_is_stable() -> None:
    referral = make_referral()
    _, one = escalate(referral, ROUTINE_DUE + timedelta(hours=1))
    _, two = escalate(referral, ROUTINE_DUE + timedelta(hours=5))
    assert one.escalation_id == two.escalation_id


def test_escalating_before_due_is_refused() -> None:
    with pytest.raises(IllegalTransition, match="not overdue"):
        escalate(make_referral(), NOW + timedelta(days=1))


def test_escalated_referral_still_moves_on() -> None:
    escalated, _ = escalate(make_referral(), ROUTINE_DUE + timedelta(hours=1))
    claimed, _ = apply_action(escalated, Claim(), member(Team.INTERVENTIONAL_PAIN), ROUTINE_DUE)
    assert claimed.business_status is BusinessStatus.CLAIMED
    assert find_overdue([claimed], ROUTINE_DUE + timedelta(days=1)) == []  # escalated once


def test_reroute_restarts_the_clock_and_allows_a_new_escalation() -> None:
    at = ROUTINE_DUE + timedelta(hours=1)
    escalated, _ = escalate(drive(make_referral(), TaskStatus.REJECTED), at)
    rerouted, _ = apply_action(escalated, Reroute(to_team=Team.SURGERY), COORDINATOR, at)
    assert rerouted.escalated_at is None
    assert rerouted.due_at == at + timedelta(days=14)
    assert find_overdue([rerouted], at + timedelta(days=13)) == []
    assert find_overdue([rerouted], at + timedelta(days=15)) == [rerouted]


def test_only_the_system_or_an_admin_escalates() -> None:
    from carepath_referrals.domain import AccessDenied

    with pytest.raises(AccessDenied):
        escalate(make_referral(), ROUTINE_DUE + timedelta(hours=1), actor=COORDINATOR)
    escalate(make_referral(), ROUTINE_DUE + timedelta(hours=1), actor=ADMIN)
