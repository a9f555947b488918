"""Radiofrequency ablation and repeat RFA (seed §3, FAQ Q3, FAQ Q6, Tip 3; B1, B3a, B6, E).

* ``ablation.rfa`` — only after a positive medial branch block under the profile's criterion
  (seed: latest recorded block >= 70%; consensus-2020: >= 50%; sis: the two latest recorded
  blocks >= 80%) and no RFA recorded yet. Radicular pain does not hold it back: the positive
  block has confirmed the facet joints as the generator of the axial pain, and the seed treats
  a radicular component alongside it with an epidural steroid injection (§2), not instead of
  it; RFA does not treat the radicular pain itself, and the rationale says so. Judgement: an
  absent ``rfa_history`` does not hold the RFA back (a positive block is the last known step);
  unknown radicular pain does not either, but it is listed in missing_data.
* ``ablation.repeat_rfa`` — the latest RFA gave >= 50% relief lasting >= 6 months and the pain
  came back (section E). Recording ``relief_duration_months`` means the relief wore off;
  judgement: ``pain_nrs`` known and below ``pain_recurrence_nrs_min`` (4) means the pain has not
  come back. No new diagnostic block is needed (2020 consensus Table 11). As for the first RFA,
  radicular pain is treated alongside (epidural steroid), not as a bar. Judgement:
  ``ablation.repeat_rfa`` is never added to completed_steps by outcomes, so later repeats stay
  possible; if an episode lists it as completed it is not recommended again.

An RFA with < 50% relief failed (facet joints likely not the generator): no repeat; the
neuromodulation and coordination rules take it from there.

Elective: not run while red flags are present.
"""

from __future__ import annotations

from typing import Any

import carepath_pathway.domain.evidence as refs
from carepath_contracts.episode import Episode
from carepath_contracts.steps import REPEAT_RFA, RFA
from carepath_pathway.domain.context import Context, Finding, missing, rec
from carepath_pathway.domain.profiles import Profile
from carepath_pathway.domain.rules.diagnostic_blocks import (
    mbb_criterion,
    mbb_profile_evidence,
    mbb_thresholds,
)


def ablation(ep: Episode, profile: Profile, ctx: Context) -> list[Finding]:
    out: list[Finding] = []
    completed = ctx.completed
    radicular = ep.radicular_pain is True
    rfa = ctx.rfa

    if ctx.mbb.status == "positive" and rfa.status in ("none", "unknown") and RFA not in completed:
        blocks = ep.medial_branch_blocks or []
        recorded = [b.relief_percent for b in blocks if b.relief_percent is not None]
        used = recorded[-profile.mbb_blocks_required:]
        gave = " and ".join(f"{r}%" for r in used)
        plural = "s" if len(used) > 1 else ""
        rationale = (
            f"Medial branch block{plural} gave {gave} relief, at or above the "
            f"{profile.mbb_relief_percent}% threshold ({mbb_criterion(profile)}, profile "
            f"'{profile.name}'): the facet joints are confirmed as the pain generator, so "
            "radiofrequency ablation of the medial branches can give longer-term relief "
            "(§3, FAQ Q3)."
        )
        if ctx.mbb.note:
            rationale += f" Note: {ctx.mbb.note}."
        if radicular:
            rationale += (
                " The radicular (leg or arm) pain is a separate component: RFA does not treat "
                "it; it is addressed with an epidural steroid injection (§2)."
            )
        facts: dict[str, Any] = dict(ctx.mbb.facts)
        facts["radicular_pain"] = ep.radicular_pain
        evidence = [refs.SEED_RFA, refs.FAQ[3], refs.TIP[3], *mbb_profile_evidence(profile)[1:]]
        if ep.region == "cervical":
            evidence.append(refs.G_CERVICAL)
        out.append(rec(RFA, rationale, evidence, mbb_thresholds(profile), facts))
        return out

    i = rfa.latest_index
    if rfa.status == "unrecorded":
        if i is not None:
            out.append(missing(
                f"rfa_history[{i}].relief_percent",
                "relief after this RFA was not recorded: needed to decide on a repeat RFA",
            ))
        elif ep.rfa_history is None:
            out.append(missing(
                "rfa_history",
                "RFA is a completed step but its result is not recorded: needed to decide on a "
                "repeat RFA",
            ))
        return out
    if rfa.status == "ongoing" and i is not None:
        out.append(missing(
            f"rfa_history[{i}].relief_duration_months",
            "not recorded (relief may still be going on): a repeat RFA needs relief >= "
            f"{profile.repeat_rfa_relief_percent}% lasting >= "
            f"{profile.repeat_rfa_duration_months:g} months that has worn off",
        ))
        return out
    if rfa.status != "worn_off" or i is None:
        return out

    pain = ep.pain_nrs
    if pain is not None and pain < profile.pain_recurrence_nrs_min:
        return out  # relief wore off on paper, but the pain has not come back
    if REPEAT_RFA in completed:
        return out
    hist = ep.rfa_history or []
    last = hist[i]
    duration = last.relief_duration_months or 0.0
    came_back = (
        f"the pain came back (NRS {pain})" if pain is not None
        else "the relief wore off (the pain came back)"
    )
    facts = dict(rfa.facts)
    facts["pain_nrs"] = pain
    facts["radicular_pain"] = ep.radicular_pain
    out.append(rec(
        REPEAT_RFA,
        f"The previous RFA gave {last.relief_percent}% relief lasting {duration:g} months "
        f"(thresholds {profile.repeat_rfa_relief_percent}% and "
        f"{profile.repeat_rfa_duration_months:g} months) and {came_back}: the nerves "
        "regenerate, and a repeat RFA can be considered when the first was effective (FAQ Q6). "
        "No new diagnostic block is needed.",
        [refs.FAQ[6], refs.SEED_RFA, refs.G_REPEAT_RFA, refs.G_CONSENSUS_TABLE11, refs.PROFILE_E],
        {
            "repeat_rfa_relief_percent": profile.repeat_rfa_relief_percent,
            "repeat_rfa_duration_months": profile.repeat_rfa_duration_months,
            "pain_recurrence_nrs_min": profile.pain_recurrence_nrs_min,
        },
        facts,
    ))
    if pain is None:
        out.append(missing(
            "pain_nrs",
            "current pain not recorded: confirm that the pain has come back before the repeat RFA",
        ))
    return out
