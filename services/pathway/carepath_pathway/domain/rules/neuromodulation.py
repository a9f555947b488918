"""Spinal cord stimulation: evaluation -> psychological evaluation -> trial -> implant.

Seed §4, Tip 8; clinical-facts B2, B14, section E. The stages, latest first:

1. **Implant** — an SCS trial is recorded (``scs_trial``, or ``neuromodulation.scs_trial`` is a
   completed step). Relief >= ``scs_trial_relief_percent`` (50) -> ``neuromodulation.scs_implant``.
   Below -> no implant, ever (never an implant without a successful trial). Unrecorded relief
   -> missing_data. If the psychological evaluation is known NOT done, the implant is held and
   ``psychology.assessment`` recommended (B14). Judgement: if it is unknown, the implant is still
   recommended (the pathway only schedules trials after the evaluation) and the field is listed
   in missing_data.
2. **Trial** — ``neuromodulation.scs_evaluation`` is a completed step (section E: the pathway
   moves on from it). Psychological evaluation done (``psychological_evaluation_done`` or a
   completed ``psychology.assessment``) -> ``neuromodulation.scs_trial``; otherwise
   ``psychology.assessment`` first (B2/B14: psychological clearance before the trial);
   if unknown it is also listed in missing_data.
3. **Evaluation** — ``neuromodulation.scs_evaluation`` (with ``psychology.assessment`` unless the
   psychological evaluation is done: the evaluation includes it) for chronic, intractable pain after
   failed localized interventions (facet injections have failed by definition) when one of:
   neuropathic features; persistent pain after spine surgery (FBSS); radicular pain persisting
   after an epidural steroid injection; or the localized treatment is exhausted: a failed RFA
   (< 50%) or an RFA whose relief was short-lived. Judgement: a negative medial branch block
   alone is a diagnostic result, not a failed treatment, so it does not trigger the evaluation
   for axial pain (second opinion, other targets and rehabilitation come first).
   Judgement (B14, NICE TA159): not when ``symptom_duration_months`` is known < 6 or
   ``pain_nrs`` is known < 5; when either is unknown the evaluation (which checks candidacy) is
   still recommended and the field listed in missing_data. Held while an RFA or repeat RFA is
   recommended (the less invasive, targeted option comes first).
   For axial pain alone the rationale notes the weak evidence (Cochrane 2023).

Elective: not run while red flags are present.
"""

from __future__ import annotations

from typing import Any

import carepath_pathway.domain.evidence as refs
from carepath_contracts.episode import Episode
from carepath_contracts.steps import (
    EPIDURAL_STEROID,
    PSYCHOLOGY_ASSESSMENT,
    REPEAT_RFA,
    RFA,
    SCS_EVALUATION,
    SCS_IMPLANT,
    SCS_TRIAL,
)
from carepath_pathway.domain.context import Context, Finding, missing, rec
from carepath_pathway.domain.profiles import Profile

_SCS_EVIDENCE = [refs.SEED_SCS, refs.TIP[8], refs.G_SCS, refs.G_SCS_INDICATIONS]


def neuromodulation(ep: Episode, profile: Profile, ctx: Context) -> list[Finding]:
    out: list[Finding] = []
    completed = ctx.completed
    trial = ep.scs_trial
    psych = ctx.psych_done
    psych_facts = {"psychological_evaluation_done": ep.psychological_evaluation_done}

    if SCS_IMPLANT in completed:
        return out  # the SCS path is finished
    # 1. implant stage
    if trial is not None or SCS_TRIAL in completed:
        relief = trial.relief_percent if trial is not None else None
        if relief is None:
            out.append(missing(
                "scs_trial.relief_percent" if trial is not None else "scs_trial",
                "the SCS trial's relief is not recorded: an implant needs relief >= "
                f"{profile.scs_trial_relief_percent}%",
            ))
            return out
        if relief < profile.scs_trial_relief_percent:
            return out
        facts: dict[str, Any] = {"scs_trial.relief_percent": relief, **psych_facts}
        thresholds: dict[str, int | float] = {
            "scs_trial_relief_percent": profile.scs_trial_relief_percent
        }
        if psych is False:
            out.append(rec(
                PSYCHOLOGY_ASSESSMENT,
                f"The SCS trial gave {relief}% relief, but no psychological evaluation is "
                "recorded: psychological factors are the main reason SCS fails, so the "
                "evaluation comes before a permanent implant.",
                [refs.G_SCS, refs.G_SCS_INDICATIONS, refs.PROFILE_E], thresholds, facts,
            ))
            return out
        out.append(rec(
            SCS_IMPLANT,
            f"The spinal cord stimulation trial gave {relief}% relief, at or above the "
            f"{profile.scs_trial_relief_percent}% success threshold: a permanent stimulator "
            "may be implanted (§4).",
            [refs.SEED_SCS, refs.G_SCS, refs.PROFILE_E], thresholds, facts,
        ))
        if psych is None:
            out.append(missing(
                "psychological_evaluation_done",
                "not recorded: confirm the psychological evaluation that precedes SCS",
            ))
        return out

    # 2. trial stage
    if SCS_EVALUATION in completed:
        facts = {"completed_steps": [SCS_EVALUATION], **psych_facts}
        if psych is True:
            out.append(rec(
                SCS_TRIAL,
                "The SCS evaluation and the psychological evaluation are done: a trial of "
                "spinal cord stimulation (temporary system, several days) decides on a "
                f"permanent implant (success = relief >= {profile.scs_trial_relief_percent}%).",
                [*_SCS_EVIDENCE, refs.PROFILE_E],
                {"scs_trial_relief_percent": profile.scs_trial_relief_percent}, facts,
            ))
        else:
            out.append(rec(
                PSYCHOLOGY_ASSESSMENT,
                "The SCS evaluation is done; a psychological evaluation must precede the SCS "
                "trial (psychological factors are the main reason SCS fails).",
                [refs.G_SCS, refs.G_SCS_INDICATIONS, refs.PROFILE_E], facts=facts,
            ))
            if psych is None:
                out.append(missing(
                    "psychological_evaluation_done",
                    "not recorded: a psychological evaluation must precede the SCS trial",
                ))
        return out

    # 3. evaluation stage
    if RFA in ctx.recommended or REPEAT_RFA in ctx.recommended:
        return out
    indications: list[str] = []
    if ep.neuropathic_features is True:
        indications.append("neuropathic features")
    if ep.prior_spine_surgery is True:
        indications.append("persistent pain after spine surgery")
    if ep.radicular_pain is True and EPIDURAL_STEROID in completed:
        indications.append("radicular pain persisting after an epidural steroid injection")
    axial_only = not indications
    if ctx.rfa.status == "failed":
        indications.append(f"a failed RFA (below {profile.repeat_rfa_relief_percent}% relief)")
    elif ctx.rfa.status == "short":
        indications.append(
            "an RFA whose relief lasted under "
            f"{profile.repeat_rfa_duration_months:g} months"
        )
    if not indications:
        if ep.neuropathic_features is None:
            out.append(missing(
                "neuropathic_features",
                "not recorded: chronic neuropathic pain after failed facet injections is the "
                "main indication for spinal cord stimulation (§4)",
            ))
        return out
    duration = ep.symptom_duration_months
    pain = ep.pain_nrs
    if duration is not None and duration < profile.scs_min_duration_months:
        return out
    if pain is not None and pain < profile.scs_min_pain_nrs:
        return out
    rationale = (
        "Chronic pain persisting after failed facet joint injections with "
        + "; ".join(indications)
        + ": evaluate for spinal cord stimulation, which modulates pain at the spinal cord "
        "rather than at a localized source (§4, Tip 8)."
    )
    if axial_only:
        rationale += (
            " The pain is axial: evidence for SCS in axial low back pain is weak (Cochrane "
            "2023), which the evaluation should weigh."
        )
    facts = {
        "neuropathic_features": ep.neuropathic_features,
        "prior_spine_surgery": ep.prior_spine_surgery,
        "radicular_pain": ep.radicular_pain,
        "mbb_status": ctx.mbb.status,
        "rfa_status": ctx.rfa.status,
        "symptom_duration_months": duration,
        "pain_nrs": pain,
    }
    out.append(rec(
        SCS_EVALUATION, rationale, list(_SCS_EVIDENCE),
        {
            "scs_min_duration_months": profile.scs_min_duration_months,
            "scs_min_pain_nrs": profile.scs_min_pain_nrs,
        },
        facts,
    ))
    if psych is not True:
        # The evaluation includes a psychological evaluation (B2, B14; NICE TA159's
        # multidisciplinary assessment): the psychology team starts it now, so that the
        # clearance the trial needs is not a later bottleneck.
        out.append(rec(
            PSYCHOLOGY_ASSESSMENT,
            "Spinal cord stimulation is being evaluated: the evaluation includes a "
            "psychological evaluation, which must be done before any SCS trial "
            "(psychological factors are the main reason SCS fails).",
            [refs.G_SCS, refs.G_SCS_INDICATIONS, refs.PROFILE_E], facts=psych_facts,
        ))
    if duration is None:
        out.append(missing(
            "symptom_duration_months",
            f"not recorded: SCS is for pain lasting >= {profile.scs_min_duration_months:g} months",
        ))
    if pain is None:
        out.append(missing(
            "pain_nrs",
            f"not recorded: SCS is for intractable pain (NRS >= {profile.scs_min_pain_nrs})",
        ))
    return out
