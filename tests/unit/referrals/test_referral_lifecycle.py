"""The referral state machine: the full (status x action) matrix, decline, reroute, audit."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from pydantic import ValidationError
from referral_builders import ADMIN, COORDINATOR, NOW, drive, make_referral, member

from carepath_referrals.domain import (
    DEFAULT_ROUTING,
    SYSTEM_ACTOR,
    TRANSITIONS,
    Accept,
    Action,
    ActionKind,
    Actor,
    BusinessStatus,
    Cancel,
    Claim,
    Complete,
    Decline,
    Escalate,
    IllegalTransition,
    Referral,
    Reroute,
    Schedule,
    Start,
    TaskStatus,
    Team,
    allowed_actions,
    apply_action,
    can_view,
    outcome_of,
    parse_action,
    referral_id_for,
)

S, A = TaskStatus, ActionKind

# The expected machine, written out independently of the code's table.
# (from status, action) -> (to status, to business status); absent = illegal.
EXPECTED: dict[tuple[TaskStatus, ActionKind], tuple[TaskStatus, BusinessStatus]] = {
    (S.REQUESTED, A.CLAIM): (S.RECEIVED, BusinessStatus.CLAIMED),
    (S.REQUESTED, A.ACCEPT): (S.ACCEPTED, BusinessStatus.ACCEPTED),
    (S.REQUESTED, A.DECLINE): (S.REJECTED, BusinessStatus.DECLINED_AWAITING_REROUTE),
    (S.REQUESTED, A.CANCEL): (S.CANCELLED, BusinessStatus.CANCELLED),
    (S.REQUESTED, A.REROUTE): (S.REQUESTED, BusinessStatus.REROUTED),
    (S.REQUESTED, A.ESCALATE): (S.REQUESTED, BusinessStatus.OVERDUE_ESCALATED),
    (S.RECEIVED, A.ACCEPT): (S.ACCEPTED, BusinessStatus.ACCEPTED),
    (S.RECEIVED, A.DECLINE): (S.REJECTED, BusinessStatus.DECLINED_AWAITING_REROUTE),
    (S.RECEIVED, A.CANCEL): (S.CANCELLED, BusinessStatus.CANCELLED),
    (S.RECEIVED, A.REROUTE): (S.REQUESTED, BusinessStatus.REROUTED),
    (S.RECEIVED, A.ESCALATE): (S.RECEIVED, BusinessStatus.OVERDUE_ESCALATED),
    (S.ACCEPTED, A.DECLINE): (S.REJECTED, BusinessStatus.DECLINED_AWAITING_REROUTE),
    (S.ACCEPTED, A.SCHEDULE): (S.IN_PROGRESS, BusinessStatus.SCHEDULED),
    (S.ACCEPTED, A.START): (S.IN_PROGRESS, BusinessStatus.STARTED),
    (S.ACCEPTED, A.COMPLETE): (S.COMPLETED, BusinessStatus.COMPLETED),
    (S.ACCEPTED, A.CANCEL): (S.CANCELLED, BusinessStatus.CANCELLED),
    (S.ACCEPTED, A.ESCALATE): (S.ACCEPTED, BusinessStatus.OVERDUE_ESCALATED),
    (S.IN_PROGRESS, A.SCHEDULE): (S.IN_PROGRESS, BusinessStatus.SCHEDULED),
    (S.IN_PROGRESS, A.START): (S.IN_PROGRESS, BusinessStatus.STARTED),
    (S.IN_PROGRESS, A.COMPLETE): (S.COMPLETED, BusinessStatus.COMPLETED),
    (S.IN_PROGRESS, A.CANCEL): (S.CANCELLED, BusinessStatus.CANCELLED),
    (S.IN_PROGRESS, A.ESCALATE): (S.IN_PROGRESS, BusinessStatus.OVERDUE_ESCALATED),
    (S.REJECTED, A.CANCEL): (S.CANCELLED, BusinessStatus.CANCELLED),
    (S.REJECTED, A.REROUTE): (S.REQUESTED, BusinessStatus.REROUTED),
    (S.REJECTED, A.ESCALATE): (S.REJECTED, BusinessStatus.OVERDUE_ESCALATED),
}

MATRIX = [(status, action) for status in TaskStatus for action in ActionKind]
LATER = NOW + timedelta(days=30)  # past every default due time, so escalate is possible


def action_for(kind: ActionKind, referral: Referral) -> tuple[Action, Actor]:
    """An instance of ``kind`` with an actor *allowed* to take it, so only the state decides."""
    team = member(referral.team)
    other = Team.PSYCHOLOGY if referral.team is not Team.PSYCHOLOGY else Team.SURGERY
    table: dict[ActionKind, tuple[Action, Actor]] = {
        A.CLAIM: (Claim(), team),
        A.ACCEPT: (Accept(), team),
        A.DECLINE: (Decline(reason="outside our remit"), team),
        A.SCHEDULE: (Schedule(when=LATER + timedelta(days=2)), team),
        A.START: (Start(), team),
        A.COMPLETE: (Complete(outcome={"relief_percent": 60}), team),
        A.CANCEL: (Cancel(reason="duplicate request"), COORDINATOR),
        A.REROUTE: (Reroute(to_team=other, reason="better fit"), COORDINATOR),
        A.ESCALATE: (Escalate(), SYSTEM_ACTOR),
    }
    return table[kind]


def test_code_table_is_the_expected_table() -> None:
    assert {k: (t.to_status, t.to_business_status) for k, t in TRANSITIONS.items()} == EXPECTED


@pytest.mark.parametrize(("status", "kind"), [k for k in MATRIX if k in EXPECTED])
def test_legal_transition(status: TaskStatus, kind: ActionKind) -> None:
    referral = drive(make_referral(), status)
    action, actor = action_for(kind, referral)
    changed, entry = apply_action(referral, action, actor, LATER)
    assert (changed.status, changed.business_status) == EXPECTED[(status, kind)]
    assert changed.referral_id == referral.referral_id
    assert changed.revision == referral.revision + 1
    assert changed.history[-1] == entry
    assert (entry.action, entry.from_status, entry.to_status) == (
        kind.value,
        status,
        changed.status,
    )
    assert entry.actor_subject == actor.subject
    assert entry.at == LATER == changed.updated_at
    assert kind in allowed_actions(referral, LATER)


@pytest.mark.parametrize(("status", "kind"), [k for k in MATRIX if k not in EXPECTED])
def test_illegal_transition_is_refused_with_a_reason(status: TaskStatus, kind: ActionKind) -> None:
    referral = drive(make_referral(), status)
    action, actor = action_for(kind, referral)
    with pytest.raises(IllegalTransition) as refused:
        apply_action(referral, action, actor, LATER)
    reason = refused.value.reason
    assert len(reason) > 15 and reason == str(refused.value)
    assert refused.value.status is status and refused.value.action is kind
    assert kind not in allowed_actions(referral, LATER)


def test_every_status_action_pair_is_covered() -> None:
    assert len(MATRIX) == len(TaskStatus) * len(ActionKind) == 63
    assert len(EXPECTED) == 25


@pytest.mark.parametrize(
    ("status", "fragment"),
    [(S.COMPLETED, "completed; nothing more"), (S.CANCELLED, "cancelled; nothing more")],
)
def test_terminal_reasons_name_the_status(status: TaskStatus, fragment: str) -> None:
    referral = drive(make_referral(), status)
    with pytest.raises(IllegalTransition, match=fragment):
        apply_action(referral, Cancel(reason="x"), COORDINATOR, NOW)


def test_claim_twice_names_the_claimant() -> None:
    referral = drive(make_referral(), S.RECEIVED)
    with pytest.raises(IllegalTransition, match="interventional_pain-nurse"):
        apply_action(referral, Claim(), member(Team.INTERVENTIONAL_PAIN, "other"), NOW)


def test_schedule_before_accept_says_accept_first() -> None:
    with pytest.raises(IllegalTransition, match="accept it before you schedule"):
        apply_action(make_referral(), Schedule(when=NOW), member(Team.INTERVENTIONAL_PAIN), NOW)


# -- guards inside in-progress -----------------------------------------------------------------


def started() -> Referral:
    referral = drive(make_referral(), S.IN_PROGRESS)
    referral, _ = apply_action(referral, Start(), member(referral.team), NOW)
    return referral


@pytest.mark.parametrize(
    ("action", "actor"),
    [
        (Start(), member(Team.INTERVENTIONAL_PAIN)),
        (Schedule(when=NOW), member(Team.INTERVENTIONAL_PAIN)),
        (Escalate(), SYSTEM_ACTOR),
    ],
)
def test_started_referral_cannot_be_started_rescheduled_or_escalated(
    action: Action, actor: Actor
) -> None:
    with pytest.raises(IllegalTransition, match="started"):
        apply_action(started(), action, actor, LATER)


def test_started_referral_can_complete_or_be_cancelled() -> None:
    referral = started()
    done, _ = apply_action(referral, Complete(), member(referral.team), NOW)
    assert done.status is S.COMPLETED and done.outcome is None
    gone, _ = apply_action(referral, Cancel(reason="patient declined"), COORDINATOR, NOW)
    assert gone.status is S.CANCELLED


def test_reschedule_updates_the_date() -> None:
    referral = drive(make_referral(), S.IN_PROGRESS)
    when = NOW + timedelta(days=9)
    moved, entry = apply_action(referral, Schedule(when=when), member(referral.team), NOW)
    assert moved.scheduled_for == when
    assert entry.details == {"scheduled_for": when.isoformat()}


# -- decline and reroute -----------------------------------------------------------------------


def test_decline_requires_a_reason() -> None:
    with pytest.raises(ValidationError):
        Decline()  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        Decline(reason="   ")
    with pytest.raises(ValidationError):
        parse_action({"kind": "decline"})
    sneaky = Decline.model_construct(kind="decline", reason=" ", note=None)
    with pytest.raises(IllegalTransition, match="needs a reason"):
        apply_action(make_referral(), sneaky, member(Team.INTERVENTIONAL_PAIN), NOW)


def test_cancel_requires_a_reason() -> None:
    with pytest.raises(ValidationError):
        Cancel(reason="")


def test_decline_goes_back_to_the_care_coordinator() -> None:
    referral = drive(make_referral(), S.RECEIVED)
    nurse = member(Team.INTERVENTIONAL_PAIN)
    declined, entry = apply_action(referral, Decline(reason="needs MRI first"), nurse, NOW)
    assert declined.status is S.REJECTED
    assert declined.business_status is BusinessStatus.DECLINED_AWAITING_REROUTE
    assert declined.team is Team.CARE_COORDINATOR
    assert declined.queue == DEFAULT_ROUTING.reroute_queue == "care_coordinator.reroute"
    assert declined.decline_reason == "needs MRI first"
    assert declined.claimed_by is None
    assert declined.is_open and not declined.is_terminal
    (change,) = declined.routing_history
    assert (change.action, change.from_team, change.to_team, change.by, change.reason) == (
        "decline",
        Team.INTERVENTIONAL_PAIN,
        Team.CARE_COORDINATOR,
        nurse.subject,
        "needs MRI first",
    )
    assert entry.reason == "needs MRI first"
    assert can_view(COORDINATOR, declined)
    assert not can_view(nurse, declined)


def test_coordinator_reroutes_a_declined_referral_to_another_team() -> None:
    referral = drive(make_referral(), S.REJECTED)
    later = NOW + timedelta(days=1)
    rerouted, entry = apply_action(
        referral, Reroute(to_team=Team.RADIOLOGY, reason="image first"), COORDINATOR, later
    )
    assert rerouted.referral_id == referral.referral_id == referral_id_for("rec-1")
    assert (rerouted.status, rerouted.business_status) == (S.REQUESTED, BusinessStatus.REROUTED)
    assert (rerouted.team, rerouted.queue) == (Team.RADIOLOGY, "radiology")
    assert rerouted.due_at == later + timedelta(days=14)  # a fresh due time for the new team
    assert rerouted.decline_reason == "no capacity this quarter"  # context kept
    assert [c.action for c in rerouted.routing_history] == ["decline", "reroute"]
    assert entry.details["to_team"] == "radiology" and entry.reason == "image first"
    # the new team can now work it
    claimed, _ = apply_action(rerouted, Claim(), member(Team.RADIOLOGY), later)
    assert claimed.status is S.RECEIVED


def test_reroute_to_a_named_queue() -> None:
    referral = drive(make_referral(), S.REJECTED)
    rerouted, _ = apply_action(
        referral, Reroute(to_team=Team.SURGERY, queue="surgery.spine"), COORDINATOR, NOW
    )
    assert rerouted.queue == "surgery.spine"


def test_reroute_uses_the_site_routing_table() -> None:
    site = DEFAULT_ROUTING.with_site_config(
        {"team_queues": {"surgery": "surgery.site"}, "reroute_queue": "coord.site"}
    )
    declined, _ = apply_action(
        make_referral(), Decline(reason="no"), member(Team.INTERVENTIONAL_PAIN), NOW, site
    )
    assert declined.queue == "coord.site"
    rerouted, _ = apply_action(declined, Reroute(to_team=Team.SURGERY), COORDINATOR, NOW, site)
    assert rerouted.queue == "surgery.site"


def test_reroute_to_the_current_team_is_refused() -> None:
    with pytest.raises(IllegalTransition, match="already assigned"):
        apply_action(make_referral(), Reroute(to_team=Team.INTERVENTIONAL_PAIN), COORDINATOR, NOW)


def test_coordinator_may_take_a_declined_referral_itself() -> None:
    referral = drive(make_referral(), S.REJECTED)
    mine, _ = apply_action(referral, Reroute(to_team=Team.CARE_COORDINATOR), COORDINATOR, NOW)
    assert (mine.status, mine.team) == (S.REQUESTED, Team.CARE_COORDINATOR)


def test_declined_referral_cannot_be_worked_by_the_declining_team() -> None:
    referral = drive(make_referral(), S.REJECTED)
    coordination_member = member(Team.CARE_COORDINATOR)
    with pytest.raises(IllegalTransition, match="can only be rerouted or cancelled"):
        apply_action(referral, Accept(), coordination_member, NOW)


# -- audit ---------------------------------------------------------------------------------------


def test_creation_is_audited() -> None:
    referral = make_referral()
    (created,) = referral.history
    assert created.action == "create" and created.revision == 1
    assert created.to_status is S.REQUESTED and created.from_status is None
    assert created.actor_subject == SYSTEM_ACTOR.subject
    assert created.reason == "test rationale"


def test_each_change_is_audited_who_what_when_why() -> None:
    referral = make_referral()
    nurse = member(Team.INTERVENTIONAL_PAIN, "dr-a")
    t1, t2, t3 = NOW + timedelta(minutes=1), NOW + timedelta(minutes=2), NOW + timedelta(hours=1)
    referral, _ = apply_action(referral, Claim(note="I'll take it"), nurse, t1)
    referral, _ = apply_action(referral, Accept(), nurse, t2)
    referral, _ = apply_action(referral, Complete(outcome={"relief_percent": 85}), nurse, t3)
    entries = referral.history
    assert [e.action for e in entries] == ["create", "claim", "accept", "complete"]
    assert [e.revision for e in entries] == [1, 2, 3, 4]
    assert [e.at for e in entries] == [NOW, t1, t2, t3]
    assert entries[1].reason == "I'll take it" and entries[1].actor_subject == "dr-a"
    assert entries[3].details == {"outcome_fields": ["relief_percent"]}
    assert len({e.audit_id for e in entries}) == 4
    assert referral.claimed_by == "dr-a" and referral.completed_at == t3
    outcome = outcome_of(referral)
    assert outcome.result == {"relief_percent": 85}
    assert outcome.completed_by == "dr-a"


def test_same_change_gives_same_audit_id() -> None:
    nurse = member(Team.INTERVENTIONAL_PAIN)
    _, first = apply_action(make_referral(), Claim(), nurse, NOW)
    _, again = apply_action(make_referral(), Claim(), nurse, NOW)
    assert first == again


def test_apply_action_does_not_mutate_its_input() -> None:
    referral = make_referral()
    before = referral.model_dump()
    apply_action(referral, Claim(), member(Team.INTERVENTIONAL_PAIN), NOW)
    assert referral.model_dump() == before


def test_accept_straight_from_requested_claims_it() -> None:
    accepted, _ = apply_action(make_referral(), Accept(), member(Team.INTERVENTIONAL_PAIN), NOW)
    assert accepted.claimed_by == "interventional_pain-nurse"


def test_outcome_of_an_open_referral_is_refused() -> None:
    with pytest.raises(ValueError, match="not completed"):
        outcome_of(make_referral())


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        naive = datetime(2025, 1, 1)
        apply_action(make_referral(), Claim(), member(Team.INTERVENTIONAL_PAIN), naive)


def test_parse_action_from_json() -> None:
    action = parse_action({"kind": "reroute", "to_team": "surgery", "reason": "spondylolisthesis"})
    assert isinstance(action, Reroute) and action.to_team is Team.SURGERY
    assert parse_action({"kind": "schedule", "when": "2025-03-10T09:00:00+01:00"}) == Schedule(
        when=datetime.fromisoformat("2025-03-10T09:00:00+01:00")
    )
    with pytest.raises(ValidationError):
        parse_action({"kind": "teleport"})
    with pytest.raises(ValidationError):
        parse_action({"kind": "schedule", "when": "2025-03-10T09:00:00"})  # naive
    with pytest.raises(ValidationError):
        parse_action({"kind": "reroute", "to_team": "orthopaedics"})


def test_admin_is_not_a_team_actor_but_may_cancel() -> None:
    cancelled, entry = apply_action(make_referral(), Cancel(reason="entered twice"), ADMIN, NOW)
    assert cancelled.cancel_reason == "entered twice" and entry.actor_role == "admin"
