"""Every threshold at its edges: just below, at, just above (and per profile for the MBB)."""

from __future__ import annotations

import pytest
from pathway_builders import episode, missing_fields, rec, run, steps

from carepath_pathway.domain import evaluate, get_profile


@pytest.mark.parametrize(
    ("profile", "relief", "rfa"),
    [
        ("seed", 69, False), ("seed", 70, True), ("seed", 71, True),
        ("consensus-2020", 49, False), ("consensus-2020", 50, True), ("consensus-2020", 51, True),
    ],
)
def test_single_block_mbb_threshold(profile: str, relief: int, rfa: bool) -> None:
    result = run(profile, medial_branch_blocks=[{"relief_percent": relief}])
    assert ("ablation.rfa" in steps(result)) is rfa
    if rfa:
        r = rec(result, "ablation.rfa")
        assert r.thresholds["mbb_relief_percent"] == get_profile(profile).mbb_relief_percent
        assert profile in r.rationale


@pytest.mark.parametrize(
    ("relief", "rfa"), [(79, False), (80, True), (81, True)]
)
def test_sis_dual_block_threshold(relief: int, rfa: bool) -> None:
    blocks = [
        {"relief_percent": 90, "anesthetic": "lidocaine"},
        {"relief_percent": relief, "anesthetic": "bupivacaine"},
    ]
    result = run("sis", medial_branch_blocks=blocks)
    assert ("ablation.rfa" in steps(result)) is rfa
    if rfa:
        r = rec(result, "ablation.rfa")
        assert r.thresholds == {"mbb_relief_percent": 80, "mbb_blocks_required": 2}
        assert "concordance" in r.rationale


@pytest.mark.parametrize(("relief", "second"), [(79, False), (80, True), (81, True)])
def test_sis_one_positive_block_asks_for_a_second(relief: int, second: bool) -> None:
    result = run("sis", medial_branch_blocks=[{"relief_percent": relief,
                                               "anesthetic": "lidocaine"}])
    assert "ablation.rfa" not in steps(result)
    assert ("diagnostic.medial_branch_block" in steps(result)) is second
    if second:
        assert "bupivacaine" in rec(result, "diagnostic.medial_branch_block").rationale


def test_same_block_read_three_ways() -> None:
    blocks = [{"relief_percent": 60}]
    assert "ablation.rfa" not in steps(run("seed", medial_branch_blocks=blocks))
    assert "ablation.rfa" in steps(run("consensus-2020", medial_branch_blocks=blocks))
    assert "ablation.rfa" not in steps(run("sis", medial_branch_blocks=blocks))


def test_site_override_of_mbb_threshold() -> None:
    profile = get_profile("seed").with_overrides(mbb_relief_percent=60)
    result = evaluate(episode(medial_branch_blocks=[{"relief_percent": 60}]), profile)
    assert rec(result, "ablation.rfa").thresholds["mbb_relief_percent"] == 60
    assert result.profile == "seed+custom"


@pytest.mark.parametrize(("relief", "implant"), [(49, False), (50, True), (51, True)])
def test_scs_trial_threshold(relief: int, implant: bool) -> None:
    result = run(scs_trial={"relief_percent": relief}, psychological_evaluation_done=True,
                 completed_steps=["neuromodulation.scs_evaluation", "neuromodulation.scs_trial"])
    assert ("neuromodulation.scs_implant" in steps(result)) is implant


@pytest.mark.parametrize(("relief", "repeat"), [(49, False), (50, True), (51, True)])
def test_repeat_rfa_relief_threshold(relief: int, repeat: bool) -> None:
    result = run(rfa_history=[{"relief_percent": relief, "relief_duration_months": 12}])
    assert ("ablation.repeat_rfa" in steps(result)) is repeat


@pytest.mark.parametrize(("months", "repeat"), [(5.9, False), (6, True), (6.1, True)])
def test_repeat_rfa_duration_threshold(months: float, repeat: bool) -> None:
    result = run(rfa_history=[{"relief_percent": 80, "relief_duration_months": months}])
    assert ("ablation.repeat_rfa" in steps(result)) is repeat


@pytest.mark.parametrize(("nrs", "repeat"), [(3, False), (4, True), (5, True)])
def test_repeat_rfa_pain_recurrence_threshold(nrs: int, repeat: bool) -> None:
    result = run(rfa_history=[{"relief_percent": 80, "relief_duration_months": 12}], pain_nrs=nrs)
    assert ("ablation.repeat_rfa" in steps(result)) is repeat


@pytest.mark.parametrize(("positive", "si"), [(2, False), (3, True), (4, True)])
def test_si_provocation_threshold(positive: int, si: bool) -> None:
    result = run(si_provocation_positive=positive)
    assert ("injection.si_joint" in steps(result)) is si
    if si:
        assert rec(result, "injection.si_joint").thresholds == {"si_provocation_positive": 3}


@pytest.mark.parametrize("score", ["phq9", "gad7"])
@pytest.mark.parametrize(("value", "assess"), [(9, False), (10, True), (11, True)])
def test_phq9_gad7_thresholds(score: str, value: int, assess: bool) -> None:
    result = run(**{score: value})
    assert ("psychology.assessment" in steps(result)) is assess
    done = run(**{score: value, "psychological_evaluation_done": True})
    assert ("psychology.cbt" in steps(done)) is assess


@pytest.mark.parametrize(("value", "assess"), [(29, False), (30, True), (31, True)])
def test_pain_catastrophizing_threshold(value: int, assess: bool) -> None:
    result = run(pain_catastrophizing=value)
    assert ("psychology.assessment" in steps(result)) is assess
    if assess:
        assert rec(result, "psychology.assessment").thresholds["pcs_min"] == 30


@pytest.mark.parametrize(("months", "evaluate_scs"), [(5.9, False), (6, True), (7, True)])
def test_scs_candidacy_duration_threshold(months: float, evaluate_scs: bool) -> None:
    result = run(neuropathic_features=True, symptom_duration_months=months)
    assert ("neuromodulation.scs_evaluation" in steps(result)) is evaluate_scs


@pytest.mark.parametrize(("nrs", "evaluate_scs"), [(4, False), (5, True), (6, True)])
def test_scs_candidacy_pain_threshold(nrs: int, evaluate_scs: bool) -> None:
    result = run(neuropathic_features=True, pain_nrs=nrs)
    assert ("neuromodulation.scs_evaluation" in steps(result)) is evaluate_scs


@pytest.mark.parametrize(("weeks", "pt"), [(5.9, True), (6, False), (6.1, False)])
def test_physical_therapy_course_threshold(weeks: float, pt: bool) -> None:
    assert ("rehab.physical_therapy" in steps(run(physical_therapy_weeks=weeks))) is pt


@pytest.mark.parametrize(("relief", "failed"), [(49, True), (50, False), (51, False)])
def test_failed_injection_relief_threshold(relief: int, failed: bool) -> None:
    injections = [
        {"relief_percent": 10, "technically_adequate": True},
        {"relief_percent": relief, "relief_duration_weeks": 20, "technically_adequate": True},
    ]
    result = run(facet_injections=injections, medial_branch_blocks=[])
    assert ("coordination.second_opinion" in steps(result)) is failed
    assert "facet_injections" not in missing_fields(result)
