"""The Episode model: exactly the contract's shape, strict, errors naming the field."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from carepath_contracts.episode import Episode, parse_episode, validation_errors
from carepath_contracts.steps import STEP_TEAM, STEPS, TEAMS

FULL: dict[str, Any] = {
    "episode_id": "ep-1",
    "region": "cervical",
    "age": 61,
    "sex": "other",
    "pain_nrs": 7,
    "symptom_duration_months": 14.5,
    "facet_injections": [
        {"levels": ["C5-C6"], "relief_percent": 10, "relief_duration_weeks": 1.5,
         "technically_adequate": False}
    ],
    "medial_branch_blocks": [{"relief_percent": 80, "anesthetic": "bupivacaine"}],
    "rfa_history": [{"relief_percent": 75, "relief_duration_months": 9}],
    "imaging_done": ["xray", "mri", "ct", "spect"],
    "imaging_findings": ["facet_arthropathy", "spect_active_facet"],
    "radicular_pain": True,
    "neurological_deficit": "stable",
    "bowel_bladder_dysfunction": False,
    "red_flags": ["fever", "weight_loss", "cancer_history", "trauma", "immunosuppression"],
    "si_provocation_positive": 0,
    "trigger_points": True,
    "neuropathic_features": False,
    "phq9": 27,
    "gad7": 21,
    "pain_catastrophizing": 52,
    "prior_spine_surgery": True,
    "scs_trial": {"relief_percent": 55},
    "physical_therapy_weeks": 6,
    "psychological_evaluation_done": True,
    "completed_steps": list(STEPS),
}


def errors_of(data: Any) -> list[dict[str, str]]:
    with pytest.raises(ValidationError) as info:
        parse_episode(data)
    return validation_errors(info.value)


def fields_of(data: Any) -> list[str]:
    return [e["field"] for e in errors_of(data)]


def test_full_episode_is_accepted_from_dict_and_json() -> None:
    import orjson

    a = parse_episode(FULL)
    b = parse_episode(orjson.dumps(FULL))
    c = parse_episode(orjson.dumps(FULL).decode())
    assert a == b == c
    assert a.region == "cervical" and a.symptom_duration_months == 14.5


def test_only_region_is_required_and_absent_means_unknown() -> None:
    ep = parse_episode({"region": "lumbar"})
    assert ep.region == "lumbar"
    assert ep.medial_branch_blocks is None and ep.radicular_pain is None


def test_list_item_fields_are_optional() -> None:
    ep = parse_episode({"region": "lumbar", "medial_branch_blocks": [{}], "rfa_history": [{}],
                        "facet_injections": [{}], "scs_trial": {}})
    assert ep.medial_branch_blocks is not None
    assert ep.medial_branch_blocks[0].relief_percent is None


def test_null_means_unknown_too() -> None:
    assert parse_episode({"region": "lumbar", "phq9": None}).phq9 is None


def test_missing_region_is_refused_naming_it() -> None:
    errs = errors_of({"age": 40})
    assert errs == [{"field": "region", "reason": "required field is missing"}]


def test_region_null_is_refused() -> None:
    assert fields_of({"region": None}) == ["region"]


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"age": "5"}, "age"),
        ({"age": 5.5}, "age"),
        ({"age": 5.0}, "age"),
        ({"age": True}, "age"),
        ({"pain_nrs": "7"}, "pain_nrs"),
        ({"phq9": "10"}, "phq9"),
        ({"radicular_pain": 1}, "radicular_pain"),
        ({"radicular_pain": "yes"}, "radicular_pain"),
        ({"trigger_points": "true"}, "trigger_points"),
        ({"symptom_duration_months": "12"}, "symptom_duration_months"),
        ({"symptom_duration_months": True}, "symptom_duration_months"),
        ({"physical_therapy_weeks": [6]}, "physical_therapy_weeks"),
        ({"episode_id": 12}, "episode_id"),
        ({"imaging_done": "mri"}, "imaging_done"),
        ({"medial_branch_blocks": {"relief_percent": 80}}, "medial_branch_blocks"),
        ({"medial_branch_blocks": [{"relief_percent": "80"}]},
         "medial_branch_blocks[0].relief_percent"),
        ({"facet_injections": [{}, {"technically_adequate": 0}]},
         "facet_injections[1].technically_adequate"),
        ({"facet_injections": [{"levels": "L4-L5"}]}, "facet_injections[0].levels"),
        ({"scs_trial": {"relief_percent": 50.5}}, "scs_trial.relief_percent"),
    ],
)
def test_wrong_types_are_refused_never_coerced(patch: dict[str, Any], field: str) -> None:
    assert fields_of({"region": "lumbar", **patch}) == [field]


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"age": -1}, "age"),
        ({"pain_nrs": 11}, "pain_nrs"),
        ({"pain_nrs": -1}, "pain_nrs"),
        ({"phq9": 28}, "phq9"),
        ({"gad7": 22}, "gad7"),
        ({"pain_catastrophizing": 53}, "pain_catastrophizing"),
        ({"si_provocation_positive": 6}, "si_provocation_positive"),
        ({"symptom_duration_months": -0.5}, "symptom_duration_months"),
        ({"physical_therapy_weeks": -1}, "physical_therapy_weeks"),
        ({"medial_branch_blocks": [{"relief_percent": 101}]},
         "medial_branch_blocks[0].relief_percent"),
        ({"rfa_history": [{"relief_percent": 50, "relief_duration_months": -1}]},
         "rfa_history[0].relief_duration_months"),
        ({"facet_injections": [{"relief_percent": -5}]}, "facet_injections[0].relief_percent"),
        ({"scs_trial": {"relief_percent": 120}}, "scs_trial.relief_percent"),
    ],
)
def test_out_of_range_is_refused(patch: dict[str, Any], field: str) -> None:
    assert fields_of({"region": "lumbar", **patch}) == [field]


def test_non_finite_numbers_are_refused() -> None:
    assert fields_of({"region": "lumbar", "symptom_duration_months": float("inf")}) == [
        "symptom_duration_months"
    ]


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"region": "thoracic"}, "region"),
        ({"sex": "f"}, "sex"),
        ({"neurological_deficit": "worsening"}, "neurological_deficit"),
        ({"imaging_done": ["mri", "pet"]}, "imaging_done[1]"),
        ({"imaging_findings": ["herniation"]}, "imaging_findings[0]"),
        ({"red_flags": ["night_pain"]}, "red_flags[0]"),
        ({"medial_branch_blocks": [{"anesthetic": "ropivacaine"}]},
         "medial_branch_blocks[0].anesthetic"),
        ({"completed_steps": ["ablation.rfa", "ablation.cryo"]}, "completed_steps[1]"),
    ],
)
def test_unknown_enum_words_are_refused(patch: dict[str, Any], field: str) -> None:
    errs = errors_of({"region": "lumbar", **patch})
    assert [e["field"] for e in errs] == [field]
    assert "Input should be" in errs[0]["reason"]


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"bmi": 30}, "bmi"),
        ({"medial_branch_blocks": [{"relief": 80}]}, "medial_branch_blocks[0].relief"),
        ({"scs_trial": {"relief_percent": 60, "days": 7}}, "scs_trial.days"),
    ],
)
def test_unknown_fields_are_refused(patch: dict[str, Any], field: str) -> None:
    errs = errors_of({"region": "lumbar", **patch})
    assert errs == [{"field": field, "reason": "unknown field (not part of the episode contract)"}]


def test_numbers_accept_int_and_float() -> None:
    ep = parse_episode({"region": "lumbar", "symptom_duration_months": 6,
                        "physical_therapy_weeks": 4.5})
    assert ep.symptom_duration_months == 6 and ep.physical_therapy_weeks == 4.5


def test_several_errors_are_all_reported_with_reasons() -> None:
    errs = errors_of({"region": "x", "age": "5", "phq9": 99})
    assert [e["field"] for e in errs] == ["region", "age", "phq9"]
    assert all(e["reason"] for e in errs)
    assert "'5'" in errs[1]["reason"]


def test_invalid_json_text_is_refused() -> None:
    errs = errors_of(b"{not json")
    assert errs[0]["field"] == "(root)"


def test_episode_is_immutable() -> None:
    ep = parse_episode({"region": "lumbar"})
    with pytest.raises(ValidationError):
        ep.region = "cervical"


def test_dump_and_reload_round_trips() -> None:
    ep = parse_episode(FULL)
    again = Episode.model_validate(ep.model_dump(mode="json", exclude_none=True))
    assert again == ep
    assert Episode.model_validate_json(ep.model_dump_json()) == ep


def test_step_vocabulary_is_exactly_the_contract() -> None:
    assert len(STEPS) == 21 and len(set(STEPS)) == 21
    assert set(STEP_TEAM) == set(STEPS)
    assert set(STEP_TEAM.values()) == {*TEAMS, "care_coordinator"}
    assert STEP_TEAM["coordination.pain_diary"] == "care_coordinator"
    assert STEP_TEAM["surgery.urgent_referral"] == "surgery"
    assert STEP_TEAM["rehab.pain_education"] == "physical_therapy"
