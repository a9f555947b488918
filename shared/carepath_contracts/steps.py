"""The pathway's step-code vocabulary, the teams, and the team each step is routed to.

Exactly the codes of the episode contract (``/work/shared/clinical/episode-contract.md``),
in the contract's order. That order is also the fixed order in which the pathway lists its
recommendations (after urgent ones).
"""

from __future__ import annotations

from enum import StrEnum
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


class Team(StrEnum):
    """Teams a referral can be routed to. Coordination steps go to the care coordinator.

    The teams of the contract, plus ``care_coordinator``. A ``StrEnum`` (its members are their
    plain string values on the wire) because the referrals domain names and iterates the teams;
    see :mod:`carepath_contracts.referral_status` for the reasoning.
    """

    RADIOLOGY = "radiology"
    INTERVENTIONAL_PAIN = "interventional_pain"
    PHYSICAL_THERAPY = "physical_therapy"
    PSYCHOLOGY = "psychology"
    SURGERY = "surgery"
    NEUROMODULATION = "neuromodulation"
    CARE_COORDINATOR = "care_coordinator"


STEPS: Final[tuple[Step, ...]] = get_args(Step)
"""Every step code, in the contract's order."""

TEAMS: Final[tuple[Team, ...]] = (
    Team.RADIOLOGY,
    Team.INTERVENTIONAL_PAIN,
    Team.PHYSICAL_THERAPY,
    Team.PSYCHOLOGY,
    Team.SURGERY,
    Team.NEUROMODULATION,
)
"""The clinical teams of the contract (coordination steps go to the care coordinator)."""

CARE_COORDINATOR: Final = Team.CARE_COORDINATOR

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
    "imaging.mri": Team.RADIOLOGY,
    "imaging.ct": Team.RADIOLOGY,
    "imaging.spect": Team.RADIOLOGY,
    "diagnostic.medial_branch_block": Team.INTERVENTIONAL_PAIN,
    "diagnostic.repeat_facet_injection": Team.INTERVENTIONAL_PAIN,
    "injection.si_joint": Team.INTERVENTIONAL_PAIN,
    "injection.epidural_steroid": Team.INTERVENTIONAL_PAIN,
    "injection.trigger_point": Team.INTERVENTIONAL_PAIN,
    "ablation.rfa": Team.INTERVENTIONAL_PAIN,
    "ablation.repeat_rfa": Team.INTERVENTIONAL_PAIN,
    "neuromodulation.scs_evaluation": Team.NEUROMODULATION,
    "neuromodulation.scs_trial": Team.NEUROMODULATION,
    "neuromodulation.scs_implant": Team.NEUROMODULATION,
    "surgery.consultation": Team.SURGERY,
    "surgery.urgent_referral": Team.SURGERY,
    "rehab.physical_therapy": Team.PHYSICAL_THERAPY,
    "rehab.pain_education": Team.PHYSICAL_THERAPY,
    "psychology.assessment": Team.PSYCHOLOGY,
    "psychology.cbt": Team.PSYCHOLOGY,
    "coordination.second_opinion": Team.CARE_COORDINATOR,
    "coordination.pain_diary": Team.CARE_COORDINATOR,
}
"""The team each step is routed to (coordination steps: the care coordinator).

The one step-to-team table: the pathway names the team of each recommendation from it, and
the referrals service's default routing table routes each step to it."""

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
