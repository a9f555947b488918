"""Psychological factors (seed §6, Tip 7; clinical-facts B9, section E).

* ``psychology.assessment`` — PHQ-9 >= ``phq9_min`` (10), GAD-7 >= ``gad7_min`` (10) or Pain
  Catastrophizing Scale >= ``pcs_min`` (30), and no psychological evaluation done yet
  (``psychological_evaluation_done`` true or ``psychology.assessment`` completed counts as done).
  Judgement: when ``psychological_evaluation_done`` is unknown the assessment is still
  recommended (the trigger is known) and the field is listed in missing_data.
* ``psychology.cbt`` — the evaluation is done and a score is still at or above its threshold
  (section E).

The SCS pre-trial psychological evaluation is recommended by the neuromodulation rule; the
engine merges both into one ``psychology.assessment``. Not elective: runs with red flags too.
"""

from __future__ import annotations

from typing import Any

import carepath_pathway.domain.evidence as refs
from carepath_contracts.episode import Episode
from carepath_contracts.steps import CBT, PSYCHOLOGY_ASSESSMENT
from carepath_pathway.domain.context import Context, Finding, missing, rec
from carepath_pathway.domain.profiles import Profile

_NAMES = {"phq9": "PHQ-9", "gad7": "GAD-7", "pain_catastrophizing": "Pain Catastrophizing Scale"}
_WHY = {
    "phq9": "depression screen (PHQ-9 >= {t} calls for a psychological assessment, Tip 7)",
    "gad7": "anxiety screen (GAD-7 >= {t} calls for a psychological assessment, Tip 7)",
    "pain_catastrophizing": "catastrophizing (PCS >= {t} calls for a psychological assessment)",
}


def psychology(ep: Episode, profile: Profile, ctx: Context) -> list[Finding]:
    out: list[Finding] = []
    scores = (
        ("phq9", ep.phq9, profile.phq9_min),
        ("gad7", ep.gad7, profile.gad7_min),
        ("pain_catastrophizing", ep.pain_catastrophizing, profile.pcs_min),
    )
    high = [(name, value, t) for name, value, t in scores if value is not None and value >= t]
    thresholds: dict[str, int | float] = {
        "phq9_min": profile.phq9_min,
        "gad7_min": profile.gad7_min,
        "pcs_min": profile.pcs_min,
    }
    facts: dict[str, Any] = {name: value for name, value, _ in scores}
    facts["psychological_evaluation_done"] = ep.psychological_evaluation_done
    if not high:
        for name, value, t in scores:
            if value is None:
                out.append(missing(name, "not recorded: " + _WHY[name].format(t=t)))
        return out
    listed = ", ".join(f"{_NAMES[n]} {v} (>= {t})" for n, v, t in high)
    evidence = [refs.SEED_REHAB, refs.TIP[7], refs.G_PSYCH_SCREENING, refs.PROFILE_E]
    if ctx.psych_done is True:
        if CBT not in ctx.completed:
            out.append(rec(
                CBT,
                f"The psychological assessment is done and screening remains high: {listed}. "
                "Cognitive-behavioural therapy addresses depression, anxiety and fear-avoidance "
                "that feed chronic pain (§6, Tip 7).",
                evidence, thresholds, facts,
            ))
        return out
    out.append(rec(
        PSYCHOLOGY_ASSESSMENT,
        f"Screening is at or above threshold: {listed}. Psychological factors (anxiety, "
        "depression, catastrophizing) contribute to the pain experience and should be "
        "evaluated (§6, Tip 7).",
        evidence, thresholds, facts,
    ))
    if ctx.psych_done is None:
        out.append(missing(
            "psychological_evaluation_done",
            "not recorded: needed to tell a first psychological assessment from CBT",
        ))
    return out
