"""One test (or a few) per rule, through the engine and directly as plain functions."""

from __future__ import annotations

from pathway_builders import episode, missing_fields, rec, run, steps

from carepath_contracts.pathway_result import Recommendation
from carepath_contracts.steps import ELECTIVE_PROCEDURES, STEP_TEAM
from carepath_pathway.domain import PATHWAY, PATHWAY_VERSION, get_profile
from carepath_pathway.domain.context import build_context
from carepath_pathway.domain.rules import (
    ablation,
    coordination,
    diagnostic_blocks,
    imaging,
    injections,
    neuromodulation,
    psychology,
    red_flags,
    rehabilitation,
    surgery,
)

SEED = get_profile("seed")


def test_quiet_episode_gives_little_and_asks_for_nothing() -> None:
    result = run()
    assert result.pathway == "failed-facet-injection"
    assert result.pathway_version == PATHWAY_VERSION
    assert result.profile == "seed"
    assert result.urgent is False
    assert result.missing_data == []
    # negative block -> second opinion (+ diary); pain education always
    assert steps(result) == [
        "rehab.pain_education", "coordination.second_opinion", "coordination.pain_diary"
    ]


def test_definition_lists_every_rule_once_in_order() -> None:
    names = [r.name for r in PATHWAY.rules]
    assert names[0] == "red_flags" and names[-1] == "coordination"
    assert len(set(names)) == len(names) == 10
    assert {r.name for r in PATHWAY.rules if not r.elective} == {"red_flags", "psychology"}


# --- red flags -------------------------------------------------------------------------


def test_red_flag_rule_as_a_plain_function() -> None:
    ep = episode(red_flags=["fever"])
    out = red_flags(ep, SEED, build_context(ep, SEED))
    assert [getattr(f, "step", None) for f in out] == ["surgery.urgent_referral", "imaging.mri"]


def test_bowel_bladder_dysfunction_is_urgent_with_emergency_mri() -> None:
    result = run(bowel_bladder_dysfunction=True, medial_branch_blocks=[{"relief_percent": 90}])
    assert result.urgent is True
    assert steps(result)[:2] == ["surgery.urgent_referral", "imaging.mri"]
    referral = rec(result, "surgery.urgent_referral")
    assert referral.priority == "urgent" and referral.team == "surgery"
    assert "cauda equina" in referral.rationale
    assert "withheld" in referral.rationale
    assert "ablation.rfa" not in steps(result)


def test_progressive_deficit_is_urgent() -> None:
    result = run(neurological_deficit="progressive")
    assert result.urgent and "surgery.urgent_referral" in steps(result)


def test_trauma_orders_urgent_ct() -> None:
    result = run(red_flags=["trauma"])
    assert rec(result, "imaging.ct").priority == "urgent"
    assert "imaging.mri" not in steps(result)


def test_cervical_red_flag_mentions_myelopathy() -> None:
    result = run(region="cervical", bowel_bladder_dysfunction=True)
    assert "myelopathy" in rec(result, "surgery.urgent_referral").rationale


def test_red_flags_withhold_all_elective_steps_but_keep_psychology() -> None:
    result = run(
        red_flags=["cancer_history"], medial_branch_blocks=[{"relief_percent": 95}],
        radicular_pain=True, si_provocation_positive=5, trigger_points=True,
        imaging_findings=["spondylolisthesis"], physical_therapy_weeks=0, phq9=20,
        completed_steps=["neuromodulation.scs_evaluation"], psychological_evaluation_done=True,
    )
    got = set(steps(result))
    assert not got & ELECTIVE_PROCEDURES
    assert not got & {"surgery.consultation", "rehab.physical_therapy", "coordination.pain_diary"}
    assert "psychology.cbt" in got
    assert result.urgent


def test_unknown_red_flag_fields_are_missing_not_urgent() -> None:
    result = run(red_flags=None, bowel_bladder_dysfunction=None, neurological_deficit=None)
    assert result.urgent is False
    assert {"red_flags", "bowel_bladder_dysfunction", "neurological_deficit"} <= set(
        missing_fields(result))


def test_completed_urgent_referral_is_not_repeated_but_elective_stays_withheld() -> None:
    result = run(red_flags=["fever"],
                 completed_steps=["surgery.urgent_referral", "imaging.mri"],
                 medial_branch_blocks=[{"relief_percent": 90}])
    assert result.urgent is False
    assert "ablation.rfa" not in steps(result)
    assert "surgery.urgent_referral" not in steps(result)


# --- imaging ---------------------------------------------------------------------------


def test_imaging_rule_as_a_plain_function() -> None:
    ep = episode(imaging_done=["xray"])
    out = imaging(ep, SEED, build_context(ep, SEED))
    assert [getattr(f, "step", None) for f in out] == ["imaging.mri"]


def test_mri_when_not_done() -> None:
    r = rec(run(imaging_done=["xray"], imaging_findings=["normal"]), "imaging.mri")
    assert r.team == "radiology"
    assert {"source": "seed", "section": "Tip 4"} in [e.model_dump() for e in r.evidence]


def test_no_mri_when_done() -> None:
    assert "imaging.mri" not in steps(run(radicular_pain=True))


def test_unknown_imaging_asks_and_orders_nothing_without_specific_indication() -> None:
    result = run(imaging_done=None)
    assert "imaging_done" in missing_fields(result)
    assert not {"imaging.mri", "imaging.ct", "imaging.spect"} & set(steps(result))


def test_unknown_imaging_with_radicular_pain_orders_mri_if_not_done() -> None:
    result = run(imaging_done=None, radicular_pain=True)
    assert "if not already performed" in rec(result, "imaging.mri").rationale
    assert "imaging_done" in missing_fields(result)


def test_mri_rationale_names_radicular_pain() -> None:
    r = rec(run(imaging_done=["xray"], radicular_pain=True), "imaging.mri")
    assert "radicular" in r.rationale


def test_ct_for_bony_findings() -> None:
    for finding in ("fracture", "instability", "spondylolisthesis"):
        r = rec(run(imaging_findings=[finding]), "imaging.ct")
        assert finding in r.rationale
    assert "imaging.ct" not in steps(run(imaging_findings=["fracture"],
                                         imaging_done=["mri", "ct"]))


def test_spect_when_imaging_bland_and_facet_untested() -> None:
    result = run(medial_branch_blocks=[], imaging_findings=["normal"])
    assert "SPECT" in rec(result, "imaging.spect").rationale
    assert "imaging.spect" not in steps(run(medial_branch_blocks=[],
                                            imaging_findings=["disc_herniation"]))
    assert "imaging.spect" not in steps(run(medial_branch_blocks=[{"relief_percent": 90}]))
    assert "imaging.spect" not in steps(run(medial_branch_blocks=[], radicular_pain=True))
    assert "imaging.spect" not in steps(run(medial_branch_blocks=[],
                                            imaging_done=["mri", "spect"]))


def test_findings_unknown_are_asked_for() -> None:
    assert "imaging_findings" in missing_fields(run(imaging_findings=None))


# --- diagnostic blocks -----------------------------------------------------------------


def test_diagnostic_block_rule_as_a_plain_function() -> None:
    ep = episode(medial_branch_blocks=[])
    out = diagnostic_blocks(ep, SEED, build_context(ep, SEED))
    assert [getattr(f, "step", None) for f in out] == ["diagnostic.medial_branch_block"]


def test_mbb_when_none_recorded() -> None:
    result = run(medial_branch_blocks=[])
    r = rec(result, "diagnostic.medial_branch_block")
    assert r.team == "interventional_pain"
    assert r.thresholds == {"mbb_relief_percent": 70, "mbb_blocks_required": 1}
    assert "coordination.pain_diary" in steps(result)


def test_mbb_unknown_is_asked_for_not_guessed() -> None:
    result = run(medial_branch_blocks=None)
    assert "medial_branch_blocks" in missing_fields(result)
    assert "diagnostic.medial_branch_block" not in steps(result)
    assert "ablation.rfa" not in steps(result)


def test_mbb_with_unrecorded_relief_is_repeated_with_pain_diary() -> None:
    result = run(medial_branch_blocks=[{"anesthetic": "lidocaine"}])
    assert "never recorded" in rec(result, "diagnostic.medial_branch_block").rationale
    assert "coordination.pain_diary" in steps(result)
    assert "medial_branch_blocks[0].relief_percent" in missing_fields(result)
    assert "ablation.rfa" not in steps(result)


def test_unrecorded_block_that_is_a_completed_step_is_not_repeated_but_diarised() -> None:
    result = run(medial_branch_blocks=[{}], completed_steps=["diagnostic.medial_branch_block"])
    assert "diagnostic.medial_branch_block" not in steps(result)
    assert "coordination.pain_diary" in steps(result)


def test_technically_inadequate_injection_is_repeated_before_concluding() -> None:
    result = run(medial_branch_blocks=[],
                 facet_injections=[{"relief_percent": 0, "technically_adequate": False}])
    r = rec(result, "diagnostic.repeat_facet_injection")
    assert "FAQ Q1" in r.rationale
    assert "diagnostic.medial_branch_block" in steps(result)
    assert "ablation.rfa" not in steps(result)


def test_repeat_injection_not_again_once_completed() -> None:
    result = run(medial_branch_blocks=[],
                 facet_injections=[{"technically_adequate": False}],
                 completed_steps=["diagnostic.repeat_facet_injection"])
    assert "diagnostic.repeat_facet_injection" not in steps(result)
    assert "diagnostic.medial_branch_block" in steps(result)


def test_unknown_adequacy_is_asked_for() -> None:
    result = run(medial_branch_blocks=[], facet_injections=[{"relief_percent": 10}])
    assert "facet_injections[0].technically_adequate" in missing_fields(result)


def test_radicular_pain_defers_facet_blocks() -> None:
    result = run(medial_branch_blocks=[], radicular_pain=True)
    assert "diagnostic.medial_branch_block" not in steps(result)
    assert "deferred" in rec(result, "injection.epidural_steroid").rationale


# --- injections ------------------------------------------------------------------------


def test_injection_rule_as_a_plain_function() -> None:
    ep = episode(trigger_points=True)
    out = injections(ep, SEED, build_context(ep, SEED))
    assert [getattr(f, "step", None) for f in out] == ["injection.trigger_point"]


def test_si_joint_injection_lumbar_only() -> None:
    assert "injection.si_joint" in steps(run(si_provocation_positive=3))
    cervical = run(region="cervical", si_provocation_positive=5)
    assert "injection.si_joint" not in steps(cervical)
    assert "si_provocation_positive" not in missing_fields(run(region="cervical",
                                                                si_provocation_positive=None))
    assert "si_provocation_positive" in missing_fields(run(si_provocation_positive=None))


def test_epidural_for_radicular_pain_lumbar_and_cervical() -> None:
    assert "leg" in rec(run(radicular_pain=True), "injection.epidural_steroid").rationale
    assert "arm" in rec(run(region="cervical", radicular_pain=True),
                        "injection.epidural_steroid").rationale
    assert "radicular_pain" in missing_fields(run(radicular_pain=None))


def test_trigger_point_injection() -> None:
    r = rec(run(trigger_points=True), "injection.trigger_point")
    assert r.team == "interventional_pain"
    assert "trigger_points" in missing_fields(run(trigger_points=None))


# --- ablation --------------------------------------------------------------------------


def test_ablation_rule_as_a_plain_function() -> None:
    ep = episode(medial_branch_blocks=[{"relief_percent": 80}])
    out = ablation(ep, SEED, build_context(ep, SEED))
    assert [getattr(f, "step", None) for f in out] == ["ablation.rfa"]


def test_rfa_after_positive_block_matches_the_contract_example() -> None:
    r = rec(run(medial_branch_blocks=[{"relief_percent": 80}]), "ablation.rfa")
    assert r.team == "interventional_pain" and r.priority == "routine"
    assert "80% relief" in r.rationale and "70%" in r.rationale
    assert {"source": "seed", "section": "3. Radiofrequency Ablation"} in [
        e.model_dump() for e in r.evidence]
    assert r.thresholds["mbb_relief_percent"] == 70
    assert r.facts["medial_branch_blocks[0].relief_percent"] == 80


def test_latest_recorded_block_decides() -> None:
    assert "ablation.rfa" in steps(run(medial_branch_blocks=[{"relief_percent": 30},
                                                              {"relief_percent": 80}]))
    assert "ablation.rfa" not in steps(run(medial_branch_blocks=[{"relief_percent": 80},
                                                                  {"relief_percent": 30}]))


def test_rfa_after_a_positive_block_alongside_radicular_care_but_not_when_done() -> None:
    # The block confirmed the facet joints for the axial pain; the radicular component is
    # treated alongside with an epidural steroid injection (seed §2), not instead.
    both = run(medial_branch_blocks=[{"relief_percent": 90}], radicular_pain=True)
    assert {"ablation.rfa", "injection.epidural_steroid"} <= set(steps(both))
    assert "does not treat" in rec(both, "ablation.rfa").rationale
    assert "ablation.rfa" not in steps(run(medial_branch_blocks=[{"relief_percent": 90}],
                                           completed_steps=["ablation.rfa"]))


def test_rfa_with_unknown_radicular_pain_asks_for_it() -> None:
    result = run(medial_branch_blocks=[{"relief_percent": 90}], radicular_pain=None)
    assert "ablation.rfa" in steps(result)
    assert "radicular_pain" in missing_fields(result)


def test_repeat_rfa_after_effective_rfa_wore_off() -> None:
    result = run(medial_branch_blocks=[{"relief_percent": 80}],
                 rfa_history=[{"relief_percent": 80, "relief_duration_months": 12}])
    r = rec(result, "ablation.repeat_rfa")
    assert r.thresholds["repeat_rfa_relief_percent"] == 50
    assert r.thresholds["repeat_rfa_duration_months"] == 6
    assert "ablation.rfa" not in steps(result)
    assert "diagnostic.medial_branch_block" not in steps(result)


def test_repeat_rfa_needs_recurrence_and_known_duration() -> None:
    ongoing = run(rfa_history=[{"relief_percent": 80}])
    assert "ablation.repeat_rfa" not in steps(ongoing)
    assert "rfa_history[0].relief_duration_months" in missing_fields(ongoing)
    no_pain = run(rfa_history=[{"relief_percent": 80, "relief_duration_months": 12}], pain_nrs=2)
    assert "ablation.repeat_rfa" not in steps(no_pain)
    unknown_pain = run(rfa_history=[{"relief_percent": 80, "relief_duration_months": 12}],
                       pain_nrs=None)
    assert "ablation.repeat_rfa" in steps(unknown_pain)
    assert "pain_nrs" in missing_fields(unknown_pain)


def test_failed_rfa_is_not_repeated_and_raises_doubt() -> None:
    result = run(rfa_history=[{"relief_percent": 30, "relief_duration_months": 12}])
    assert "ablation.repeat_rfa" not in steps(result)
    assert "coordination.second_opinion" in steps(result)
    assert "rfa_history[0].relief_percent" in missing_fields(run(rfa_history=[{}]))


# --- neuromodulation -------------------------------------------------------------------


def test_neuromodulation_rule_as_a_plain_function() -> None:
    ep = episode(neuropathic_features=True, psychological_evaluation_done=True)
    out = neuromodulation(ep, SEED, build_context(ep, SEED))
    assert [getattr(f, "step", None) for f in out] == ["neuromodulation.scs_evaluation"]


def test_scs_evaluation_for_chronic_neuropathic_pain() -> None:
    r = rec(run(neuropathic_features=True), "neuromodulation.scs_evaluation")
    assert r.team == "neuromodulation"
    assert "neuropathic" in r.rationale


def test_scs_evaluation_for_failed_back_surgery_and_after_failed_rfa() -> None:
    assert "neuromodulation.scs_evaluation" in steps(run(prior_spine_surgery=True))
    result = run(rfa_history=[{"relief_percent": 20, "relief_duration_months": 1}])
    assert "axial" in rec(result, "neuromodulation.scs_evaluation").rationale


def test_no_scs_evaluation_for_short_or_mild_pain_or_while_rfa_pending() -> None:
    assert "neuromodulation.scs_evaluation" not in steps(
        run(neuropathic_features=True, symptom_duration_months=3))
    assert "neuromodulation.scs_evaluation" not in steps(
        run(neuropathic_features=True, pain_nrs=3))
    assert "neuromodulation.scs_evaluation" not in steps(
        run(neuropathic_features=True, medial_branch_blocks=[{"relief_percent": 90}]))
    assert "neuromodulation.scs_evaluation" not in steps(run())  # negative block alone


def test_scs_evaluation_with_unknown_duration_asks_for_it() -> None:
    result = run(neuropathic_features=True, symptom_duration_months=None)
    assert "neuromodulation.scs_evaluation" in steps(result)
    assert "symptom_duration_months" in missing_fields(result)


def test_scs_evaluation_done_leads_to_psychology_before_trial() -> None:
    result = run(completed_steps=["neuromodulation.scs_evaluation"])
    assert "psychology.assessment" in steps(result)
    assert "neuromodulation.scs_trial" not in steps(result)
    unknown = run(completed_steps=["neuromodulation.scs_evaluation"],
                  psychological_evaluation_done=None)
    assert "neuromodulation.scs_trial" not in steps(unknown)
    assert "psychological_evaluation_done" in missing_fields(unknown)


def test_scs_trial_after_evaluation_and_psychology() -> None:
    for done in (
        {"psychological_evaluation_done": True},
        {"completed_steps": ["neuromodulation.scs_evaluation", "psychology.assessment"]},
    ):
        overrides = {"completed_steps": ["neuromodulation.scs_evaluation"], **done}
        result = run(**overrides)
        assert "neuromodulation.scs_trial" in steps(result)
        assert "coordination.pain_diary" in steps(result)


def test_implant_after_successful_trial_only() -> None:
    ok = run(scs_trial={"relief_percent": 60}, psychological_evaluation_done=True)
    assert rec(ok, "neuromodulation.scs_implant").thresholds == {"scs_trial_relief_percent": 50}
    failed = run(scs_trial={"relief_percent": 40}, psychological_evaluation_done=True)
    assert "neuromodulation.scs_implant" not in steps(failed)
    assert "coordination.second_opinion" in steps(failed)
    unrecorded = run(scs_trial={}, psychological_evaluation_done=True)
    assert "neuromodulation.scs_implant" not in steps(unrecorded)
    assert "scs_trial.relief_percent" in missing_fields(unrecorded)
    trial_done_no_result = run(completed_steps=["neuromodulation.scs_trial"])
    assert "scs_trial" in missing_fields(trial_done_no_result)


def test_implant_held_when_psychological_evaluation_known_not_done() -> None:
    result = run(scs_trial={"relief_percent": 70}, psychological_evaluation_done=False)
    assert "neuromodulation.scs_implant" not in steps(result)
    assert "psychology.assessment" in steps(result)


# --- surgery ---------------------------------------------------------------------------


def test_surgery_rule_as_a_plain_function() -> None:
    ep = episode(imaging_findings=["instability"])
    out = surgery(ep, SEED, build_context(ep, SEED))
    assert [getattr(f, "step", None) for f in out] == ["surgery.consultation"]


def test_surgical_consultation_for_structural_findings() -> None:
    for finding in ("spondylolisthesis", "instability", "fracture"):
        r = rec(run(imaging_findings=[finding]), "surgery.consultation")
        assert r.priority == "routine" and r.team == "surgery"


def test_compression_needs_symptoms_and_failed_conservative_care() -> None:
    compression = {"imaging_findings": ["nerve_root_compression"], "radicular_pain": True}
    assert "surgery.consultation" in steps(run(**compression, physical_therapy_weeks=8))
    assert "surgery.consultation" not in steps(run(**compression, physical_therapy_weeks=2))
    assert "surgery.consultation" in steps(run(**compression, physical_therapy_weeks=2,
                                               completed_steps=["injection.epidural_steroid"]))
    unknown = run(**compression, physical_therapy_weeks=None)
    assert "surgery.consultation" not in steps(unknown)
    assert "physical_therapy_weeks" in missing_fields(unknown)
    assert "surgery.consultation" not in steps(
        run(imaging_findings=["spinal_stenosis"], radicular_pain=False))
    assert "surgery.consultation" in steps(
        run(imaging_findings=["spinal_stenosis"], neurological_deficit="stable"))


# --- rehabilitation --------------------------------------------------------------------


def test_rehabilitation_rule_as_a_plain_function() -> None:
    ep = episode(physical_therapy_weeks=0)
    out = rehabilitation(ep, SEED, build_context(ep, SEED))
    assert [getattr(f, "step", None) for f in out] == [
        "rehab.physical_therapy", "rehab.pain_education"]


def test_physical_therapy_until_a_course_is_done() -> None:
    assert "rehab.physical_therapy" in steps(run(physical_therapy_weeks=0))
    assert "rehab.physical_therapy" in steps(run(physical_therapy_weeks=5.5))
    assert "rehab.physical_therapy" not in steps(run(physical_therapy_weeks=6))
    unknown = run(physical_therapy_weeks=None)
    assert "rehab.physical_therapy" in steps(unknown)
    assert "physical_therapy_weeks" in missing_fields(unknown)


def test_pain_education_unless_completed() -> None:
    assert "rehab.pain_education" in steps(run())
    assert "rehab.pain_education" not in steps(run(completed_steps=["rehab.pain_education"]))


# --- psychology ------------------------------------------------------------------------


def test_psychology_rule_as_a_plain_function() -> None:
    ep = episode(phq9=15)
    out = psychology(ep, SEED, build_context(ep, SEED))
    assert [getattr(f, "step", None) for f in out] == ["psychology.assessment"]


def test_assessment_then_cbt() -> None:
    first = run(gad7=12)
    assert "psychology.assessment" in steps(first) and "psychology.cbt" not in steps(first)
    second = run(gad7=12, psychological_evaluation_done=True)
    assert "psychology.cbt" in steps(second) and "psychology.assessment" not in steps(second)
    settled = run(gad7=5, psychological_evaluation_done=True)
    assert not {"psychology.cbt", "psychology.assessment"} & set(steps(settled))


def test_unknown_scores_are_asked_for() -> None:
    result = run(phq9=None, gad7=None, pain_catastrophizing=None)
    assert {"phq9", "gad7", "pain_catastrophizing"} <= set(missing_fields(result))
    assert "psychology.assessment" not in steps(result)


def test_psychology_merged_with_scs_clearance() -> None:
    result = run(phq9=14, completed_steps=["neuromodulation.scs_evaluation"])
    r = rec(result, "psychology.assessment")
    assert "PHQ-9" in r.rationale and "SCS" in r.rationale
    assert steps(result).count("psychology.assessment") == 1


# --- coordination ----------------------------------------------------------------------


def test_coordination_rule_as_a_plain_function() -> None:
    ep = episode()
    ctx = build_context(ep, SEED)
    out = coordination(ep, SEED, ctx)
    assert [getattr(f, "step", None) for f in out] == [
        "coordination.second_opinion", "coordination.pain_diary"]
    assert all(
        STEP_TEAM[f.step] == "care_coordinator" for f in out if isinstance(f, Recommendation)
    )


def test_second_opinion_after_repeated_failed_injections() -> None:
    two_failed = [
        {"relief_percent": 20, "technically_adequate": True},
        {"relief_percent": 80, "relief_duration_weeks": 3, "technically_adequate": True},
    ]
    result = run(facet_injections=two_failed, medial_branch_blocks=[])
    assert "2 facet injections failed" in rec(result, "coordination.second_opinion").rationale
    one = run(facet_injections=two_failed[:1], medial_branch_blocks=[])
    assert "coordination.second_opinion" not in steps(one)


def test_no_second_opinion_once_completed() -> None:
    assert "coordination.second_opinion" not in steps(
        run(completed_steps=["coordination.second_opinion"]))


# --- completed steps move the pathway on -------------------------------------------------


def test_completed_imaging_step_counts_as_imaging_done() -> None:
    result = run(imaging_done=None, completed_steps=["imaging.mri"], imaging_findings=["normal"],
                 medial_branch_blocks=[])
    assert "imaging.mri" not in steps(result)
    assert "imaging.spect" in steps(result)
    assert "imaging_done" in missing_fields(result)


def test_completed_implant_ends_the_scs_path() -> None:
    result = run(completed_steps=["neuromodulation.scs_evaluation", "neuromodulation.scs_implant"],
                 psychological_evaluation_done=True, neuropathic_features=True)
    assert not [s for s in steps(result) if s.startswith("neuromodulation.")]


def test_scs_evaluation_starts_the_psychological_evaluation_it_includes() -> None:
    base = {"neuropathic_features": True, "symptom_duration_months": 24, "pain_nrs": 8}
    without = run(**base, psychological_evaluation_done=False)
    assert {"neuromodulation.scs_evaluation", "psychology.assessment"} <= set(steps(without))
    assert "neuromodulation.scs_trial" not in steps(without)
    done = run(**base, psychological_evaluation_done=True)
    assert "neuromodulation.scs_evaluation" in steps(done)
    assert "psychology.assessment" not in steps(done)
