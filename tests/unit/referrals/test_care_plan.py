"""The care plan: one referral per recommendation under replays, versions, withdrawals,
outcomes and optimistic concurrency."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from referral_builders import COORDINATOR, NOW, member

from carepath_referrals.domain import (
    DEFAULT_ROUTING,
    STEP_CODES,
    Accept,
    BusinessStatus,
    CarePlan,
    Claim,
    Complete,
    Decline,
    EpisodeMismatch,
    IllegalTransition,
    Priority,
    Referral,
    ReferralConflict,
    Reroute,
    Schedule,
    TaskStatus,
    Team,
    UnknownReferral,
    VersionConflict,
    apply_action,
    apply_recommendations,
    apply_referral_change,
    expect_version,
    new_plan,
    outcome_of,
    record_outcome,
    referral_id_for,
)

EPISODE = "ep-1"
STEPS = sorted(STEP_CODES)


def rec(rec_id: str, step: str = "ablation.rfa", priority: str = "routine") -> dict[str, Any]:
    return {
        "recommendation_id": rec_id,
        "step": step,
        "team": "interventional_pain",
        "priority": priority,
        "rationale": f"because {rec_id}",
        "evidence": [{"source": "seed", "section": "3"}],
    }


def event(
    recs: list[dict[str, Any]] | None = None,
    withdrawn: list[dict[str, Any]] | None = None,
    pathway_version: str = "1.0.0",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "episode_id": EPISODE,
        "pathway_version": pathway_version,
        "profile": "default",
        "urgent": any(r.get("priority") == "urgent" for r in recs or []),
        "recommendations": recs or [],
        "withdrawn": withdrawn or [],
        **extra,
    }


def withdraw(rec_id: str, reason: str = "superseded") -> dict[str, Any]:
    return {"recommendation_id": rec_id, "step": "ablation.rfa", "reason": reason}


def plan0() -> CarePlan:
    return new_plan(EPISODE, NOW)


def apply(plan: CarePlan, body: dict[str, Any]) -> tuple[CarePlan, list[Referral], list[Referral]]:
    return apply_recommendations(plan, body, DEFAULT_ROUTING, NOW)


def work(plan: CarePlan, rec_id: str, *actions: Any) -> CarePlan:
    """Team actions on a plan's referral, each merged back into the plan."""
    referral = plan.referrals[referral_id_for(rec_id)]
    for action in actions:
        actor = COORDINATOR if isinstance(action, Reroute) else member(referral.team)
        referral, _ = apply_action(referral, action, actor, NOW)
        plan = apply_referral_change(plan, referral)
    return plan


# -- recommendations -> referrals ----------------------------------------------------------------


def test_new_plan_is_version_zero() -> None:
    plan = plan0()
    assert (plan.version, plan.referrals, plan.outcomes) == (0, {}, ())


def test_each_recommendation_gets_one_routed_referral() -> None:
    body = event([rec("a"), rec("b", "imaging.mri"), rec("c", "surgery.urgent_referral", "urgent")])
    plan, created, cancelled = apply(plan0(), body)
    assert plan.version == 1 and cancelled == []
    assert [r.recommendation_id for r in created] == ["a", "b", "c"]
    assert set(plan.referrals) == {referral_id_for(x) for x in "abc"}
    b = plan.referral_for("b")
    assert b is not None and b.team is Team.RADIOLOGY and b.status is TaskStatus.REQUESTED
    c = plan.referral_for("c")
    assert c is not None and c.priority is Priority.URGENT and c.due_at == NOW + timedelta(hours=4)
    assert c.rationale == "because c" and c.pathway_version == "1.0.0"
    assert plan.recommendations["a"].model_extra == {
        "evidence": [{"source": "seed", "section": "3"}]
    }
    assert (plan.pathway_version, plan.profile, plan.urgent) == ("1.0.0", "default", True)


def test_replayed_event_is_a_no_op() -> None:
    body = event([rec("a"), rec("b")])
    plan, _, _ = apply(plan0(), body)
    again, created, cancelled = apply(plan, body)
    assert again is plan and created == [] and cancelled == []
    # the same content with keys in another order is the same event
    reordered = {k: body[k] for k in reversed(list(body))}
    assert apply(plan, reordered)[0] is plan


def test_new_event_repeating_a_recommendation_creates_no_second_referral() -> None:
    plan, _, _ = apply(plan0(), event([rec("a")]))
    plan2, created, _ = apply(plan, event([rec("a"), rec("b")], pathway_version="1.1.0"))
    assert [r.recommendation_id for r in created] == ["b"]
    assert len(plan2.referrals) == 2
    assert plan2.version == 2 and plan2.pathway_version == "1.1.0"


def test_duplicate_recommendation_within_one_event() -> None:
    plan, created, _ = apply(plan0(), event([rec("a"), rec("a")]))
    assert len(created) == 1 and len(plan.referrals) == 1


def test_a_recommendation_keeps_its_referral_whatever_it_went_through() -> None:
    plan, _, _ = apply(plan0(), event([rec("a")]))
    plan = work(plan, "a", Decline(reason="not ours"), Reroute(to_team=Team.SURGERY))
    plan2, created, _ = apply(plan, event([rec("a")], pathway_version="2"))
    assert created == [] and plan2.referrals == plan.referrals


def test_event_of_another_episode_is_refused() -> None:
    with pytest.raises(EpisodeMismatch):
        apply(plan0(), {**event([rec("a")]), "episode_id": "ep-2"})


def test_malformed_event_is_refused() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        apply(plan0(), event([{"step": "imaging.mri"}]))  # no recommendation_id
    with pytest.raises(ValidationError):
        apply(plan0(), event([rec("a", priority="whenever")]))


def test_unknown_step_is_refused_like_on_the_wire() -> None:
    """A step code outside the contract is refused by the plan's input, as the consumer
    already refused it in the event (``RecommendationsIssued``): the step vocabulary is closed.
    The routing table's own fallback for a code it does not route is tested with routing."""
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="step"):
        apply(plan0(), event([rec("a", "imaging.pet")]))


def test_older_evaluation_does_not_overwrite_newer_metadata() -> None:
    plan, _, _ = apply(plan0(), event([rec("a")], pathway_version="2", evaluation_seq=2))
    plan, created, _ = apply(plan, event([rec("b")], pathway_version="1", evaluation_seq=1))
    assert plan.pathway_version == "2" and plan.evaluation_seq == 2
    assert [r.recommendation_id for r in created] == ["b"]  # its content still counts


# -- withdrawals ------------------------------------------------------------------------------


def test_superseded_recommendation_cancels_open_referrals_but_not_completed_ones() -> None:
    recs = [rec("requested"), rec("accepted"), rec("scheduled"), rec("declined"), rec("done")]
    plan, _, _ = apply(plan0(), event(recs))
    plan = work(plan, "accepted", Accept())
    plan = work(plan, "scheduled", Accept(), Schedule(when=NOW + timedelta(days=2)))
    plan = work(plan, "declined", Decline(reason="not ours"))
    plan = work(plan, "done", Accept(), Complete(outcome={"relief_percent": 90}))
    before = plan.version
    plan2, created, cancelled = apply(
        plan, event(withdrawn=[withdraw(r["recommendation_id"], "new MRI findings") for r in recs])
    )
    assert created == []
    assert {r.recommendation_id for r in cancelled} == {
        "requested",
        "accepted",
        "scheduled",
        "declined",
    }
    for referral in cancelled:
        assert referral.status is TaskStatus.CANCELLED
        assert referral.business_status is BusinessStatus.SUPERSEDED
        assert referral.cancel_reason == "recommendation withdrawn: new MRI findings"
        assert referral.history[-1].actor_subject == "system:carepath-referrals"
        assert plan2.referrals[referral.referral_id] == referral
    done = plan2.referral_for("done")
    assert done is not None and done.status is TaskStatus.COMPLETED
    assert plan2.recommendations == {}
    assert set(plan2.withdrawn) == {r["recommendation_id"] for r in recs}
    assert plan2.withdrawn["done"].reason == "new MRI findings"
    assert plan2.version == before + 1
    assert len(plan2.outcomes) == 1  # the completed one's outcome stays


def test_withdrawal_is_sticky() -> None:
    plan, _, _ = apply(plan0(), event([rec("a")]))
    plan, _, cancelled = apply(plan, event(withdrawn=[withdraw("a")]))
    assert len(cancelled) == 1
    # an older event redelivered late, or a new one reusing the id, does not revive it
    plan2, created, _ = apply(plan, event([rec("a")], pathway_version="9"))
    assert created == [] and "a" not in plan2.recommendations
    ref = plan2.referral_for("a")
    assert ref is not None and ref.status is TaskStatus.CANCELLED


def test_withdrawal_before_recommendation_prevents_the_referral() -> None:
    plan, _, cancelled = apply(plan0(), event(withdrawn=[withdraw("a")]))
    assert cancelled == [] and "a" in plan.withdrawn
    plan, created, _ = apply(plan, event([rec("a")]))
    assert created == [] and plan.referrals == {}


def test_withdrawn_and_recommended_in_one_event_is_withdrawn() -> None:
    plan, created, _ = apply(plan0(), event([rec("a")], withdrawn=[withdraw("a")]))
    assert created == [] and plan.referrals == {}


# -- referral changes and outcomes ----------------------------------------------------------------


def test_every_referral_change_increments_the_version_once() -> None:
    plan, _, _ = apply(plan0(), event([rec("a")]))
    versions = [plan.version]
    referral = plan.referrals[referral_id_for("a")]
    nurse = member(Team.INTERVENTIONAL_PAIN)
    for action in (Claim(), Accept(), Schedule(when=NOW + timedelta(days=1))):
        referral, _ = apply_action(referral, action, nurse, NOW)
        plan = apply_referral_change(plan, referral)
        versions.append(plan.version)
        assert apply_referral_change(plan, referral) is plan  # replay: no-op
    assert versions == [1, 2, 3, 4]


def test_stale_referral_copy_is_a_no_op() -> None:
    plan, _, _ = apply(plan0(), event([rec("a")]))
    first = plan.referrals[referral_id_for("a")]
    plan = work(plan, "a", Claim(), Accept())
    assert apply_referral_change(plan, first) is plan


def test_fast_forward_over_several_changes() -> None:
    plan, _, _ = apply(plan0(), event([rec("a")]))
    referral = plan.referrals[referral_id_for("a")]
    nurse = member(Team.INTERVENTIONAL_PAIN)
    referral, _ = apply_action(referral, Claim(), nurse, NOW)
    referral, _ = apply_action(referral, Accept(), nurse, NOW)
    plan2 = apply_referral_change(plan, referral)
    assert plan2.version == plan.version + 1 and plan2.referrals[referral.referral_id] == referral


def test_concurrent_changes_to_one_referral_conflict() -> None:
    plan, _, _ = apply(plan0(), event([rec("a")]))
    base = plan.referrals[referral_id_for("a")]
    alice, _ = apply_action(base, Claim(), member(Team.INTERVENTIONAL_PAIN, "alice"), NOW)
    bob, _ = apply_action(base, Claim(), member(Team.INTERVENTIONAL_PAIN, "bob"), NOW)
    plan = apply_referral_change(plan, alice)
    with pytest.raises(ReferralConflict, match="changed concurrently"):
        apply_referral_change(plan, bob)
    # bob retries on the fresh referral: now the state machine answers (409)
    with pytest.raises(IllegalTransition, match="alice"):
        apply_action(
            plan.referrals[base.referral_id], Claim(), member(Team.INTERVENTIONAL_PAIN, "bob"), NOW
        )


def test_unknown_referral_or_episode_is_refused() -> None:
    _, created, _ = apply(plan0(), event([rec("a")]))
    with pytest.raises(UnknownReferral):
        apply_referral_change(plan0(), created[0])
    other = new_plan("ep-2", NOW)
    with pytest.raises(EpisodeMismatch):
        apply_referral_change(other, created[0])


def test_completion_records_the_outcome_once() -> None:
    plan, _, _ = apply(plan0(), event([rec("a", "diagnostic.medial_branch_block")]))
    plan = work(plan, "a", Accept(), Complete(outcome={"relief_percent": 80}))
    (outcome,) = plan.outcomes
    assert outcome.step == "diagnostic.medial_branch_block"
    assert outcome.result == {"relief_percent": 80}
    assert outcome == outcome_of(plan.referrals[referral_id_for("a")])
    assert record_outcome(plan, outcome) is plan  # already recorded


def test_record_outcome_on_its_own() -> None:
    plan, _, _ = apply(plan0(), event([rec("a")]))
    referral = plan.referrals[referral_id_for("a")]
    nurse = member(Team.INTERVENTIONAL_PAIN)
    referral, _ = apply_action(referral, Accept(), nurse, NOW)
    done, _ = apply_action(referral, Complete(outcome={"ok": True}), nurse, NOW)
    with pytest.raises(IllegalTransition, match="only a completed referral"):
        record_outcome(apply_referral_change(plan, referral), outcome_of(done))
    plan = apply_referral_change(plan, done)
    conflicting = outcome_of(done).model_copy(update={"result": {"ok": False}})
    with pytest.raises(ReferralConflict):
        record_outcome(plan, conflicting)


def test_plan_round_trips_through_json() -> None:
    plan, _, _ = apply(plan0(), event([rec("a"), rec("b", "psychology.cbt")]))
    plan = work(plan, "a", Accept(), Complete(outcome={"relief_percent": 75}))
    plan, _, _ = apply(plan, event(withdrawn=[withdraw("b")]))
    assert CarePlan.model_validate_json(plan.model_dump_json()) == plan


# -- optimistic concurrency ------------------------------------------------------------------------


class CasStore:
    """A stand-in for the store: saves a plan only if the stored version is the expected one."""

    def __init__(self, plan: CarePlan) -> None:
        self.plan = plan

    def load(self) -> CarePlan:
        return self.plan

    def save(self, plan: CarePlan, expected_version: int) -> None:
        expect_version(self.plan, expected_version)
        self.plan = plan


def test_two_teams_updating_one_plan_lose_nothing() -> None:
    plan, _, _ = apply(plan0(), event([rec("a"), rec("b", "imaging.mri")]))
    store = CasStore(plan)

    def change(rec_id: str, team: Team):  # type: ignore[no-untyped-def]
        def run(current: CarePlan) -> CarePlan:
            referral = current.referrals[referral_id_for(rec_id)]
            referral, _ = apply_action(referral, Accept(), member(team), NOW)
            return apply_referral_change(current, referral)

        return run

    pain, radiology = change("a", Team.INTERVENTIONAL_PAIN), change("b", Team.RADIOLOGY)
    base = store.load()  # both teams read version 1
    store.save(pain(base), base.version)
    with pytest.raises(VersionConflict) as conflict:
        store.save(radiology(base), base.version)
    assert (conflict.value.expected, conflict.value.actual) == (1, 2)
    fresh = store.load()  # retry: reload and apply the same change again
    store.save(radiology(fresh), fresh.version)
    final = store.load()
    assert final.version == 3
    assert {r.status for r in final.referrals.values()} == {TaskStatus.ACCEPTED}


# -- properties: exactly one referral per recommendation, however events are redelivered --------

POOL = [f"r{i}" for i in range(8)]
POOL_STEP = {rid: STEPS[(i * 5) % len(STEPS)] for i, rid in enumerate(POOL)}
POOL_PRIORITY = {rid: "urgent" if i % 3 == 0 else "routine" for i, rid in enumerate(POOL)}


def pooled_rec(rid: str) -> dict[str, Any]:
    return rec(rid, POOL_STEP[rid], POOL_PRIORITY[rid])


events_st = st.builds(
    lambda recs, gone, version, profile: event(
        [pooled_rec(r) for r in recs],
        [withdraw(r) for r in gone],
        pathway_version=version,
        profile=profile,
    ),
    st.lists(st.sampled_from(POOL), max_size=5),
    st.lists(st.sampled_from(POOL), max_size=2),
    st.sampled_from(["1.0.0", "1.1.0"]),
    st.sampled_from(["default", "conservative"]),
)
sequences_st = st.lists(events_st, min_size=1, max_size=6)


def run(events: list[dict[str, Any]], plan: CarePlan | None = None) -> tuple[CarePlan, int, int]:
    plan = plan or plan0()
    created = cancelled = 0
    for body in events:
        plan, new, gone = apply(plan, body)
        created += len(new)
        cancelled += len(gone)
    return plan, created, cancelled


def with_redeliveries(events: list[dict[str, Any]], data: st.DataObject) -> list[dict[str, Any]]:
    """At-least-once delivery: after each event, any earlier events may arrive again."""
    delivered: list[dict[str, Any]] = []
    for i, body in enumerate(events):
        delivered.append(body)
        again = data.draw(st.lists(st.integers(0, i), max_size=3), label=f"redeliver after {i}")
        delivered.extend(events[j] for j in again)
    return delivered


def check_invariants(plan: CarePlan, events: list[dict[str, Any]]) -> None:
    withdrawn: set[str] = set()
    referred: set[str] = set()
    for body in events:
        withdrawn |= {w["recommendation_id"] for w in body["withdrawn"]}
        referred |= {r["recommendation_id"] for r in body["recommendations"]} - withdrawn
    assert set(plan.referrals) == {referral_id_for(r) for r in referred}
    by_rec = [r.recommendation_id for r in plan.referrals.values()]
    assert len(by_rec) == len(set(by_rec))  # exactly one referral per recommendation
    for rid in referred:
        referral = plan.referral_for(rid)
        assert referral is not None and referral.step == POOL_STEP[rid]
        assert referral.status is (
            TaskStatus.CANCELLED if rid in withdrawn else TaskStatus.REQUESTED
        )
    assert set(plan.recommendations) == referred - withdrawn
    assert set(plan.withdrawn) == withdrawn


@settings(max_examples=150, deadline=None)
@given(sequences_st)
def test_applying_the_same_sequence_twice_changes_nothing(events: list[dict[str, Any]]) -> None:
    once, _, _ = run(events)
    twice, created, cancelled = run(events, once)
    assert twice == once
    assert (created, cancelled) == (0, 0)
    distinct = {repr(sorted(e.items())) for e in events}
    assert once.version == len(distinct)
    check_invariants(once, events)


@settings(max_examples=150, deadline=None)
@given(sequences_st, st.data())
def test_redelivered_events_give_the_same_plan(
    events: list[dict[str, Any]], data: st.DataObject
) -> None:
    delivered = with_redeliveries(events, data)
    plan, created, cancelled = run(delivered)
    expected, expected_created, expected_cancelled = run(events)
    assert plan == expected
    assert (created, cancelled) == (expected_created, expected_cancelled)
    check_invariants(plan, delivered)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.lists(st.sampled_from(POOL), min_size=1, max_size=4), min_size=1, max_size=5),
    st.data(),
)
def test_shuffled_duplicated_recommendations_give_the_same_referrals(
    rec_lists: list[list[str]], data: st.DataObject
) -> None:
    events = [event([pooled_rec(r) for r in recs]) for recs in rec_lists]
    copies = data.draw(st.lists(st.sampled_from(events), max_size=6), label="duplicates")
    shuffled = data.draw(st.permutations(events + copies), label="delivery order")
    plan, _, _ = run(shuffled)
    expected, _, _ = run(events)

    def shape(p: CarePlan) -> dict[str, tuple[str, Team, Priority, TaskStatus]]:
        return {k: (r.step, r.team, r.priority, r.status) for k, r in p.referrals.items()}

    assert shape(plan) == shape(expected)
    assert set(plan.referrals) == {referral_id_for(r) for recs in rec_lists for r in recs}


@settings(max_examples=100, deadline=None)
@given(sequences_st, st.sets(st.sampled_from(POOL)))
def test_withdrawing_everything_never_cancels_completed_referrals(
    events: list[dict[str, Any]], to_complete: set[str]
) -> None:
    plan, _, _ = run(events)
    completed = set()
    for rid in sorted(to_complete):
        referral = plan.referral_for(rid)
        if referral is not None and referral.is_open:
            plan = work(plan, rid, Accept(), Complete())
            completed.add(rid)
    open_before = {r.referral_id for r in plan.referrals.values() if r.is_open}
    version = plan.version
    plan, created, cancelled = apply(plan, event(withdrawn=[withdraw(r) for r in POOL]))
    assert created == []
    assert {r.referral_id for r in cancelled} == open_before
    for rid in completed:
        referral = plan.referral_for(rid)
        assert referral is not None and referral.status is TaskStatus.COMPLETED
    assert all(not r.is_open for r in plan.referrals.values())
    assert plan.version == version + 1
    assert {o.recommendation_id for o in plan.outcomes} == completed
