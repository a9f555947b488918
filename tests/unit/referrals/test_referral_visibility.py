"""Who reads which episode, and what of it: the care-relationship rule and the plan's
redaction for a team member (pure)."""

from __future__ import annotations

from typing import Any

from referral_builders import ADMIN, COORDINATOR, NOW, drive, make_referral, member

from carepath_referrals.domain import (
    DEFAULT_ROUTING,
    CarePlan,
    Referral,
    Reroute,
    TaskStatus,
    Team,
    apply_action,
    new_plan,
)
from carepath_referrals.domain.care_plan import Recommendation
from carepath_referrals.domain.referral import referral_id_for
from carepath_referrals.domain.visibility import may_read_episode, redact_plan_view
from carepath_referrals.plan_events import care_plan_view

SCORES = {"kind": "screening", "phq9": 19, "gad7": 15}


def plan_with(*refs: Referral) -> CarePlan:
    plan = new_plan("ep-1", NOW)
    recs = {}
    for r in refs:
        evidence = [{"field": "phq9", "value": 19}] if r.step.startswith("psychology") else []
        recs[r.recommendation_id] = Recommendation.model_validate(
            {"recommendation_id": r.recommendation_id, "step": r.step, "team": r.team.value,
             "rationale": f"why {r.step}", "evidence": evidence})
    return plan.model_copy(update={"referrals": {r.referral_id: r for r in refs},
                                   "recommendations": recs})


def psychology_done() -> Referral:
    ref = make_referral("psychology.assessment", "rec-psy")
    ref = drive(ref, TaskStatus.ACCEPTED)
    return ref.model_copy(update={"status": TaskStatus.COMPLETED, "outcome": SCORES})


def radiology_declined() -> Referral:
    return drive(make_referral("imaging.mri", "rec-mri"), TaskStatus.REJECTED)


def test_only_teams_with_a_referral_read_the_episode() -> None:
    refs = [make_referral("imaging.mri", "rec-mri"), make_referral("ablation.rfa", "rec-rfa")]
    assert may_read_episode(member(Team.RADIOLOGY), refs)
    assert may_read_episode(member(Team.INTERVENTIONAL_PAIN), refs)
    assert not may_read_episode(member(Team.SURGERY), refs)
    assert not may_read_episode(member(Team.PSYCHOLOGY), refs)
    assert may_read_episode(COORDINATOR, refs) and may_read_episode(ADMIN, refs)
    assert not may_read_episode(member(Team.RADIOLOGY), [])


def test_a_team_that_held_a_referral_still_reads_the_episode() -> None:
    declined = radiology_declined()  # now with the coordinator
    assert declined.team is Team.CARE_COORDINATOR
    assert may_read_episode(member(Team.RADIOLOGY), [declined])
    moved, _ = apply_action(declined, Reroute(to_team=Team.SURGERY, reason="other site"),
                            COORDINATOR, NOW, DEFAULT_ROUTING)
    assert may_read_episode(member(Team.RADIOLOGY), [moved])
    assert may_read_episode(member(Team.SURGERY), [moved])
    assert not may_read_episode(member(Team.PSYCHOLOGY), [moved])


def _text(view: dict[str, Any]) -> str:
    return repr(view)


def test_other_teams_reasons_and_scores_are_redacted() -> None:
    mri, psy = radiology_declined(), psychology_done()
    rfa = make_referral("ablation.rfa", "rec-rfa")
    view = care_plan_view(plan_with(mri, psy, rfa))
    assert "no capacity this quarter" in _text(view) and "'phq9': 19" in _text(view)

    seen = redact_plan_view(view, member(Team.INTERVENTIONAL_PAIN))
    assert set(seen["referrals"]) == set(view["referrals"])  # the steps stay visible
    other = seen["referrals"][mri.referral_id]
    assert other["redacted"] is True and other["status"] == "rejected"
    for hidden in ("decline_reason", "outcome", "rationale", "routing_history", "claimed_by"):
        assert hidden not in other
    assert "no capacity this quarter" not in _text(seen)
    assert "phq9" not in _text(seen) and "gad7" not in _text(seen)
    assert "why psychology.assessment" not in _text(seen)
    assert seen["outcomes"] == []
    # Their own referral and recommendation they read in full.
    assert seen["referrals"][rfa.referral_id] == view["referrals"][rfa.referral_id]
    assert seen["recommendations"]["rec-rfa"]["rationale"] == "why ablation.rfa"


def test_a_team_reads_its_own_reasons_and_scores() -> None:
    mri, psy = radiology_declined(), psychology_done()
    view = care_plan_view(plan_with(mri, psy))
    psychology = redact_plan_view(view, member(Team.PSYCHOLOGY))
    assert psychology["referrals"][psy.referral_id]["outcome"] == SCORES
    assert "decline_reason" not in psychology["referrals"][mri.referral_id]
    radiology = redact_plan_view(view, member(Team.RADIOLOGY))  # declined it: still theirs
    assert radiology["referrals"][mri.referral_id]["decline_reason"] == "no capacity this quarter"
    assert "phq9" not in _text(radiology)


def test_coordinators_and_admins_read_everything() -> None:
    view = care_plan_view(plan_with(radiology_declined(), psychology_done()))
    assert redact_plan_view(view, COORDINATOR) == view
    assert redact_plan_view(view, ADMIN) == view
    assert referral_id_for("rec-mri") in view["referrals"]
