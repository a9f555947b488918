"""Red flags -> urgent surgical referral (clinical-facts B16; section E).

Triggers: ``bowel_bladder_dysfunction`` true, ``neurological_deficit == "progressive"``, or any
entry in ``red_flags`` (fever, weight loss, cancer history, trauma, immunosuppression).
Carepath's default profile maps any of them to ``surgery.urgent_referral`` (urgent). With it:

* urgent ``imaging.mri`` for bowel/bladder dysfunction or a progressive deficit (cauda equina /
  myelopathy: emergency MRI), and for fever, immunosuppression, cancer history or weight loss
  (suspected infection or malignancy: ACR variant 7);
* urgent ``imaging.ct`` for trauma (suspected fracture: ACR variant 6).

Judgement: the urgent MRI is ordered even if an MRI is already in ``imaging_done`` (a new red
flag needs fresh imaging); it is only left out when ``imaging.mri`` is a completed step.

While red flags are present the engine runs no elective rule: no blocks, injections, RFA or
SCS, and no elective surgical consultation, physical therapy or coordination work-up, until a
clinician clears the flags (an outcome of kind ``clinical_review``). Psychology still runs.
Once the urgent referral (and imaging) are completed steps and the flags are still recorded,
nothing elective is recommended either: the flags must be cleared first.

Unknown red-flag fields never make an episode urgent; they are listed in ``missing_data``.
"""

from __future__ import annotations

from typing import Any

import carepath_pathway.domain.evidence as refs
from carepath_contracts.episode import Episode
from carepath_contracts.pathway_result import Priority
from carepath_contracts.steps import IMAGING_CT, IMAGING_MRI, URGENT_SURGICAL_REFERRAL
from carepath_pathway.domain.context import Context, Finding, missing, rec
from carepath_pathway.domain.profiles import Profile

_UNKNOWN_WHY = (
    "not recorded, so not treated as a red flag; {what} would call for an urgent surgical "
    "referral and must be checked"
)
_WHY_BOWEL = _UNKNOWN_WHY.format(what="bowel or bladder dysfunction (cauda equina / myelopathy)")
_WHY_DEFICIT = _UNKNOWN_WHY.format(what="a progressive neurological deficit")
_WHY_FLAGS = _UNKNOWN_WHY.format(
    what="fever, weight loss, cancer history, trauma or immunosuppression"
)
_MRI_FLAGS = frozenset({"fever", "immunosuppression", "cancer_history", "weight_loss"})
_WITHHELD = (
    "Elective procedures (medial branch blocks, facet, SI, epidural and trigger point "
    "injections, RFA, spinal cord stimulation), the elective surgical consultation, physical "
    "therapy and the rest of the elective work-up are withheld until the red flags are cleared."
)


def red_flags(ep: Episode, profile: Profile, ctx: Context) -> list[Finding]:
    out: list[Finding] = []
    if ep.bowel_bladder_dysfunction is None:
        out.append(missing("bowel_bladder_dysfunction", _WHY_BOWEL))
    if ep.neurological_deficit is None:
        out.append(missing("neurological_deficit", _WHY_DEFICIT))
    if ep.red_flags is None:
        out.append(missing("red_flags", _WHY_FLAGS))
    if not ctx.red_flag_reasons:
        return out

    facts: dict[str, Any] = {
        "bowel_bladder_dysfunction": ep.bowel_bladder_dysfunction,
        "neurological_deficit": ep.neurological_deficit,
        "red_flags": list(ep.red_flags) if ep.red_flags is not None else None,
    }
    reasons = "; ".join(text for _, text in ctx.red_flag_reasons)
    cervical = ep.region == "cervical"
    evidence = [
        refs.G_RED_FLAGS,
        refs.G_NECK_RED_FLAGS if cervical else refs.G_RED_FLAGS_CES,
        refs.G_ACR_IMAGING,
        refs.PROFILE_E,
    ]
    completed = ctx.completed
    if URGENT_SURGICAL_REFERRAL not in completed:
        out.append(rec(
            URGENT_SURGICAL_REFERRAL,
            f"Red flags present: {reasons}. Urgent surgical referral, to be seen at once. "
            + _WITHHELD,
            evidence, facts=facts, priority=Priority.URGENT,
        ))

    flags = set(ep.red_flags or ())
    cord = ep.bowel_bladder_dysfunction is True or ep.neurological_deficit == "progressive"
    if (cord or flags & _MRI_FLAGS) and IMAGING_MRI not in completed:
        why = []
        if cord:
            why.append(
                "emergency MRI for suspected cervical myelopathy / cord compression"
                if cervical else "emergency MRI (within hours) for suspected cauda equina syndrome"
            )
        if flags & _MRI_FLAGS:
            why.append("MRI for suspected infection or malignancy")
        out.append(rec(
            IMAGING_MRI,
            "Urgent imaging with the red-flag referral: " + "; ".join(why)
            + ", even if an earlier MRI was done.",
            evidence, facts=facts, priority=Priority.URGENT,
        ))
    if "trauma" in flags and IMAGING_CT not in completed:
        out.append(rec(
            IMAGING_CT,
            "Urgent CT after trauma: CT shows fractures and instability in bone detail "
            "(seed §1; ACR variant 6).",
            [*evidence, refs.SEED_IMAGING], facts=facts, priority=Priority.URGENT,
        ))
    return out
