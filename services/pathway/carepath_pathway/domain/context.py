"""Per-evaluation context: facts derived once from the episode, and what rules have found so far.

Rules are plain functions ``(episode, profile, ctx) -> list[Finding]``. The engine adds each
rule's findings to the context before the next rule runs, so later rules can see what earlier
ones recommended (``ctx.recommended``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from carepath_contracts.episode import Episode
from carepath_contracts.pathway_result import Evidence, MissingData, Priority, Recommendation
from carepath_contracts.steps import (
    MEDIAL_BRANCH_BLOCK,
    PSYCHOLOGY_ASSESSMENT,
    RFA,
    STEP_TEAM,
    Step,
)
from carepath_pathway.domain.profiles import Profile

Finding = Recommendation | MissingData

MbbStatus = Literal[
    "unknown",  # medial_branch_blocks absent: we do not know whether blocks were done
    "none",  # known: no block done
    "unrecorded",  # the latest block's relief was never recorded (and no qualifying result)
    "unrecorded_completed",  # the block step is completed but no relief is recorded
    "needs_second",  # dual-block profile: the latest block is positive, a second is needed
    "positive",  # the profile's criterion is met
    "negative",  # the latest recorded block is below the threshold
]

RfaStatus = Literal[
    "unknown",  # rfa_history absent
    "none",  # no RFA done
    "unrecorded",  # RFA done (history or completed step) but its relief is not recorded
    "failed",  # latest RFA relief below the repeat threshold
    "ongoing",  # effective, relief duration not recorded: relief may still be going on
    "short",  # effective but wore off before the duration threshold
    "worn_off",  # effective for >= the duration threshold, then wore off
]


@dataclass(slots=True)
class MbbAssessment:
    status: MbbStatus
    facts: dict[str, Any]
    latest_index: int | None = None
    note: str = ""


@dataclass(slots=True)
class RfaAssessment:
    status: RfaStatus
    facts: dict[str, Any]
    latest_index: int | None = None


@dataclass(slots=True)
class Context:
    profile: Profile
    completed: frozenset[str]
    red_flag_reasons: list[tuple[str, str]]
    psych_done: bool | None
    mbb: MbbAssessment
    rfa: RfaAssessment
    failed_injections: int
    recommended: dict[str, Recommendation] = field(default_factory=dict)
    missing: dict[str, MissingData] = field(default_factory=dict)

    @property
    def red_flags_present(self) -> bool:
        return bool(self.red_flag_reasons)


def rec(
    step: Step,
    rationale: str,
    evidence: list[Evidence],
    thresholds: dict[str, int | float] | None = None,
    facts: dict[str, Any] | None = None,
    priority: Priority = Priority.ROUTINE,
) -> Recommendation:
    """Build a recommendation without validation (the engine's inputs are already valid)."""
    return Recommendation.build(
        step,
        STEP_TEAM[step],
        priority,
        rationale,
        evidence,
        thresholds if thresholds is not None else {},
        facts if facts is not None else {},
    )


_MISSING_CACHE: dict[tuple[str, str], MissingData] = {}


def missing(field_name: str, why: str) -> MissingData:
    """A missing-data entry; entries are immutable, so identical ones are shared (cached)."""
    key = (field_name, why)
    m = _MISSING_CACHE.get(key)
    if m is None:
        m = MissingData.build(field_name, why)
        if len(_MISSING_CACHE) < 4096:
            _MISSING_CACHE[key] = m
    return m


def _assess_mbb(ep: Episode, profile: Profile, completed: frozenset[str]) -> MbbAssessment:
    blocks = ep.medial_branch_blocks
    if not blocks:
        if MEDIAL_BRANCH_BLOCK in completed:
            return MbbAssessment("unrecorded_completed", {"medial_branch_blocks": blocks})
        status0: MbbStatus = "unknown" if blocks is None else "none"
        return MbbAssessment(status0, {"medial_branch_blocks": blocks})
    facts: dict[str, Any] = {}
    recorded: list[int] = []
    for i, block in enumerate(blocks):
        facts[f"medial_branch_blocks[{i}].relief_percent"] = block.relief_percent
        if profile.mbb_comparative_blocks:
            facts[f"medial_branch_blocks[{i}].anesthetic"] = block.anesthetic
        if block.relief_percent is not None:
            recorded.append(block.relief_percent)
    latest = len(blocks) - 1
    required = profile.mbb_blocks_required
    threshold = profile.mbb_relief_percent
    tail = recorded[-required:]
    status: MbbStatus
    if len(tail) == required and all(r >= threshold for r in tail):
        status = "positive"
    elif blocks[-1].relief_percent is None:
        status = "unrecorded"
    elif recorded[-1] >= threshold:
        status = "needs_second"
    else:
        status = "negative"
    note = ""
    if profile.mbb_comparative_blocks and len(blocks) >= 2:
        a, b = blocks[-2].anesthetic, blocks[-1].anesthetic
        if a is not None and b is not None:
            if a != b:
                note = (
                    f"comparative blocks ({a} then {b}); concordance expects shorter relief "
                    "with lidocaine and longer with bupivacaine"
                )
            else:
                note = (
                    f"both blocks used {a}: not comparative (SIS prefers lidocaine + "
                    "bupivacaine)"
                )
    return MbbAssessment(status, facts, latest, note)


def _assess_rfa(ep: Episode, profile: Profile, completed: frozenset[str]) -> RfaAssessment:
    hist = ep.rfa_history
    if not hist:
        if RFA in completed:
            return RfaAssessment("unrecorded", {"rfa_history": hist})
        return RfaAssessment("unknown" if hist is None else "none", {"rfa_history": hist})
    i = len(hist) - 1
    last = hist[i]
    facts: dict[str, Any] = {
        f"rfa_history[{i}].relief_percent": last.relief_percent,
        f"rfa_history[{i}].relief_duration_months": last.relief_duration_months,
    }
    status: RfaStatus
    if last.relief_percent is None:
        status = "unrecorded"
    elif last.relief_percent < profile.repeat_rfa_relief_percent:
        status = "failed"
    elif last.relief_duration_months is None:
        status = "ongoing"
    elif last.relief_duration_months < profile.repeat_rfa_duration_months:
        status = "short"
    else:
        status = "worn_off"
    return RfaAssessment(status, facts, i)


def _red_flag_reasons(ep: Episode) -> list[tuple[str, str]]:
    reasons: list[tuple[str, str]] = []
    if ep.bowel_bladder_dysfunction is True:
        what = (
            "possible myelopathy" if ep.region == "cervical"
            else "possible cauda equina syndrome"
        )
        reasons.append(("bowel_bladder_dysfunction", f"bowel or bladder dysfunction ({what})"))
    if ep.neurological_deficit == "progressive":
        reasons.append(("neurological_deficit", "progressive neurological deficit"))
    for flag in ep.red_flags or ():
        reasons.append(("red_flags", _FLAG_WORDS[flag]))
    return reasons


_FLAG_WORDS = {
    "fever": "fever (possible spinal infection)",
    "weight_loss": "unexplained weight loss (possible malignancy)",
    "cancer_history": "history of cancer (possible metastasis)",
    "trauma": "trauma (possible fracture)",
    "immunosuppression": "immunosuppression (possible infection)",
}


def _count_failed_injections(ep: Episode, profile: Profile) -> int:
    n = 0
    for inj in ep.facet_injections or ():
        if inj.technically_adequate is False:
            continue
        short = (
            inj.relief_duration_weeks is not None
            and inj.relief_duration_weeks < profile.facet_injection_relief_weeks
        )
        poor = (
            inj.relief_percent is not None
            and inj.relief_percent < profile.facet_injection_relief_percent
        )
        if short or poor:
            n += 1
    return n


def build_context(ep: Episode, profile: Profile) -> Context:
    completed = frozenset(ep.completed_steps) if ep.completed_steps else frozenset()
    if ep.psychological_evaluation_done is True or PSYCHOLOGY_ASSESSMENT in completed:
        psych_done: bool | None = True
    else:
        psych_done = ep.psychological_evaluation_done  # False or None (unknown)
    return Context(
        profile=profile,
        completed=completed,
        red_flag_reasons=_red_flag_reasons(ep),
        psych_done=psych_done,
        mbb=_assess_mbb(ep, profile, completed),
        rfa=_assess_rfa(ep, profile, completed),
        failed_injections=_count_failed_injections(ep, profile),
    )
