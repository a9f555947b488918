"""FHIR R4 Bundle -> episode: what is read, what is reported, and that nothing is lost."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fhir_builders import (
    SUBJECT,
    bundle,
    cc,
    condition,
    lumbar_condition,
    observation,
    percent,
    procedure,
    sample_bundle,
)

from carepath_contracts import fhir_codes as C
from carepath_intake.fhir import InvalidBundle, map_bundle


def reported(mapping: Any) -> dict[str, str]:
    """path -> reason of every unmapped item."""
    return {u.path: u.reason for u in mapping.unmapped}


def episode_of(*resources: dict[str, Any]) -> dict[str, Any]:
    m = map_bundle(bundle(*resources))
    assert m.episode is not None, m.errors
    out: dict[str, Any] = m.episode.model_dump(exclude_none=True)
    return out


def test_the_sample_bundle_becomes_the_expected_episode() -> None:
    m = map_bundle(sample_bundle())
    assert m.episode is not None
    assert m.episode.model_dump(exclude_none=True) == {
        "episode_id": "ep-fhir-example-0001",
        "region": "lumbar",
        "pain_nrs": 7,
        "facet_injections": [{"levels": ["L4-L5", "L5-S1"], "relief_percent": 20,
                              "technically_adequate": True}],
        "medial_branch_blocks": [{"relief_percent": 85, "anesthetic": "lidocaine"}],
        "imaging_done": ["xray", "mri"],
        "imaging_findings": ["facet_arthropathy"],
        "radicular_pain": False,
        "neurological_deficit": "none",
        "bowel_bladder_dysfunction": False,
        "red_flags": [],
        "phq9": 4,
        "gad7": 3,
    }
    assert [(u.resource, u.path) for u in m.unmapped] == [
        ("Patient (entry[0])", "Bundle.entry[0].resource"),
        ("Observation/obs-bmi", "Bundle.entry[17].resource.code"),
        ("Bundle", "Bundle.entry.resource.subject"),
    ]


def test_no_patient_data_reaches_the_episode() -> None:
    data = sample_bundle()
    patient = data["entry"][0]["resource"]
    patient.update({"id": "MRN-0042", "name": [{"family": "Doe", "given": ["Jane"]}],
                    "birthDate": "1961-02-03", "gender": "female"})
    for entry in data["entry"][1:]:
        if "subject" in entry["resource"]:
            entry["resource"]["subject"] = {"reference": "Patient/MRN-0042", "display": "Jane Doe"}
    m = map_bundle(data)
    assert m.episode is not None
    text = m.episode.model_dump_json()
    for identifying in ("MRN-0042", "Doe", "Jane", "1961", "female"):
        assert identifying not in text
    # The report names the Patient without echoing its id.
    assert all("MRN-0042" not in u.resource for u in m.unmapped)


def test_every_kind_of_unmappable_input_is_reported_with_its_path() -> None:
    resources = [
        lumbar_condition(),
        procedure("mbb-planned", "medial-branch-block", status="preparation"),
        procedure("unknown-proc", "kyphoplasty"),
        observation("orphan-relief", C.OBSERVATION, "relief-percent", **percent(50)),
        observation("prelim-phq9", C.LOINC, "44261-6", status="preliminary", valueInteger=9),
        observation("phq9-too-high", C.LOINC, "44261-6", valueInteger=30),
        observation("pain-text", C.LOINC, "72514-3", valueString="quite bad"),
        observation("weight", C.LOINC, "29463-7", valueQuantity={"value": 80, "unit": "kg"}),
        {"resourceType": "Encounter", "id": "enc", "status": "finished",
         "class": {"code": "AMB"}},
        {"resourceType": "Observation", "id": "modified", "status": "final",
         "code": cc(C.LOINC, "70274-6"), "valueInteger": 5,
         "modifierExtension": [{"url": "https://example.org/negated", "valueBoolean": True}]},
        observation("gad7-with-note", C.LOINC, "70274-6", valueInteger=6,
                    note=[{"text": "free text"}]),
        {"resourceType": "DiagnosticReport", "id": "lab", "status": "final",
         "code": cc(C.LOINC, "2345-7")},
    ]
    m = map_bundle(bundle(*resources))
    assert m.episode is not None
    got = reported(m)
    assert got["Bundle.entry[1].resource.status"].startswith("status preparation")
    assert "not mapped" in got["Bundle.entry[2].resource.code"]
    assert "Observation.partOf" in got["Bundle.entry[3].resource.partOf"]
    assert got["Bundle.entry[4].resource.status"].startswith("status preliminary")
    assert "less than or equal to 27" in got["Bundle.entry[5].resource.valueInteger"]
    assert "not a number" in got["Bundle.entry[6].resource.valueString"]
    assert "not mapped" in got["Bundle.entry[7].resource.code"]
    assert "Encounter is not mapped" in got["Bundle.entry[8].resource"]
    assert "modifier extension" in got["Bundle.entry[9].resource.modifierExtension"]
    assert got["Bundle.entry[10].resource.note"] == "element is not mapped to the episode"
    assert "not an imaging report" in got["Bundle.entry[11].resource.code"]
    episode = m.episode.model_dump(exclude_none=True)
    # What was refused stays unknown; what was fine is kept (the GAD-7 with a note).
    assert "phq9" not in episode and "pain_nrs" not in episode
    assert "medial_branch_blocks" not in episode
    assert episode["gad7"] == 6


def test_every_entry_is_either_mapped_or_reported() -> None:
    """No entry of the sample Bundle vanishes: each one shaped the episode or was reported."""
    data = sample_bundle()
    m = map_bundle(data)
    assert m.episode is not None
    reported_entries = {u.path.split(".resource")[0] for u in m.unmapped}
    for i, entry in enumerate(data["entry"]):
        without = {**data, "entry": [e for j, e in enumerate(data["entry"]) if j != i]}
        smaller = map_bundle(without)
        changed = smaller.episode != m.episode
        # The MRI study repeats what its report already says (imaging_done is a set).
        duplicate = entry["resource"]["id"] == "mri-lumbar"
        assert changed or duplicate or f"Bundle.entry[{i}]" in reported_entries, i


def test_the_latest_observation_wins_and_the_others_are_reported() -> None:
    m = map_bundle(bundle(
        lumbar_condition(),
        observation("pain-new", C.LOINC, "72514-3", when="2025-03-02", valueInteger=4),
        observation("pain-old", C.LOINC, "72514-3", when="2025-01-10", valueInteger=8),
        observation("phq-a", C.LOINC, "44261-6", valueInteger=10),
        observation("phq-b", C.OBSERVATION, "phq9", valueInteger=12),
    ))
    assert m.episode is not None
    assert m.episode.pain_nrs == 4
    assert m.episode.phq9 == 12  # undated: the last in the Bundle
    got = reported(m)
    assert "superseded" in got["Bundle.entry[2].resource.valueInteger"]
    assert "superseded" in got["Bundle.entry[3].resource.valueInteger"]


def test_procedures_are_oldest_first_with_their_linked_outcomes() -> None:
    ep = episode_of(
        lumbar_condition(),
        procedure("rfa-2", "rfa", when="2024-10-01"),
        procedure("rfa-1", "rfa", when="2023-05-01"),
        observation("r2", C.OBSERVATION, "relief-percent", part_of="Procedure/rfa-2",
                    **percent(60)),
        observation("r1", C.OBSERVATION, "relief-percent",
                    part_of="urn:uuid:00000000-0000-0000-0000-000000000002", **percent(80)),
        observation("r1-dur", C.OBSERVATION, "relief-duration", part_of="Procedure/rfa-1",
                    valueQuantity={"value": 9, "unit": "months", "system": C.UCUM,
                                   "code": "mo"}),
    )
    assert ep["rfa_history"] == [
        {"relief_percent": 80, "relief_duration_months": 9.0},
        {"relief_percent": 60},
    ]


def test_durations_are_converted_to_the_episode_unit() -> None:
    ep = episode_of(
        lumbar_condition(),
        procedure("fi", "facet-injection", bodySite=[cc(C.SNOMED, "x", "L3-L4")]),
        observation("fi-dur", C.OBSERVATION, "relief-duration", part_of="Procedure/fi",
                    valueQuantity={"value": 14, "system": C.UCUM, "code": "d"}),
        observation("pt", C.OBSERVATION, "physical-therapy",
                    valueQuantity={"value": 2, "system": C.UCUM, "code": "mo"}),
        observation("dur", C.OBSERVATION, "symptom-duration",
                    valueQuantity={"value": 1.5, "system": C.UCUM, "code": "a"}),
    )
    assert ep["facet_injections"] == [{"levels": ["L3-L4"], "relief_duration_weeks": 2.0}]
    assert ep["physical_therapy_weeks"] == pytest.approx(8.7, abs=0.01)
    assert ep["symptom_duration_months"] == 18.0


def test_outcomes_the_episode_does_not_record_for_a_procedure_are_reported() -> None:
    m = map_bundle(bundle(
        lumbar_condition(),
        procedure("mbb", "medial-branch-block", usedCode=[cc(C.SNOMED, "387150008")],
                  bodySite=[{"text": "L4"}]),
        observation("mbb-dur", C.OBSERVATION, "relief-duration", part_of="Procedure/mbb",
                    valueQuantity={"value": 6, "system": C.UCUM, "code": "h"}),
        observation("mbb-pct", C.OBSERVATION, "relief-percent", part_of="Procedure/mbb",
                    valueQuantity={"value": 75, "unit": "mm"}),
    ))
    assert m.episode is not None
    assert m.episode.model_dump(exclude_none=True)["medial_branch_blocks"] == [
        {"anesthetic": "bupivacaine"}]
    got = reported(m)
    assert "levels are part of the episode for facet injections only" in \
        got["Bundle.entry[1].resource.bodySite"]
    assert "not an outcome the episode records" in got["Bundle.entry[2].resource.valueQuantity"]
    assert "not a percentage" in got["Bundle.entry[3].resource.valueQuantity"]


def test_red_flags_come_from_active_conditions() -> None:
    m = map_bundle(bundle(
        lumbar_condition(),
        condition("fever", code=cc(C.SNOMED, "386661006")),
        condition("trauma", code=cc(C.RED_FLAG, "trauma"),
                  clinicalStatus=cc(C.CONDITION_CLINICAL, "resolved")),
        observation("none", C.OBSERVATION, "red-flags-present", valueBoolean=False),
    ))
    assert m.episode is not None
    assert m.episode.red_flags == ["fever"]
    got = reported(m)
    assert "not a current red flag" in got["Bundle.entry[2].resource.clinicalStatus"]
    assert "contradicted" in got["Bundle.entry[3].resource.valueBoolean"]


def test_no_red_flags_is_said_explicitly() -> None:
    assert episode_of(lumbar_condition())["region"] == "lumbar"
    assert "red_flags" not in episode_of(lumbar_condition())  # unknown, not "none"
    ep = episode_of(lumbar_condition(),
                    observation("none", C.OBSERVATION, "red-flags-present", valueBoolean=False))
    assert ep["red_flags"] == []


def test_region_from_body_site_and_conflicts() -> None:
    neck = condition("neck", code=cc(C.SNOMED, "202708005"),
                     bodySite=[cc(C.SNOMED, "122494005")])
    m = map_bundle(bundle(neck, lumbar_condition("lbp")))
    assert m.episode is not None
    assert m.episode.region == "cervical"
    got = reported(m)
    assert "not part of the episode" in got["Bundle.entry[0].resource.code"]
    assert "conflicts with region cervical" in got["Bundle.entry[1].resource.code"]


def test_imaging_from_studies_and_reports() -> None:
    ep = episode_of(
        lumbar_condition(),
        {"resourceType": "ImagingStudy", "id": "ct", "status": "available", "subject": SUBJECT,
         "series": [{"uid": "1.2.3", "modality": {"system": C.DICOM, "code": "CT"}}]},
        {"resourceType": "DiagnosticReport", "id": "spect", "status": "final",
         "code": cc(C.DICOM, "NM"),
         "conclusionCode": [cc(C.IMAGING_FINDING, "spect_active_facet"),
                            cc(C.SNOMED, "76107001")]},
    )
    assert ep["imaging_done"] == ["ct", "spect"]
    assert ep["imaging_findings"] == ["spect_active_facet", "spinal_stenosis"]


def test_every_episode_field_observation_maps() -> None:
    ep = episode_of(
        lumbar_condition(),
        observation("a", C.OBSERVATION, "pain-catastrophizing", valueInteger=31),
        observation("b", C.OBSERVATION, "radicular-pain", valueBoolean=True),
        observation("c", C.OBSERVATION, "neurological-deficit", valueString="Stable"),
        observation("d", C.OBSERVATION, "si-provocation-positive", valueInteger=3),
        observation("e", C.OBSERVATION, "trigger-points", valueBoolean=False),
        observation("f", C.OBSERVATION, "neuropathic-features", valueBoolean=True),
        observation("g", C.OBSERVATION, "prior-spine-surgery", valueBoolean=False),
        observation("h", C.OBSERVATION, "psychological-evaluation-done", valueBoolean=True),
        observation("i", C.OBSERVATION, "bowel-bladder-dysfunction", valueBoolean=False),
        procedure("scs", "scs-trial"),
        observation("j", C.OBSERVATION, "relief-percent", part_of="Procedure/scs",
                    valueInteger=55),
    )
    assert ep == {
        "episode_id": "ep-test", "region": "lumbar", "pain_catastrophizing": 31,
        "radicular_pain": True, "neurological_deficit": "stable", "si_provocation_positive": 3,
        "trigger_points": False, "neuropathic_features": True, "prior_spine_surgery": False,
        "psychological_evaluation_done": True, "bowel_bladder_dysfunction": False,
        "scs_trial": {"relief_percent": 55},
    }


def test_a_bundle_without_a_region_cannot_become_an_episode() -> None:
    m = map_bundle(bundle(observation("p", C.LOINC, "72514-3", valueInteger=5)))
    assert m.episode is None
    assert m.errors[0]["field"] == "region"


def test_without_an_identifier_the_episode_id_is_left_to_intake() -> None:
    m = map_bundle(bundle(lumbar_condition(), identifier=None))
    assert m.episode is not None and m.episode.episode_id is None


def test_invalid_fhir_is_refused_naming_the_path() -> None:
    bad = bundle(lumbar_condition(), {"resourceType": "Observation", "id": "x",
                                      "code": cc(C.LOINC, "72514-3"), "valueInteger": 3})
    with pytest.raises(InvalidBundle) as exc:
        map_bundle(bad)  # Observation.status is required
    assert any("status" in e["field"] for e in exc.value.errors)
    with pytest.raises(InvalidBundle):
        map_bundle({"resourceType": "Patient"})
    with pytest.raises(InvalidBundle):
        map_bundle(json.loads('{"resourceType": "Bundle", "type": "not-a-type"}') | {
            "entry": "nope"})
