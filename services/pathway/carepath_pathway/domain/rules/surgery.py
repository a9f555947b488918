"""Elective surgical consultation (seed §5, FAQ Q4, Tip 2; clinical-facts B13).

``surgery.consultation`` when imaging shows a potentially correctable structural problem:

* spondylolisthesis, instability or a fracture — at once (the seed's example: facet arthritis
  with spondylolisthesis, instability contributing to pain);
* nerve root compression, spinal stenosis or disc herniation *with* radicular pain or a stable
  neurological deficit — once conservative care has failed: physical therapy of at least
  ``pt_min_weeks`` recorded, or ``rehab.physical_therapy`` / ``injection.epidural_steroid``
  completed ("surgery is reserved for cases where conservative treatments have been
  exhausted"). Unknown physical therapy is listed in missing_data.

Judgement: no consultation without a structural finding (FAQ Q4: fusion is not the default next
step). Urgent cases go through ``surgery.urgent_referral`` (red-flag rule); this rule is
elective and does not run while red flags are present.
"""

from __future__ import annotations

import carepath_pathway.domain.evidence as refs
from carepath_contracts.episode import Episode
from carepath_contracts.steps import EPIDURAL_STEROID, PHYSICAL_THERAPY, SURGICAL_CONSULTATION
from carepath_pathway.domain.context import Context, Finding, missing, rec
from carepath_pathway.domain.profiles import Profile

_STRUCTURAL = ("spondylolisthesis", "instability", "fracture")
_COMPRESSION = ("nerve_root_compression", "spinal_stenosis", "disc_herniation")


def surgery(ep: Episode, profile: Profile, ctx: Context) -> list[Finding]:
    out: list[Finding] = []
    findings = ep.imaging_findings
    if not findings or SURGICAL_CONSULTATION in ctx.completed:
        return out
    found = set(findings)
    evidence = [refs.SEED_SURGERY, refs.FAQ[4], refs.G_SURGERY]
    structural = [f for f in _STRUCTURAL if f in found]
    if structural:
        out.append(rec(
            SURGICAL_CONSULTATION,
            f"Imaging shows {', '.join(structural)}: a surgical consultation assesses whether "
            "this structural problem is contributing to the persistent pain and is surgically "
            "correctable (e.g. fusion for instability) (§5, FAQ Q4).",
            evidence, facts={"imaging_findings": list(findings)},
        ))
        return out

    compression = [f for f in _COMPRESSION if f in found]
    symptomatic = ep.radicular_pain is True or ep.neurological_deficit == "stable"
    if not compression or not symptomatic:
        return out
    weeks = ep.physical_therapy_weeks
    conservative_failed = (
        (weeks is not None and weeks >= profile.pt_min_weeks)
        or PHYSICAL_THERAPY in ctx.completed
        or EPIDURAL_STEROID in ctx.completed
    )
    if not conservative_failed:
        if weeks is None:
            out.append(missing(
                "physical_therapy_weeks",
                "not recorded: surgery for nerve compression is considered once conservative "
                "care (physical therapy) has failed",
            ))
        return out
    out.append(rec(
        SURGICAL_CONSULTATION,
        f"Imaging shows {', '.join(compression)} with "
        + ("radicular pain" if ep.radicular_pain is True else "a neurological deficit")
        + " despite conservative care: a surgical consultation assesses decompression "
        "(laminectomy, foraminotomy) or fusion (§5, FAQ Q4).",
        evidence,
        {"pt_min_weeks": profile.pt_min_weeks},
        {
            "imaging_findings": list(findings),
            "radicular_pain": ep.radicular_pain,
            "neurological_deficit": ep.neurological_deficit,
            "physical_therapy_weeks": weeks,
        },
    ))
    return out
