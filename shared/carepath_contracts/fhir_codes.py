"""The codes Carepath reads from and writes to FHIR R4: systems, vocabularies and value sets.

Well-known terminologies are used where their codes are well established (SNOMED CT, LOINC,
DICOM modalities, UCUM units). Everything else uses a Carepath CodeSystem under
``https://carepath.example/fhir/CodeSystem/``; docs/fhir.md lists every code.
"""

from __future__ import annotations

from typing import Final

Coding = tuple[str, str]
"""(system, code)."""

SNOMED: Final = "http://snomed.info/sct"
LOINC: Final = "http://loinc.org"
UCUM: Final = "http://unitsofmeasure.org"
DICOM: Final = "http://dicom.nema.org/resources/ontology/DCM"
TASK_CODE: Final = "http://hl7.org/fhir/CodeSystem/task-code"
CONDITION_CLINICAL: Final = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION: Final = "http://terminology.hl7.org/CodeSystem/condition-ver-status"

CAREPATH: Final = "https://carepath.example/fhir"
_CS = f"{CAREPATH}/CodeSystem"
PROCEDURE: Final = f"{_CS}/procedure"
OBSERVATION: Final = f"{_CS}/observation"
REGION: Final = f"{_CS}/region"
IMAGING_MODALITY: Final = f"{_CS}/imaging-modality"
IMAGING_FINDING: Final = f"{_CS}/imaging-finding"
RED_FLAG: Final = f"{_CS}/red-flag"
ANESTHETIC: Final = f"{_CS}/anesthetic"
NEUROLOGICAL_DEFICIT: Final = f"{_CS}/neurological-deficit"
STEP: Final = f"{_CS}/step"
TEAM: Final = f"{_CS}/team"
BUSINESS_STATUS: Final = f"{_CS}/referral-business-status"
CARE_PLAN_CATEGORY: Final = f"{_CS}/care-plan-category"
PATHWAY_DEFINITION: Final = f"{CAREPATH}/PlanDefinition/failed-facet-injection"

# Identifier systems (pseudonymous Carepath ids; never a medical record number).
EPISODE_ID: Final = f"{CAREPATH}/sid/episode"
REFERRAL_ID: Final = f"{CAREPATH}/sid/referral"
RECOMMENDATION_ID: Final = f"{CAREPATH}/sid/recommendation"
STAFF_ID: Final = f"{CAREPATH}/sid/staff"

# -- inbound: Condition -> region and red flags ------------------------------------------------

REGION_CODES: Final[dict[Coding, str]] = {
    (REGION, "lumbar"): "lumbar",
    (REGION, "cervical"): "cervical",
    (SNOMED, "122496007"): "lumbar",  # Lumbar spine structure (body structure)
    (SNOMED, "122494005"): "cervical",  # Cervical spine structure (body structure)
    (SNOMED, "279039007"): "lumbar",  # Low back pain (finding)
    (SNOMED, "81680005"): "cervical",  # Neck pain (finding)
}

RED_FLAG_CODES: Final[dict[Coding, str]] = {
    **{(RED_FLAG, c): c for c in
       ("fever", "weight_loss", "cancer_history", "trauma", "immunosuppression")},
    (SNOMED, "386661006"): "fever",  # Fever (finding)
    (SNOMED, "89362005"): "weight_loss",  # Weight loss (finding)
}

# -- inbound: Procedure -> the episode's procedure lists ---------------------------------------

PROCEDURE_CODES: Final[dict[Coding, str]] = {
    (PROCEDURE, "facet-injection"): "facet_injection",
    (PROCEDURE, "medial-branch-block"): "medial_branch_block",
    (PROCEDURE, "rfa"): "rfa",
    (PROCEDURE, "scs-trial"): "scs_trial",
}

ANESTHETIC_CODES: Final[dict[Coding, str]] = {
    (ANESTHETIC, "lidocaine"): "lidocaine",
    (ANESTHETIC, "bupivacaine"): "bupivacaine",
    (SNOMED, "387480006"): "lidocaine",  # Lidocaine (substance)
    (SNOMED, "387150008"): "bupivacaine",  # Bupivacaine (substance)
}

# -- inbound: Observation -> scalar episode fields and procedure outcomes ----------------------

# What an Observation's value must be for each kind of field.
INTEGER, BOOLEAN, MONTHS, WEEKS, PERCENT, DEFICIT, NO_RED_FLAGS = (
    "integer", "boolean", "months", "weeks", "percent", "deficit", "no_red_flags",
)

# Observation code -> (episode field, value kind).
OBSERVATION_FIELDS: Final[dict[Coding, tuple[str, str]]] = {
    (LOINC, "72514-3"): ("pain_nrs", INTEGER),  # Pain severity 0-10 verbal numeric rating
    (LOINC, "44261-6"): ("phq9", INTEGER),  # PHQ-9 total score
    (LOINC, "70274-6"): ("gad7", INTEGER),  # GAD-7 total score
    (OBSERVATION, "pain-nrs"): ("pain_nrs", INTEGER),
    (OBSERVATION, "phq9"): ("phq9", INTEGER),
    (OBSERVATION, "gad7"): ("gad7", INTEGER),
    (OBSERVATION, "pain-catastrophizing"): ("pain_catastrophizing", INTEGER),
    (OBSERVATION, "symptom-duration"): ("symptom_duration_months", MONTHS),
    (OBSERVATION, "radicular-pain"): ("radicular_pain", BOOLEAN),
    (OBSERVATION, "neurological-deficit"): ("neurological_deficit", DEFICIT),
    (OBSERVATION, "bowel-bladder-dysfunction"): ("bowel_bladder_dysfunction", BOOLEAN),
    (OBSERVATION, "red-flags-present"): ("red_flags", NO_RED_FLAGS),
    (OBSERVATION, "si-provocation-positive"): ("si_provocation_positive", INTEGER),
    (OBSERVATION, "trigger-points"): ("trigger_points", BOOLEAN),
    (OBSERVATION, "neuropathic-features"): ("neuropathic_features", BOOLEAN),
    (OBSERVATION, "prior-spine-surgery"): ("prior_spine_surgery", BOOLEAN),
    (OBSERVATION, "physical-therapy"): ("physical_therapy_weeks", WEEKS),
    (OBSERVATION, "psychological-evaluation-done"): ("psychological_evaluation_done", BOOLEAN),
}

# Outcome observations: linked to their Procedure by Observation.partOf (or .focus).
RELIEF_PERCENT: Final = (OBSERVATION, "relief-percent")
RELIEF_DURATION: Final = (OBSERVATION, "relief-duration")
TECHNICALLY_ADEQUATE: Final = (OBSERVATION, "technically-adequate")
OUTCOME_CODES: Final[frozenset[Coding]] = frozenset(
    {RELIEF_PERCENT, RELIEF_DURATION, TECHNICALLY_ADEQUATE}
)

NEUROLOGICAL_DEFICITS: Final[frozenset[str]] = frozenset({"none", "stable", "progressive"})

# -- inbound: imaging ---------------------------------------------------------------------------

MODALITY_CODES: Final[dict[Coding, str]] = {
    **{(IMAGING_MODALITY, c): c for c in ("xray", "mri", "ct", "spect")},
    (DICOM, "MR"): "mri",
    (DICOM, "CT"): "ct",
    (DICOM, "CR"): "xray",
    (DICOM, "DX"): "xray",
    (DICOM, "RG"): "xray",
    (DICOM, "NM"): "spect",  # nuclear medicine: read as the SPECT bone scan
}

FINDING_CODES: Final[dict[Coding, str]] = {
    **{(IMAGING_FINDING, c): c for c in (
        "disc_herniation", "spinal_stenosis", "nerve_root_compression", "facet_arthropathy",
        "spondylolisthesis", "instability", "fracture", "spect_active_facet", "normal",
    )},
    (SNOMED, "76107001"): "spinal_stenosis",  # Spinal stenosis (disorder)
    (SNOMED, "274152003"): "spondylolisthesis",  # Spondylolisthesis (disorder)
}

# Statuses whose resource records something that happened (everything else is reported).
PROCEDURE_DONE: Final[frozenset[str]] = frozenset({"completed"})
OBSERVATION_DONE: Final[frozenset[str]] = frozenset({"final", "amended", "corrected"})
REPORT_DONE: Final[frozenset[str]] = frozenset({"final", "amended", "corrected", "appended"})
IMAGING_STUDY_DONE: Final[frozenset[str]] = frozenset({"available"})
CONDITION_NOT_A_DIAGNOSIS: Final[frozenset[str]] = frozenset({"refuted", "entered-in-error"})
CONDITION_NOT_CURRENT: Final[frozenset[str]] = frozenset({"inactive", "remission", "resolved"})

# -- outbound: value sets -----------------------------------------------------------------------

TASK_STATUSES: Final[frozenset[str]] = frozenset({
    "draft", "requested", "received", "accepted", "rejected", "ready", "cancelled", "on-hold",
    "in-progress", "failed", "completed", "entered-in-error",
})
"""http://hl7.org/fhir/task-status (required binding of Task.status)."""

REQUEST_STATUSES: Final[frozenset[str]] = frozenset({
    "draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown",
})
"""http://hl7.org/fhir/request-status (ServiceRequest.status, CarePlan.status)."""

REQUEST_PRIORITIES: Final[frozenset[str]] = frozenset({"routine", "urgent", "asap", "stat"})

SERVICE_REQUEST_STATUS: Final[dict[str, str]] = {
    "draft": "draft",
    "requested": "active",
    "received": "active",
    "accepted": "active",
    "ready": "active",
    "in-progress": "active",
    "rejected": "active",  # declined by a team: awaits the care coordinator's reroute
    "on-hold": "on-hold",
    "completed": "completed",
    "cancelled": "revoked",
    "failed": "revoked",
    "entered-in-error": "entered-in-error",
}
"""ServiceRequest.status from the referral's (Task) status."""

STEP_DISPLAY: Final[dict[str, str]] = {
    "imaging.mri": "MRI: discs, stenosis, nerve roots",
    "imaging.ct": "CT: bone, fractures, instability, surgical planning",
    "imaging.spect": "SPECT bone scan: which facet joints are active",
    "diagnostic.medial_branch_block": "Diagnostic medial branch block",
    "diagnostic.repeat_facet_injection": "Repeat a technically inadequate facet injection",
    "injection.si_joint": "Sacroiliac joint injection",
    "injection.epidural_steroid": "Epidural steroid injection for radicular pain",
    "injection.trigger_point": "Trigger point injection",
    "ablation.rfa": "Radiofrequency ablation of the medial branches",
    "ablation.repeat_rfa": "Repeat RFA after an effective one wore off",
    "neuromodulation.scs_evaluation": "Evaluate for spinal cord stimulation",
    "neuromodulation.scs_trial": "Spinal cord stimulation trial",
    "neuromodulation.scs_implant": "Permanent spinal cord stimulator",
    "surgery.consultation": "Surgical consultation",
    "surgery.urgent_referral": "Urgent surgical referral (red flags)",
    "rehab.physical_therapy": "Structured physical therapy",
    "rehab.pain_education": "Pain education and self-management",
    "psychology.assessment": "Psychological assessment",
    "psychology.cbt": "Cognitive-behavioural therapy",
    "coordination.second_opinion": "Second opinion",
    "coordination.pain_diary": "Pain diary",
}

TEAM_DISPLAY: Final[dict[str, str]] = {
    "radiology": "Radiology",
    "interventional_pain": "Interventional pain",
    "physical_therapy": "Physical therapy",
    "psychology": "Psychology",
    "surgery": "Surgery",
    "neuromodulation": "Neuromodulation",
    "care_coordinator": "Care coordinator",
}
