"""apply_outcome: each kind of team outcome updates the episode purely; report parsing."""

from __future__ import annotations

from typing import Any

import pytest
from pathway_builders import episode
from pydantic import ValidationError

from carepath_contracts.episode import Episode, parse_episode, validation_errors
from carepath_contracts.outcome import OUTCOME_ADAPTER, parse_outcome
from carepath_pathway.domain import apply_outcome, outcome_steps


def report(kind: str, **fields: Any) -> Any:
    return parse_outcome({"episode_id": "ep-test", "kind": kind, **fields})


def bare(**fields: Any) -> Episode:
    return parse_episode({"episode_id": "ep-test", "region": "lumbar", **fields})


def test_apply_outcome_is_pure() -> None:
    ep = bare(medial_branch_blocks=[])
    after = apply_outcome(ep, report("medial_branch_block", relief_percent=80))
    assert ep.medial_branch_blocks == []
    assert after.medial_branch_blocks is not None
    assert after.medial_branch_blocks[0].relief_percent == 80


def test_medial_branch_block_appends_and_is_not_marked_completed() -> None:
    ep = apply_outcome(bare(), report("medial_branch_block", relief_percent=None,
                                      anesthetic="lidocaine"))
    ep = apply_outcome(ep, report("medial_branch_block", relief_percent=85))
    assert [b.relief_percent for b in ep.medial_branch_blocks or []] == [None, 85]
    assert not ep.completed_steps


def test_facet_injection_second_one_is_the_repeat() -> None:
    ep = apply_outcome(bare(), report("facet_injection", technically_adequate=False))
    assert not ep.completed_steps
    ep = apply_outcome(ep, report("facet_injection", relief_percent=30, technically_adequate=True))
    assert ep.completed_steps == ["diagnostic.repeat_facet_injection"]
    assert len(ep.facet_injections or []) == 2


def test_rfa_first_is_completed_repeat_is_not() -> None:
    ep = apply_outcome(bare(), report("rfa", relief_percent=80))
    assert ep.completed_steps == ["ablation.rfa"]
    ep = apply_outcome(ep, report("rfa_follow_up", relief_duration_months=12))
    assert ep.rfa_history is not None and ep.rfa_history[0].relief_duration_months == 12
    ep = apply_outcome(ep, report("rfa", step="ablation.repeat_rfa", relief_percent=70))
    assert ep.completed_steps == ["ablation.rfa"]
    assert len(ep.rfa_history or []) == 2


def test_rfa_follow_up_without_rfa_appends_one() -> None:
    ep = apply_outcome(bare(), report("rfa_follow_up", relief_percent=60))
    assert ep.rfa_history is not None and ep.rfa_history[0].relief_percent == 60


def test_pain_recurred_sets_pain_and_closes_the_rfa_duration() -> None:
    ep = apply_outcome(bare(rfa_history=[{"relief_percent": 80}]),
                       report("pain_recurred", pain_nrs=7, after_months=11))
    assert ep.pain_nrs == 7
    assert ep.rfa_history is not None and ep.rfa_history[0].relief_duration_months == 11
    # an already recorded duration is kept
    ep2 = apply_outcome(ep, report("pain_recurred", after_months=3))
    assert ep2.rfa_history is not None and ep2.rfa_history[0].relief_duration_months == 11


def test_pain_score() -> None:
    assert apply_outcome(bare(), report("pain_score", pain_nrs=3)).pain_nrs == 3


def test_scs_trial_sets_result_and_completes_the_step() -> None:
    ep = apply_outcome(bare(), report("scs_trial", relief_percent=60))
    assert ep.scs_trial is not None and ep.scs_trial.relief_percent == 60
    assert ep.completed_steps == ["neuromodulation.scs_trial"]


def test_imaging_adds_modality_and_merges_findings() -> None:
    ep = bare(imaging_done=["xray"], imaging_findings=["normal"])
    ep = apply_outcome(ep, report("imaging", modality="mri",
                                  findings=["disc_herniation", "facet_arthropathy"]))
    assert ep.imaging_done == ["xray", "mri"]
    assert ep.imaging_findings == ["disc_herniation", "facet_arthropathy"]
    assert ep.completed_steps == ["imaging.mri"]
    ep = apply_outcome(ep, report("imaging", modality="spect", findings=["normal"]))
    assert ep.imaging_findings == ["disc_herniation", "facet_arthropathy"]
    ep2 = apply_outcome(bare(), report("imaging", modality="ct", findings=["normal"]))
    assert ep2.imaging_findings == ["normal"]


def test_physical_therapy_weeks_add_up() -> None:
    ep = apply_outcome(bare(), report("physical_therapy", weeks=4))
    ep = apply_outcome(ep, report("physical_therapy", weeks=2.5))
    assert ep.physical_therapy_weeks == 6.5


def test_screening_and_psychological_evaluation() -> None:
    ep = apply_outcome(bare(phq9=5, gad7=4), report("screening", phq9=14))
    assert (ep.phq9, ep.gad7) == (14, 4)
    ep = apply_outcome(ep, report("psychological_evaluation", gad7=12))
    assert ep.psychological_evaluation_done is True and ep.gad7 == 12
    assert ep.completed_steps == ["psychology.assessment"]


def test_step_completed_generic_and_side_effects() -> None:
    ep = apply_outcome(bare(), report("step_completed", step="rehab.pain_education"))
    assert ep.completed_steps == ["rehab.pain_education"]
    ep = apply_outcome(ep, report("step_completed", step="psychology.assessment"))
    assert ep.psychological_evaluation_done is True
    ep = apply_outcome(ep, report("step_completed", step="imaging.ct"))
    assert ep.imaging_done == ["ct"]
    again = apply_outcome(ep, report("step_completed", step="rehab.pain_education"))
    assert again.completed_steps == ep.completed_steps


def test_clinical_review_clears_red_flags() -> None:
    ep = bare(red_flags=["fever"], bowel_bladder_dysfunction=True)
    ep = apply_outcome(ep, report("clinical_review", red_flags=[], bowel_bladder_dysfunction=False))
    assert ep.red_flags == [] and ep.bowel_bladder_dysfunction is False


def test_outcome_for_another_episode_is_refused() -> None:
    with pytest.raises(ValueError, match="other"):
        apply_outcome(episode(episode_id="ep-test"),
                      parse_outcome({"episode_id": "other", "kind": "pain_score", "pain_nrs": 2}))


def test_outcome_steps() -> None:
    assert outcome_steps(report("medial_branch_block", relief_percent=80)) == (
        "diagnostic.medial_branch_block",)
    assert outcome_steps(report("imaging", modality="mri")) == ("imaging.mri",)
    assert outcome_steps(report("step_completed", step="rehab.pain_education")) == (
        "rehab.pain_education",)
    assert outcome_steps(report("pain_score", pain_nrs=4)) == ()


# --- parsing ---------------------------------------------------------------------------


def test_reports_parse_from_json_and_dict_with_timestamps() -> None:
    data = {"episode_id": "e", "kind": "rfa", "relief_percent": 80,
            "reported_at": "2026-11-01T10:00:00Z", "step": "ablation.rfa"}
    import orjson

    a = parse_outcome(data)
    b = parse_outcome(orjson.dumps(data))
    assert a == b
    assert a.reported_at is not None and a.reported_at.year == 2026
    assert OUTCOME_ADAPTER.validate_python(OUTCOME_ADAPTER.dump_python(a, mode="json")) == a


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"kind": "medial_branch_block", "relief_percent": "80"},
         "medial_branch_block.relief_percent"),
        ({"kind": "scs_trial", "relief_percent": 101}, "scs_trial.relief_percent"),
        ({"kind": "imaging", "modality": "pet"}, "imaging.modality"),
        ({"kind": "imaging", "modality": "mri", "findings": ["bad"]}, "imaging.findings[0]"),
        ({"kind": "step_completed"}, "step_completed.step"),
        ({"kind": "step_completed", "step": "ablation.laser"}, "step_completed.step"),
        ({"kind": "physical_therapy", "weeks": 2, "extra": 1}, "physical_therapy.extra"),
        ({"kind": "teleport"}, "(root)"),
    ],
)
def test_bad_reports_are_refused_naming_the_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_outcome({"episode_id": "e", **data})
    assert field in [e["field"] for e in validation_errors(info.value)]


def test_report_needs_an_episode_id() -> None:
    with pytest.raises(ValidationError):
        parse_outcome({"kind": "pain_score", "pain_nrs": 3})
