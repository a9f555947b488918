"""Properties of the engine over generated episodes (hypothesis)."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from carepath_contracts.episode import Episode
from carepath_contracts.pathway_result import PathwayResult
from carepath_contracts.steps import ELECTIVE_PROCEDURES, STEP_TEAM, STEPS
from carepath_pathway.domain import PROFILES, Profile, evaluate
from carepath_pathway.domain.engine import OUTPUT_ORDER

percent = st.integers(0, 100)
number = st.one_of(st.integers(0, 60), st.floats(0, 60, allow_nan=False, allow_infinity=False))
MODALITIES = ["xray", "mri", "ct", "spect"]
FINDINGS = ["disc_herniation", "spinal_stenosis", "nerve_root_compression", "facet_arthropathy",
            "spondylolisthesis", "instability", "fracture", "spect_active_facet", "normal"]
RED_FLAGS = ["fever", "weight_loss", "cancer_history", "trauma", "immunosuppression"]


def optional_fields(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


facet_injection = optional_fields(
    levels=st.lists(st.sampled_from(["L3-L4", "L4-L5", "L5-S1", "C5-C6"]), max_size=2),
    relief_percent=percent,
    relief_duration_weeks=number,
    technically_adequate=st.booleans(),
)
mbb = optional_fields(relief_percent=percent,
                      anesthetic=st.sampled_from(["lidocaine", "bupivacaine"]))
rfa = optional_fields(relief_percent=percent, relief_duration_months=number)

episode_dicts = st.fixed_dictionaries(
    {"region": st.sampled_from(["lumbar", "cervical"])},
    optional={
        "episode_id": st.text(min_size=1, max_size=8),
        "age": st.integers(18, 90),
        "sex": st.sampled_from(["female", "male", "other"]),
        "pain_nrs": st.integers(0, 10),
        "symptom_duration_months": number,
        "facet_injections": st.lists(facet_injection, max_size=3),
        "medial_branch_blocks": st.lists(mbb, max_size=3),
        "rfa_history": st.lists(rfa, max_size=3),
        "imaging_done": st.lists(st.sampled_from(MODALITIES), max_size=4, unique=True),
        "imaging_findings": st.lists(st.sampled_from(FINDINGS), max_size=4, unique=True),
        "radicular_pain": st.booleans(),
        "neurological_deficit": st.sampled_from(["none", "stable", "progressive"]),
        "bowel_bladder_dysfunction": st.booleans(),
        "red_flags": st.lists(st.sampled_from(RED_FLAGS), max_size=3, unique=True),
        "si_provocation_positive": st.integers(0, 5),
        "trigger_points": st.booleans(),
        "neuropathic_features": st.booleans(),
        "phq9": st.integers(0, 27),
        "gad7": st.integers(0, 21),
        "pain_catastrophizing": st.integers(0, 52),
        "prior_spine_surgery": st.booleans(),
        "scs_trial": optional_fields(relief_percent=percent),
        "physical_therapy_weeks": number,
        "psychological_evaluation_done": st.booleans(),
        "completed_steps": st.lists(st.sampled_from(STEPS), max_size=6, unique=True),
    },
)
episodes = episode_dicts.map(Episode.model_validate)
profiles = st.sampled_from(list(PROFILES.values()))


def has_red_flag(ep: Episode) -> bool:
    return bool(
        ep.bowel_bladder_dysfunction is True
        or ep.neurological_deficit == "progressive"
        or ep.red_flags
    )


def steps(result: PathwayResult) -> list[str]:
    return [r.step for r in result.recommendations]


@settings(max_examples=400, deadline=None)
@given(episodes, profiles)
def test_output_is_well_formed(ep: Episode, profile: Profile) -> None:
    result = evaluate(ep, profile)
    data = result.to_json_dict()
    # validates against the models, survives JSON, has exactly the contract's keys (+ extras)
    again = PathwayResult.model_validate(orjson.loads(orjson.dumps(data)))
    assert again.to_json_dict() == data
    assert set(data) == {"pathway", "pathway_version", "profile", "urgent", "recommendations",
                         "missing_data", "withdrawn"}
    assert data["pathway"] == "failed-facet-injection" and data["profile"] == profile.name
    got = steps(result)
    assert len(got) == len(set(got))  # no duplicate steps
    for r in result.recommendations:
        assert r.step in STEP_TEAM and r.team == STEP_TEAM[r.step]
        assert r.rationale.strip()
        assert r.evidence
        assert all(e.source in ("seed", "guideline", "profile") and e.section for e in r.evidence)
    # deterministic order: urgent first, then the fixed order
    keys = [(r.priority != "urgent", OUTPUT_ORDER[r.step]) for r in result.recommendations]
    assert keys == sorted(keys)
    assert result.urgent == any(r.priority == "urgent" for r in result.recommendations)
    fields = [m.field for m in result.missing_data]
    assert len(fields) == len(set(fields))
    assert evaluate(ep, profile) == result  # deterministic


@settings(max_examples=400, deadline=None)
@given(episodes, profiles)
def test_never_a_completed_step(ep: Episode, profile: Profile) -> None:
    completed = set(ep.completed_steps or ())
    assert not completed & set(steps(evaluate(ep, profile)))


@settings(max_examples=400, deadline=None)
@given(episode_dicts, profiles, st.sampled_from(["bowel_bladder", "progressive", *RED_FLAGS]))
def test_red_flags_always_urgent_referral_and_no_elective_procedure(
    data: dict[str, Any], profile: Profile, flag: str
) -> None:
    if flag == "bowel_bladder":
        data = {**data, "bowel_bladder_dysfunction": True}
    elif flag == "progressive":
        data = {**data, "neurological_deficit": "progressive"}
    else:
        data = {**data, "red_flags": sorted({*data.get("red_flags", []), flag})}
    completed = [s for s in data.get("completed_steps", []) if s != "surgery.urgent_referral"]
    data["completed_steps"] = completed
    result = evaluate(Episode.model_validate(data), profile)
    got = steps(result)
    assert result.urgent is True
    assert got[0] == "surgery.urgent_referral"
    referral = result.recommendations[0]
    assert referral.priority == "urgent" and referral.team == "surgery"
    assert "withheld" in referral.rationale
    assert not set(got) & ELECTIVE_PROCEDURES
    assert "surgery.consultation" not in got


@settings(max_examples=300, deadline=None)
@given(episodes, profiles)
def test_no_urgency_without_a_red_flag(ep: Episode, profile: Profile) -> None:
    if not has_red_flag(ep):
        result = evaluate(ep, profile)
        assert result.urgent is False
        assert "surgery.urgent_referral" not in steps(result)


@settings(max_examples=400, deadline=None)
@given(episodes, profiles, st.data())
def test_more_relief_from_a_block_never_removes_rfa(
    ep: Episode, profile: Profile, data: st.DataObject
) -> None:
    blocks = ep.medial_branch_blocks
    if not blocks:
        return
    i = data.draw(st.integers(0, len(blocks) - 1))
    old = blocks[i].relief_percent or 0
    new = data.draw(st.integers(old, 100))
    if blocks[i].relief_percent is None:
        return  # an unrecorded block is not "less relief"
    more = [*blocks]
    more[i] = blocks[i].model_copy(update={"relief_percent": new})
    before = "ablation.rfa" in steps(evaluate(ep, profile))
    after = "ablation.rfa" in steps(evaluate(ep.model_copy(update={"medial_branch_blocks": more}),
                                             profile))
    assert after or not before


@settings(max_examples=400, deadline=None)
@given(episodes, profiles)
def test_rfa_only_after_a_positive_block(ep: Episode, profile: Profile) -> None:
    if "ablation.rfa" not in steps(evaluate(ep, profile)):
        return
    recorded = [b.relief_percent for b in ep.medial_branch_blocks or ()
                if b.relief_percent is not None]
    tail = recorded[-profile.mbb_blocks_required:]
    assert len(tail) == profile.mbb_blocks_required
    assert all(r >= profile.mbb_relief_percent for r in tail)
    assert not ep.rfa_history
    if ep.radicular_pain is True:  # treated alongside, never instead
        result = evaluate(ep, profile)
        assert "injection.epidural_steroid" in steps(result) or (
            "injection.epidural_steroid" in (ep.completed_steps or ()))


@settings(max_examples=400, deadline=None)
@given(episodes, profiles)
def test_no_implant_without_a_successful_trial(ep: Episode, profile: Profile) -> None:
    got = steps(evaluate(ep, profile))
    if "neuromodulation.scs_implant" in got:
        assert ep.scs_trial is not None and ep.scs_trial.relief_percent is not None
        assert ep.scs_trial.relief_percent >= profile.scs_trial_relief_percent
        assert ep.psychological_evaluation_done is not False or (
            "psychology.assessment" in (ep.completed_steps or ()))
    if "neuromodulation.scs_trial" in got:
        assert ep.psychological_evaluation_done is True or (
            "psychology.assessment" in (ep.completed_steps or ()))


@settings(max_examples=300, deadline=None)
@given(episodes, profiles)
def test_cervical_never_gets_si_joint(ep: Episode, profile: Profile) -> None:
    if ep.region == "cervical":
        result = evaluate(ep, profile)
        assert "injection.si_joint" not in steps(result)
        assert "si_provocation_positive" not in [m.field for m in result.missing_data]


@settings(max_examples=300, deadline=None)
@given(episodes, profiles)
def test_radicular_pain_means_epidural_and_no_new_facet_diagnostics(
    ep: Episode, profile: Profile
) -> None:
    # Radicular symptoms predict a negative facet block: no new facet diagnostics. An RFA
    # already earned by a positive block stays (for the axial pain), alongside the epidural.
    if ep.radicular_pain is True and not has_red_flag(ep):
        got = set(steps(evaluate(ep, profile)))
        assert not got & {"diagnostic.medial_branch_block", "diagnostic.repeat_facet_injection"}
        if "injection.epidural_steroid" not in (ep.completed_steps or ()):
            assert "injection.epidural_steroid" in got


def _resolve(ep: Episode, path: str) -> Any:
    """Value at a missing-data path such as ``rfa_history[0].relief_duration_months``."""
    value: Any = ep
    for part in path.replace("[", ".[").split("."):
        value = value[int(part[1:-1])] if part.startswith("[") else getattr(value, part)
    return value


@settings(max_examples=400, deadline=None)
@given(episodes, profiles)
def test_missing_data_only_names_unknown_fields(ep: Episode, profile: Profile) -> None:
    for m in evaluate(ep, profile).missing_data:
        assert m.why
        assert _resolve(ep, m.field) is None, m.field
