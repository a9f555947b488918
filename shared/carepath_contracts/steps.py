"""The pathway's step-code vocabulary and the team each step is routed to.

Exactly the codes of the episode contract (``/work/shared/clinical/episode-contract.md``),
in the contract's order. That order is also the fixed order in which the pathway lists its
recommendations (after urgent ones).
"""

from __future__ import annotations

from typing import Final, Literal, get_args

Step = Literal[
    "imaging.mri",
    "imaging.ct",
    "imaging.spect",
    "diagnostic.medial_branch_block",
    "diagnostic.repeat_facet_injection",
    "injection.si_joint",
    "injection.epidural_steroid",
    "injection.trigger_point",
    "ablation.rfa",
    "ablation.repeat_rfa",
    "neuromodulation.scs_evaluation",
    "neuromodulation.scs_trial",
    "neuromodulation.scs_implant",
    "surgery.consultation",
    "surgery.urgent_referral",
    "rehab.physical_therapy",
    "rehab.pain_education",
    "psychology.assessment",
    "psychology.cbt",
    "coordination.second_opinion",
    "coordination.pain_diary",
]
"""A step code of the contract."""

Team = Literal[
    "radiology",
    "interventional_pain",
    "physical_therapy",
    "psychology",
    "surgery",
    "neuromodulation",
    "care_coordinator",
]
"""A team of the contract, plus ``care_coordinator`` for the coordination steps."""

STEPS: Final[tuple[Step, ...]] = get_args(Step)
"""Every step code, in the contract's order."""

TEAMS: Final[tuple[Team, ...]] = (
    "radiology",
    "interventional_pain",
    "physical_therapy",
    "psychology",
    "surgery",
    "neuromodulation",
)
"""The clinical teams of the contract (coordination steps go to the care coordinator)."""

CARE_COORDINATOR: Final = "care_coordinator"

# Named constants, so that rules cannot misspell a code (mypy checks them against Step).
IMAGING_MRI: Final = "imaging.mri"
IMAGING_CT: Final = "imaging.ct"
IMAGING_SPECT: Final = "imaging.spect"
MEDIAL_BRANCH_BLOCK: Final = "diagnostic.medial_branch_block"
REPEAT_FACET_INJECTION: Final = "diagnostic.repeat_facet_injection"
SI_JOINT_INJECTION: Final = "injection.si_joint"
EPIDURAL_STEROID: Final = "injection.epidural_steroid"
TRIGGER_POINT_INJECTION: Final = "injection.trigger_point"
RFA: Final = "ablation.rfa"
REPEAT_RFA: Final = "ablation.repeat_rfa"
SCS_EVALUATION: Final = "neuromodulation.scs_evaluation"
SCS_TRIAL: Final = "neuromodulation.scs_trial"
SCS_IMPLANT: Final = "neuromodulation.scs_implant"
SURGICAL_CONSULTATION: Final = "surgery.consultation"
URGENT_SURGICAL_REFERRAL: Final = "surgery.urgent_referral"
PHYSICAL_THERAPY: Final = "rehab.physical_therapy"
PAIN_EDUCATION: Final = "rehab.pain_education"
PSYCHOLOGY_ASSESSMENT: Final = "psychology.assessment"
CBT: Final = "psychology.cbt"
SECOND_OPINION: Final = "coordination.second_opinion"
PAIN_DIARY: Final = "coordination.pain_diary"

STEP_TEAM: Final[dict[Step, Team]] = {
    "imaging.mri": "radiology",
    "imaging.ct": "radiology",
    "imaging.spect": "radiology",
    "diagnostic.medial_branch_block": "interventional_pain",
    "diagnostic.repeat_facet_injection": "interventional_pain",
    "injection.si_joint": "interventional_pain",
    "injection.epidural_steroid": "interventional_pain",
    "injection.trigger_point": "interventional_pain",
    "ablation.rfa": "interventional_pain",
    "ablation.repeat_rfa": "interventional_pain",
    "neuromodulation.scs_evaluation": "neuromodulation",
    "neuromodulation.scs_trial": "neuromodulation",
    "neuromodulation.scs_implant": "neuromodulation",
    "surgery.consultation": "surgery",
    "surgery.urgent_referral": "surgery",
    "rehab.physical_therapy": "physical_therapy",
    "rehab.pain_education": "physical_therapy",
    "psychology.assessment": "psychology",
    "psychology.cbt": "psychology",
    "coordination.second_opinion": "care_coordinator",
    "coordination.pain_diary": "care_coordinator",
}
"""The team each step is routed to (coordination steps: the care coordinator)."""

STEP_ORDER: Final[dict[str, int]] = {step: i for i, step in enumerate(STEPS)}
"""Position of each step in the fixed output order."""

ELECTIVE_PROCEDURES: Final[frozenset[str]] = frozenset(
    {
        MEDIAL_BRANCH_BLOCK,
        REPEAT_FACET_INJECTION,
        SI_JOINT_INJECTION,
        EPIDURAL_STEROID,
        TRIGGER_POINT_INJECTION,
        RFA,
        REPEAT_RFA,
        SCS_EVALUATION,
        SCS_TRIAL,
        SCS_IMPLANT,
    }
)
"""Elective interventional steps, never recommended while red flags are present."""

assert set(STEP_TEAM) == set(STEPS)
