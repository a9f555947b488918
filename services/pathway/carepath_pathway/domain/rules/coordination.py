"""Care coordination: pain diary (Tip 1) and second opinion (Tip 2).

* ``coordination.pain_diary`` — a pain record makes a result readable:
  - a medial branch block's relief was never recorded (section E: repeat the block and keep a
    pain diary);
  - a diagnostic block or repeat injection, or an SCS trial, is being recommended (record the
    response);
  - a second opinion is being recommended (the diary documents the pain pattern for it).
* ``coordination.second_opinion`` — a fresh perspective when the diagnosis is in doubt (Tip 2):
  a negative medial branch block, a failed RFA, a failed SCS trial, or at least
  ``second_opinion_failed_injections`` (2) technically adequate facet injections that failed
  (relief < 50% or lasting < 12 weeks; judgement) with no positive block.

Elective: not run while red flags are present.
"""

from __future__ import annotations

from typing import Any

import carepath_pathway.domain.evidence as refs
from carepath_contracts.episode import Episode
from carepath_contracts.steps import (
    MEDIAL_BRANCH_BLOCK,
    PAIN_DIARY,
    REPEAT_FACET_INJECTION,
    SCS_TRIAL,
    SECOND_OPINION,
)
from carepath_pathway.domain.context import Context, Finding, rec
from carepath_pathway.domain.profiles import Profile


def coordination(ep: Episode, profile: Profile, ctx: Context) -> list[Finding]:
    out: list[Finding] = []
    completed = ctx.completed

    doubts: list[str] = []
    if ctx.mbb.status == "negative":
        doubts.append(
            f"the medial branch block was negative (below {profile.mbb_relief_percent}%)"
        )
    if ctx.rfa.status == "failed":
        doubts.append(f"the RFA failed (below {profile.repeat_rfa_relief_percent}% relief)")
    trial = ep.scs_trial
    if (
        trial is not None
        and trial.relief_percent is not None
        and trial.relief_percent < profile.scs_trial_relief_percent
    ):
        doubts.append(
            f"the SCS trial failed (below {profile.scs_trial_relief_percent}% relief)"
        )
    if (
        ctx.failed_injections >= profile.second_opinion_failed_injections
        and ctx.mbb.status not in ("positive", "needs_second")
    ):
        doubts.append(f"{ctx.failed_injections} facet injections failed")
    second = bool(doubts) and SECOND_OPINION not in completed
    if second:
        facts: dict[str, Any] = {
            "mbb_status": ctx.mbb.status,
            "rfa_status": ctx.rfa.status,
            "scs_trial.relief_percent": trial.relief_percent if trial is not None else None,
            "failed_facet_injections": ctx.failed_injections,
        }
        out.append(rec(
            SECOND_OPINION,
            f"The pain source is in doubt: {'; '.join(doubts)}. A different pain specialist or "
            "spinal surgeon may see an alternative diagnosis or treatment (Tip 2).",
            [refs.TIP[2]],
            {"second_opinion_failed_injections": profile.second_opinion_failed_injections},
            facts,
        ))

    if PAIN_DIARY in completed:
        return out
    reasons: list[str] = []
    if ctx.mbb.status in ("unrecorded", "unrecorded_completed"):
        reasons.append("the relief after a medial branch block was never recorded (section E)")
    recommended = ctx.recommended
    if MEDIAL_BRANCH_BLOCK in recommended or REPEAT_FACET_INJECTION in recommended:
        reasons.append("it records the response to the diagnostic block")
    if SCS_TRIAL in recommended:
        reasons.append("it records the relief during the SCS trial")
    if second:
        reasons.append("it documents the pain pattern for the second opinion")
    if reasons:
        out.append(rec(
            PAIN_DIARY,
            "Keep a pain diary (location, intensity, aggravating and relieving factors): "
            + "; ".join(reasons) + " (Tip 1).",
            [refs.TIP[1], refs.PROFILE_E]
            if ctx.mbb.status.startswith("unrecorded")
            else [refs.TIP[1]],
            facts={"mbb_status": ctx.mbb.status},
        ))
    return out
