"""Comprehensive rehabilitation (seed §6, FAQ Q5, Tip 6).

* ``rehab.physical_therapy`` — unless a structured course is done: ``physical_therapy_weeks >=
  pt_min_weeks`` (6; judgement: ACR "6 weeks of optimal management", cervical consensus ~6
  weeks) or the step is completed. Judgement: recommended even when the weeks are unknown
  (rehabilitation is the cornerstone whatever else is done; the weeks go to missing_data).
  Fewer weeks than the threshold: complete the course.
* ``rehab.pain_education`` — always, unless completed (pain education and self-management when
  injections fail).

Elective in the red-flag sense (judgement): exercise therapy is deferred until red flags are
cleared, so the rule does not run while they are present.
"""

from __future__ import annotations

import carepath_pathway.domain.evidence as refs
from carepath_contracts.episode import Episode
from carepath_contracts.steps import PAIN_EDUCATION, PHYSICAL_THERAPY, TRIGGER_POINT_INJECTION
from carepath_pathway.domain.context import Context, Finding, missing, rec
from carepath_pathway.domain.profiles import Profile


def rehabilitation(ep: Episode, profile: Profile, ctx: Context) -> list[Finding]:
    out: list[Finding] = []
    completed = ctx.completed
    weeks = ep.physical_therapy_weeks
    if PHYSICAL_THERAPY not in completed and (weeks is None or weeks < profile.pt_min_weeks):
        if weeks is None:
            lead = "No physical therapy course is recorded"
            out.append(missing(
                "physical_therapy_weeks",
                "not recorded: needed to tell whether a structured physical therapy course "
                f"(>= {profile.pt_min_weeks:g} weeks) is done",
            ))
        else:
            lead = (
                f"Only {weeks:g} weeks of structured physical therapy are recorded (course: "
                f">= {profile.pt_min_weeks:g} weeks)"
            )
        extra = ""
        if TRIGGER_POINT_INJECTION in ctx.recommended:
            extra = " It accompanies the trigger point injections."
        out.append(rec(
            PHYSICAL_THERAPY,
            f"{lead}: structured physical therapy (core strengthening, posture correction, "
            "progressive exercise, functional training) improves spinal stability and function "
            f"when facet injections fail (§6, FAQ Q5, Tip 6).{extra}",
            [refs.SEED_REHAB, refs.FAQ[5], refs.TIP[6]],
            {"pt_min_weeks": profile.pt_min_weeks},
            {"physical_therapy_weeks": weeks},
        ))
    if PAIN_EDUCATION not in completed:
        out.append(rec(
            PAIN_EDUCATION,
            "Pain education and self-management (pacing, body mechanics, relaxation) help the "
            "patient take an active role and rely less on passive treatments (§6, FAQ Q5).",
            [refs.SEED_REHAB, refs.FAQ[5]],
            facts={"completed_steps": list(ep.completed_steps or ())},
        ))
    return out
