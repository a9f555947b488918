"""Diagnostic blocks: repeat of a technically inadequate injection, medial branch blocks.

Seed §1 and §2 (MBB as confirmatory tool), §3 (patient selection), FAQ Q1 (technical failure),
FAQ Q3, Tip 3; clinical-facts B1, B3, B7, section E.

* ``diagnostic.repeat_facet_injection`` — the most recent facet injection was technically
  inadequate (``technically_adequate: false``; FAQ Q1: inaccurate needle placement or too
  little volume) and the facet question has not moved on yet (no medial branch block known and
  no RFA). Judgement: the MBB is recommended alongside when no block is recorded (the 2020
  consensus makes the MBB the prognostic block of choice), so the team can do either.
* ``diagnostic.medial_branch_block`` —
  - no block recorded (``medial_branch_blocks: []``): confirm the facet joints as the pain
    generator before any RFA (Tip 3);
  - the latest block's relief was never recorded: it cannot be read, repeat it (section E;
    the coordination rule adds a pain diary);
  - dual-block profile (``sis``): one positive block so far -> a second, comparative block
    (the other anesthetic).
  Not when ``medial_branch_blocks`` is unknown (listed in missing_data), when an RFA is already
  recorded (a repeat RFA needs no new block: 2020 consensus Table 11), or with radicular pain
  (radicular symptoms predict a negative facet block: MRI + epidural steroid first).
  A positive or negative block needs no further block here: positive -> RFA (ablation rule),
  negative -> other targets, SCS, second opinion.

Elective: not run while red flags are present.
"""

from __future__ import annotations

from typing import Any

import carepath_pathway.domain.evidence as refs
from carepath_contracts.episode import Episode
from carepath_contracts.pathway_result import Evidence
from carepath_contracts.steps import MEDIAL_BRANCH_BLOCK, REPEAT_FACET_INJECTION
from carepath_pathway.domain.context import Context, Finding, missing, rec
from carepath_pathway.domain.profiles import Profile


def mbb_thresholds(profile: Profile) -> dict[str, int | float]:
    return {
        "mbb_relief_percent": profile.mbb_relief_percent,
        "mbb_blocks_required": profile.mbb_blocks_required,
    }


def mbb_criterion(profile: Profile) -> str:
    if profile.mbb_blocks_required == 1:
        return f"relief >= {profile.mbb_relief_percent}% after the block"
    return (
        f"relief >= {profile.mbb_relief_percent}% on each of {profile.mbb_blocks_required} "
        "blocks"
    )


def mbb_profile_evidence(profile: Profile) -> list[Evidence]:
    """Evidence for the MBB criterion of ``profile``: seed §3, plus the guideline it follows."""
    out = [refs.SEED_RFA]
    if profile.mbb_relief_percent != 70 or profile.mbb_blocks_required != 1:
        out.append(refs.G_MBB_THRESHOLD)
        if profile.mbb_blocks_required > 1:
            out.append(refs.G_SIS_DUAL_BLOCKS)
        elif profile.mbb_relief_percent <= 50:
            out.append(refs.G_CONSENSUS_TABLE11)
    else:
        out.append(refs.PROFILE_E)
    return out


def diagnostic_blocks(ep: Episode, profile: Profile, ctx: Context) -> list[Finding]:
    out: list[Finding] = []
    mbb = ctx.mbb
    completed = ctx.completed
    radicular = ep.radicular_pain is True
    rfa_done = bool(ep.rfa_history) or ctx.rfa.status == "unrecorded"
    injections = ep.facet_injections

    # --- technically inadequate facet injection (FAQ Q1) ---
    facet_question_open = mbb.status in ("unknown", "none") and not rfa_done
    if injections is None and facet_question_open:
        out.append(missing(
            "facet_injections",
            "not recorded: the failed facet injections' relief and technical adequacy decide "
            "whether to repeat an injection before concluding (FAQ Q1)",
        ))
    elif injections and facet_question_open:
        i = len(injections) - 1
        last = injections[i]
        if last.technically_adequate is None:
            out.append(missing(
                f"facet_injections[{i}].technically_adequate",
                "not recorded: a technically inadequate injection is repeated before "
                "concluding that the facet joints are not the source (FAQ Q1)",
            ))
        elif (
            last.technically_adequate is False
            and not radicular
            and REPEAT_FACET_INJECTION not in completed
        ):
            out.append(rec(
                REPEAT_FACET_INJECTION,
                "The most recent facet injection was technically inadequate, so its failure "
                "does not show that the facet joints are not the pain source (FAQ Q1: "
                "inaccurate needle placement or insufficient volume). Repeat it (or do a "
                "medial branch block) before concluding.",
                [refs.FAQ[1], refs.SEED_INJECTION_TARGETS, refs.G_CONSENSUS_TABLE12],
                facts={
                    f"facet_injections[{i}].technically_adequate": False,
                    f"facet_injections[{i}].relief_percent": last.relief_percent,
                    "radicular_pain": ep.radicular_pain,
                },
            ))

    # --- medial branch blocks ---
    status = mbb.status
    if status == "unknown":
        if not rfa_done:
            out.append(missing(
                "medial_branch_blocks",
                "not recorded: needed to tell whether a diagnostic medial branch block is next "
                f"(Tip 3) or RFA is indicated ({mbb_criterion(profile)})",
            ))
        return out
    if status == "unrecorded_completed":
        if ep.medial_branch_blocks is None:
            out.append(missing(
                "medial_branch_blocks",
                "a medial branch block is a completed step but its relief is not recorded; "
                "the block cannot be read until it is",
            ))
        return out
    if status in ("positive", "negative") or rfa_done:
        blocks = ep.medial_branch_blocks or []
        if blocks and blocks[-1].relief_percent is None:
            out.append(_unrecorded_missing(len(blocks) - 1))
        return out
    if radicular or MEDIAL_BRANCH_BLOCK in completed:
        if status == "unrecorded" and mbb.latest_index is not None:
            out.append(_unrecorded_missing(mbb.latest_index))
        return out

    facts: dict[str, Any] = dict(mbb.facts)
    facts["radicular_pain"] = ep.radicular_pain
    evidence = [
        refs.SEED_INJECTION_TARGETS, refs.SEED_IMAGING, refs.TIP[3], refs.FAQ[3],
        refs.G_CONSENSUS_TABLE12, *mbb_profile_evidence(profile),
    ]
    target = ""
    if ep.imaging_findings and "spect_active_facet" in ep.imaging_findings:
        target = " Target the facet joints that are active on SPECT."
        facts["imaging_findings"] = list(ep.imaging_findings)
    if ep.region == "cervical":
        evidence.append(refs.G_CERVICAL)

    if status == "none":
        failed = _injection_summary(ep)
        rationale = (
            f"Facet joint injections failed{failed} and no medial branch block is recorded. A "
            "diagnostic medial branch block confirms whether the facet joints are the pain "
            "generator before RFA (Tip 3, §2); it is the prognostic block of choice (2020 "
            f"consensus). Positive = {mbb_criterion(profile)}.{target}"
        )
        evidence.append(refs.FAQ[1])
    elif status == "unrecorded":
        i = mbb.latest_index if mbb.latest_index is not None else 0
        out.append(_unrecorded_missing(i))
        rationale = (
            f"The relief after medial branch block #{i + 1} was never recorded, so the block "
            "cannot be read: repeat the block and keep a pain diary to record the response "
            f"(section E, Tip 1). Positive = {mbb_criterion(profile)}.{target}"
        )
        evidence.extend([refs.TIP[1], refs.PROFILE_E])
    else:  # needs_second
        i = mbb.latest_index if mbb.latest_index is not None else 0
        blocks = ep.medial_branch_blocks or []
        used = blocks[i].anesthetic
        other = {"lidocaine": "bupivacaine", "bupivacaine": "lidocaine"}.get(used or "")
        with_what = f" with {other}" if other else " with the other local anesthetic"
        rationale = (
            f"Medial branch block #{i + 1} gave {blocks[i].relief_percent}% relief, at or above "
            f"{profile.mbb_relief_percent}%, but profile '{profile.name}' requires "
            f"{profile.mbb_blocks_required} positive blocks: do a second, comparative "
            f"block{with_what} (concordant relief: shorter with lidocaine, longer with "
            f"bupivacaine).{target}"
        )
    out.append(rec(
        MEDIAL_BRANCH_BLOCK, rationale, evidence, mbb_thresholds(profile), facts,
    ))
    return out


def _unrecorded_missing(i: int) -> Finding:
    return missing(
        f"medial_branch_blocks[{i}].relief_percent",
        "relief after this medial branch block was not recorded; the block cannot be read",
    )


def _injection_summary(ep: Episode) -> str:
    injections = ep.facet_injections or []
    if not injections:
        return ""
    last = injections[-1]
    parts = []
    if last.relief_percent is not None:
        parts.append(f"{last.relief_percent}% relief")
    if last.relief_duration_weeks is not None:
        parts.append(f"lasting {last.relief_duration_weeks:g} weeks")
    return f" (latest: {', '.join(parts)})" if parts else ""
