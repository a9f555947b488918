"""Further diagnostic imaging (seed §1, FAQ Q2, Tip 4; clinical-facts B3, B5).

* ``imaging.mri`` — when ``imaging_done`` is known and has no MRI (Tip 4: "if not already
  performed"; ACR variant 3: MRI is usually appropriate for an intervention candidate). The
  rationale adds radicular pain, a stable neurological deficit or soft-tissue findings seen on
  other imaging (disc, stenosis, nerve root compression) when present.
  When ``imaging_done`` is unknown (listed in missing_data), MRI is recommended only if one of
  those specific indications is known (radicular pain, a stable deficit, a soft-tissue
  finding), "if not already performed" — the indication is known, only redundancy is not.
  A completed ``imaging.<modality>`` step counts as that imaging done.
  Judgement: MRI is recommended even if a CT was done (different tissue); an MRI already done
  is not repeated for radicular pain (it already shows the nerve roots).
* ``imaging.ct`` — no CT yet and a bony/structural finding: fracture, instability or
  spondylolisthesis (subtle fractures, instability, surgical planning).
* ``imaging.spect`` — no SPECT yet, advanced imaging (MRI/CT) done and showing nothing but
  "normal"/facet arthropathy, no radicular pain, no RFA yet and no positive medial branch block:
  SPECT pinpoints the active facet joints "even if they appear normal on other imaging" and
  targets the block and any RFA (2020 consensus: moderate evidence for SPECT before MBB).
  Judgement: only while the facet joints are still untested by a block (no block recorded,
  unknown, or unreadable) and no SCS is under way; for cervical episodes too (the seed does not
  restrict it).

Elective: not run while red flags are present (the red-flag rule orders urgent imaging).
"""

from __future__ import annotations

from typing import Any

import carepath_pathway.domain.evidence as refs
from carepath_contracts.episode import Episode
from carepath_contracts.steps import (
    IMAGING_CT,
    IMAGING_MRI,
    IMAGING_SPECT,
    SCS_EVALUATION,
    SCS_IMPLANT,
    SCS_TRIAL,
)
from carepath_pathway.domain.context import Context, Finding, missing, rec
from carepath_pathway.domain.profiles import Profile

_SOFT_TISSUE = ("disc_herniation", "spinal_stenosis", "nerve_root_compression")
_BONY = ("fracture", "instability", "spondylolisthesis")
_BLAND = frozenset({"normal", "facet_arthropathy"})
_SCS_STEPS = frozenset({SCS_EVALUATION, SCS_TRIAL, SCS_IMPLANT})
_STEP_MODALITY = {IMAGING_MRI: "mri", IMAGING_CT: "ct", IMAGING_SPECT: "spect"}


def imaging(ep: Episode, profile: Profile, ctx: Context) -> list[Finding]:
    out: list[Finding] = []
    done = ep.imaging_done
    findings = ep.imaging_findings
    found = set(findings) if findings is not None else set()
    completed = ctx.completed
    soft = [f for f in _SOFT_TISSUE if f in found]
    implied = {m for step, m in _STEP_MODALITY.items() if step in completed}
    if done is None:
        out.append(missing(
            "imaging_done",
            "not recorded: needed to decide on advanced imaging (MRI, CT, SPECT) — Tip 4 advises "
            "MRI or CT if not already performed",
        ))
        specific = (
            ep.radicular_pain is True or ep.neurological_deficit == "stable" or bool(soft)
        )
        if not implied and (not specific or IMAGING_MRI in completed):
            return out
    done_set = (set(done) if done is not None else set()) | implied
    if findings is None and done_set:
        out.append(missing(
            "imaging_findings",
            "imaging is recorded but not its findings: needed to decide on CT, SPECT and a "
            "surgical consultation",
        ))

    if "mri" not in done_set and IMAGING_MRI not in completed:
        if done is None and not implied:
            reasons = ["if not already performed (imaging_done is not recorded)"]
        else:
            reasons = [
                "no MRI is recorded; advanced imaging rules out disc herniation, spinal "
                "stenosis or nerve root compression that may mimic or worsen facet pain "
                "(Tip 4, §1)"
            ]
        evidence = [refs.SEED_IMAGING, refs.TIP[4], refs.FAQ[2], refs.G_ACR_IMAGING]
        if ep.radicular_pain is True:
            side = "arm" if ep.region == "cervical" else "leg"
            reasons.append(
                f"radicular ({side}) pain points to nerve root involvement, which MRI shows"
            )
            evidence.append(refs.G_ESI)
        if ep.neurological_deficit == "stable":
            reasons.append("a neurological deficit is recorded")
        if soft:
            reasons.append(f"other imaging suggests {', '.join(soft)}: MRI shows soft tissue")
        out.append(rec(
            IMAGING_MRI,
            "MRI: " + "; ".join(reasons) + ".",
            evidence,
            facts={
                "imaging_done": list(done) if done is not None else None,
                "completed_imaging": sorted(implied),
                "radicular_pain": ep.radicular_pain,
                "neurological_deficit": ep.neurological_deficit,
                "imaging_findings": list(findings) if findings is not None else None,
            },
        ))

    if done is None and not implied:
        return out
    bony = [f for f in _BONY if f in found]
    if bony and "ct" not in done_set and IMAGING_CT not in completed:
        out.append(rec(
            IMAGING_CT,
            f"CT: imaging shows {', '.join(bony)}; CT gives bone detail for fractures, arthritic "
            "change and instability and is used to plan surgery (§1, FAQ Q2).",
            [refs.SEED_IMAGING, refs.FAQ[2], refs.G_ACR_IMAGING, refs.G_SURGERY],
            facts={"imaging_done": sorted(done_set), "imaging_findings": list(findings or ())},
        ))

    if (
        "spect" not in done_set
        and IMAGING_SPECT not in completed
        and ("mri" in done_set or "ct" in done_set)
        and findings is not None
        and found <= _BLAND
        and ep.radicular_pain is not True
        and not ep.rfa_history
        and ctx.mbb.status in ("none", "unknown", "unrecorded")
        and ep.scs_trial is None
        and not (ctx.completed & _SCS_STEPS)
    ):
        seen = "only facet arthropathy" if "facet_arthropathy" in found else "no abnormality"
        why = (
            f"advanced imaging shows {seen}, yet facet pain is still suspected after failed "
            "facet injections: a SPECT bone scan pinpoints the active facet joints even when "
            "they look normal on other imaging, to target the medial branch block and any RFA "
            "(§1; 2020 consensus: moderate evidence for SPECT before MBB)"
        )
        facts: dict[str, Any] = {
            "imaging_done": sorted(done_set),
            "imaging_findings": list(findings),
            "radicular_pain": ep.radicular_pain,
            "mbb_status": ctx.mbb.status,
        }
        out.append(rec(
            IMAGING_SPECT, "SPECT: " + why + ".",
            [refs.SEED_IMAGING, refs.FAQ[2], refs.G_CONSENSUS_TABLE12],
            facts=facts,
        ))
    return out
