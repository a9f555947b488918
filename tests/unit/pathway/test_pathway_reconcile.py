"""reconcile: stable ids, deterministic new ids, withdrawals vs completions."""

from __future__ import annotations

import uuid

from pathway_builders import episode, run

from carepath_pathway.domain import (
    RECOMMENDATION_NAMESPACE,
    evaluate,
    recommendation_id,
    reconcile,
)


def test_new_steps_get_deterministic_uuid5_ids() -> None:
    result = run(medial_branch_blocks=[{"relief_percent": 80}])
    out, active = reconcile("ep-1", {}, result, 1)
    for r in out.recommendations:
        expected = str(uuid.uuid5(RECOMMENDATION_NAMESPACE, f"ep-1:{r.step}:1"))
        assert r.recommendation_id == expected == active[r.step]
    again, _ = reconcile("ep-1", {}, result, 1)
    assert again == out
    assert out.withdrawn == []
    assert result.recommendations[0].recommendation_id is None  # input untouched


def test_still_recommended_steps_keep_their_id() -> None:
    _, active = reconcile("ep-1", {}, run(medial_branch_blocks=[{"relief_percent": 80}]), 1)
    second, active2 = reconcile("ep-1", active,
                                run(medial_branch_blocks=[{"relief_percent": 80}], phq9=15), 2)
    ids = {r.step: r.recommendation_id for r in second.recommendations}
    assert ids["ablation.rfa"] == active["ablation.rfa"]
    assert ids["psychology.assessment"] == recommendation_id("ep-1", "psychology.assessment", 2)
    assert active2["ablation.rfa"] == active["ablation.rfa"]


def test_no_longer_indicated_step_is_withdrawn_as_superseded() -> None:
    _, active = reconcile("ep-1", {}, run(si_provocation_positive=4), 1)
    out, active2 = reconcile("ep-1", active, run(si_provocation_positive=1), 2)
    assert [w.step for w in out.withdrawn] == ["injection.si_joint"]
    assert out.withdrawn[0].recommendation_id == active["injection.si_joint"]
    assert out.withdrawn[0].reason.startswith("superseded")
    assert "injection.si_joint" not in active2


def test_red_flags_suspend_elective_steps() -> None:
    _, active = reconcile("ep-1", {}, run(medial_branch_blocks=[{"relief_percent": 80}]), 1)
    out, _ = reconcile("ep-1", active,
                       run(medial_branch_blocks=[{"relief_percent": 80}], red_flags=["fever"]), 2)
    withdrawn = {w.step: w.reason for w in out.withdrawn}
    assert withdrawn["ablation.rfa"].startswith("suspended: red flags")


def test_completed_steps_are_dropped_not_withdrawn() -> None:
    _, active = reconcile("ep-1", {}, run(medial_branch_blocks=[]), 1)
    assert "diagnostic.medial_branch_block" in active
    # the block was done (its record is in the episode) -> not withdrawn
    out, active2 = reconcile("ep-1", active, run(medial_branch_blocks=[{"relief_percent": 80}]), 2)
    assert "diagnostic.medial_branch_block" not in [w.step for w in out.withdrawn]
    assert "diagnostic.medial_branch_block" not in active2
    # a step in completed_steps is not withdrawn either
    _, active = reconcile("ep-1", {}, run(), 1)
    out, _ = reconcile("ep-1", active, run(completed_steps=["rehab.pain_education"]), 2)
    assert out.withdrawn == []


def test_a_step_just_done_and_recommended_again_is_a_new_referral() -> None:
    ep = episode(medial_branch_blocks=[{"relief_percent": 85, "anesthetic": "lidocaine"}])
    from carepath_pathway.domain import get_profile

    sis = get_profile("sis")
    _, active = reconcile("ep-1", {"diagnostic.medial_branch_block": "old-id"},
                          evaluate(ep, sis), 2, completed_steps=["diagnostic.medial_branch_block"])
    assert active["diagnostic.medial_branch_block"] == recommendation_id(
        "ep-1", "diagnostic.medial_branch_block", 2)


def test_result_json_carries_ids_and_withdrawn() -> None:
    _, active = reconcile("ep-1", {}, run(si_provocation_positive=4), 1)
    out, _ = reconcile("ep-1", active, run(), 2)
    data = out.to_json_dict()
    assert all("recommendation_id" in r for r in data["recommendations"])
    assert data["withdrawn"][0]["step"] == "injection.si_joint"


def test_unknown_previous_steps_are_ignored() -> None:
    out, active = reconcile("ep-1", {"ablation.laser": "x"}, run(), 1)
    assert out.withdrawn == [] and "ablation.laser" not in active
