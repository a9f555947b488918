"""``evaluate(episode, profile) -> PathwayResult``: run the versioned rules, merge, order.

Guarantees:

* deterministic: urgent recommendations first, then a fixed step order (the contract's,
  with ``surgery.urgent_referral`` first);
* one recommendation per step (two rules recommending the same step are merged: the higher
  priority wins, rationales are joined, evidence/thresholds/facts are united);
* never a step listed in ``completed_steps``;
* with red flags, no elective procedure (elective rules are skipped, and any elective step is
  filtered as a safety net);
* ``urgent`` is true iff a recommendation is urgent;
* one ``missing_data`` entry per field, in the order the rules asked for them;
* stamped with the profile name and ``PATHWAY_VERSION``.

Pure: no I/O. Output models are built with ``model_construct`` (inputs are already valid).
"""

from __future__ import annotations

from typing import Any

from carepath_contracts.episode import Episode
from carepath_contracts.pathway_result import (
    Evidence,
    MissingData,
    PathwayResult,
    Priority,
    Recommendation,
)
from carepath_contracts.steps import (
    ELECTIVE_PROCEDURES,
    IMAGING_CT,
    IMAGING_MRI,
    IMAGING_SPECT,
    MEDIAL_BRANCH_BLOCK,
    PHYSICAL_THERAPY,
    PSYCHOLOGY_ASSESSMENT,
    REPEAT_FACET_INJECTION,
    REPEAT_RFA,
    RFA,
    SCS_TRIAL,
    STEPS,
    URGENT_SURGICAL_REFERRAL,
)
from carepath_pathway.domain.context import Context, build_context
from carepath_pathway.domain.definition import PATHWAY, PathwayDefinition
from carepath_pathway.domain.profiles import DEFAULT_PROFILE, Profile

_MODALITY_STEP = {"mri": IMAGING_MRI, "ct": IMAGING_CT, "spect": IMAGING_SPECT}

# The fixed output order: the contract's step order, with the urgent surgical referral first
# (it is the action that matters when red flags are present).
OUTPUT_ORDER: dict[str, int] = {
    step: i
    for i, step in enumerate(
        [URGENT_SURGICAL_REFERRAL, *(s for s in STEPS if s != URGENT_SURGICAL_REFERRAL)]
    )
}


def evaluate(
    episode: Episode,
    profile: Profile | None = None,
    definition: PathwayDefinition = PATHWAY,
) -> PathwayResult:
    """Evaluate one (validated) episode under ``profile`` (default: ``seed``)."""
    profile = profile or DEFAULT_PROFILE
    ctx = build_context(episode, profile)
    red = ctx.red_flags_present
    recommended = ctx.recommended
    missing = ctx.missing
    for rule in definition.rules:
        if red and rule.elective:
            continue
        for item in rule.fn(episode, profile, ctx):
            if type(item) is Recommendation:  # not isinstance: pydantic's is slow
                prev = recommended.get(item.step)
                recommended[item.step] = item if prev is None else _merge(prev, item)
            elif type(item) is MissingData:
                prev_m = missing.get(item.field)
                if prev_m is None:
                    missing[item.field] = item
                elif item.why not in prev_m.why:
                    missing[item.field] = MissingData.build(item.field, f"{prev_m.why}; {item.why}")
    completed = ctx.completed
    recs = [
        r for r in recommended.values()
        if r.step not in completed and not (red and r.step in ELECTIVE_PROCEDURES)
    ]
    recs.sort(key=_order)
    urgent = any(r.priority == "urgent" for r in recs)
    return PathwayResult.build(
        definition.version,
        profile.name,
        urgent,
        recs,
        list(missing.values()),
        [],
        _steps_done(episode, ctx),
    )


def _order(r: Recommendation) -> tuple[int, int]:
    return (0 if r.priority == "urgent" else 1, OUTPUT_ORDER[r.step])


def _merge(a: Recommendation, b: Recommendation) -> Recommendation:
    keys = {(e.source, e.section) for e in a.evidence}
    evidence: list[Evidence] = list(a.evidence)
    evidence.extend(e for e in b.evidence if (e.source, e.section) not in keys)
    priority = Priority.URGENT if Priority.URGENT in (a.priority, b.priority) else Priority.ROUTINE
    facts: dict[str, Any] = {**a.facts, **b.facts}
    return Recommendation.build(
        a.step,
        a.team,
        priority,
        f"{a.rationale} {b.rationale}",
        evidence,
        {**a.thresholds, **b.thresholds},
        facts,
    )


def _steps_done(ep: Episode, ctx: Context) -> frozenset[str]:
    """completed_steps plus the steps the episode's records show were carried out."""
    done = set(ctx.completed)
    for modality in ep.imaging_done or ():
        step = _MODALITY_STEP.get(modality)
        if step is not None:
            done.add(step)
    if ep.medial_branch_blocks:
        done.add(MEDIAL_BRANCH_BLOCK)
    if ep.facet_injections and len(ep.facet_injections) >= 2:
        done.add(REPEAT_FACET_INJECTION)
    if ep.rfa_history:
        done.add(RFA)
        if len(ep.rfa_history) >= 2:
            done.add(REPEAT_RFA)
    if ep.scs_trial is not None:
        done.add(SCS_TRIAL)
    if ctx.psych_done:
        done.add(PSYCHOLOGY_ASSESSMENT)
    weeks = ep.physical_therapy_weeks
    if weeks is not None and weeks >= ctx.profile.pt_min_weeks:
        done.add(PHYSICAL_THERAPY)
    return frozenset(done)
