"""``apply_outcome(episode, report) -> Episode``: fold a team's outcome into the episode (pure).

The episode is immutable; a new one is returned. The semantics are chosen so a patient moves
step by step through the pathway, e.g.::

    imaging(mri, [facet_arthropathy]) -> medial_branch_block(80) -> RFA recommended
    rfa(80, 12 months) + pain_recurred(nrs 7) -> repeat RFA recommended
    step_completed(scs_evaluation) -> psychological_evaluation -> SCS trial recommended
    scs_trial(60) -> SCS implant recommended

Per kind:

* ``medial_branch_block`` — appends a block (relief may be None = not recorded). Never marks
  the step completed: blocks are repeated (unreadable block) or doubled (``sis`` profile), and
  ``medial_branch_blocks`` is the record.
* ``facet_injection`` — appends an injection. When injections were already recorded (or
  ``step`` is ``diagnostic.repeat_facet_injection``) the repeat is marked completed, so it is
  not repeated in a loop.
* ``rfa`` — appends an RFA. The first RFA marks ``ablation.rfa`` completed; a repeat RFA never
  marks ``ablation.repeat_rfa`` completed (RFA can be repeated each time it wears off).
* ``rfa_follow_up`` — updates the most recent RFA (relief and/or how long it lasted); with no
  RFA recorded it appends one.
* ``pain_recurred`` — sets ``pain_nrs`` if given, and the most recent RFA's
  ``relief_duration_months`` to ``after_months`` if that was not recorded yet.
* ``pain_score`` — sets ``pain_nrs``.
* ``scs_trial`` — sets ``scs_trial`` and marks ``neuromodulation.scs_trial`` completed.
* ``imaging`` — adds the modality to ``imaging_done``, marks ``imaging.<modality>`` completed
  (so the urgent red-flag MRI/CT is not ordered again), and merges the findings: a real
  finding removes ``"normal"``; ``"normal"`` is only kept while no real finding is recorded.
* ``physical_therapy`` — adds the weeks to ``physical_therapy_weeks``.
* ``screening`` — replaces the given scores.
* ``psychological_evaluation`` — sets ``psychological_evaluation_done``, marks
  ``psychology.assessment`` completed, replaces any given scores.
* ``step_completed`` — marks ``step`` completed (side effects: ``psychology.assessment`` also
  sets ``psychological_evaluation_done``; ``imaging.<modality>`` adds the modality).
* ``clinical_review`` — replaces every given clinical field (e.g. clears red flags).

A report for another episode (``episode_id`` differs from the episode's) raises ValueError.
"""

from __future__ import annotations

from typing import Any

from carepath_contracts.episode import (
    Episode,
    FacetInjection,
    MedialBranchBlock,
    RfaProcedure,
    ScsTrial,
)
from carepath_contracts.outcome import (
    ClinicalReviewOutcome,
    FacetInjectionOutcome,
    ImagingOutcome,
    MedialBranchBlockOutcome,
    OutcomeReport,
    PainRecurredOutcome,
    PainScoreOutcome,
    PhysicalTherapyOutcome,
    PsychologicalEvaluationOutcome,
    RfaFollowUpOutcome,
    RfaOutcome,
    ScreeningOutcome,
    ScsTrialOutcome,
    StepCompletedOutcome,
)
from carepath_contracts.steps import (
    IMAGING_CT,
    IMAGING_MRI,
    IMAGING_SPECT,
    MEDIAL_BRANCH_BLOCK,
    PSYCHOLOGY_ASSESSMENT,
    REPEAT_FACET_INJECTION,
    RFA,
    SCS_TRIAL,
    Step,
)

__all__ = ["apply_outcome", "outcome_steps"]

_MODALITY_STEP: dict[str, Step] = {"mri": IMAGING_MRI, "ct": IMAGING_CT, "spect": IMAGING_SPECT}
_STEP_MODALITY = {v: k for k, v in _MODALITY_STEP.items()}
_CLINICAL_FIELDS = (
    "radicular_pain",
    "neurological_deficit",
    "bowel_bladder_dysfunction",
    "red_flags",
    "si_provocation_positive",
    "trigger_points",
    "neuropathic_features",
    "pain_nrs",
)
_SCORES = ("phq9", "gad7", "pain_catastrophizing")


def _completed(ep: Episode, *steps: Step) -> list[Step]:
    out = list(ep.completed_steps or ())
    for s in steps:
        if s not in out:
            out.append(s)
    return out


def apply_outcome(episode: Episode, report: OutcomeReport) -> Episode:
    """The episode updated by ``report`` (see the module docstring for each kind)."""
    if episode.episode_id is not None and report.episode_id != episode.episode_id:
        raise ValueError(
            f"outcome for episode {report.episode_id!r} applied to episode {episode.episode_id!r}"
        )
    ep = episode
    update: dict[str, Any] = {}
    if isinstance(report, MedialBranchBlockOutcome):
        block = MedialBranchBlock.model_construct(
            relief_percent=report.relief_percent, anesthetic=report.anesthetic
        )
        update["medial_branch_blocks"] = [*(ep.medial_branch_blocks or ()), block]
    elif isinstance(report, FacetInjectionOutcome):
        inj = FacetInjection.model_construct(
            levels=list(report.levels) if report.levels is not None else None,
            relief_percent=report.relief_percent,
            relief_duration_weeks=report.relief_duration_weeks,
            technically_adequate=report.technically_adequate,
        )
        if ep.facet_injections or report.step == REPEAT_FACET_INJECTION:
            update["completed_steps"] = _completed(ep, REPEAT_FACET_INJECTION)
        update["facet_injections"] = [*(ep.facet_injections or ()), inj]
    elif isinstance(report, RfaOutcome):
        if not ep.rfa_history:
            update["completed_steps"] = _completed(ep, RFA)
        update["rfa_history"] = [
            *(ep.rfa_history or ()),
            RfaProcedure.model_construct(
                relief_percent=report.relief_percent,
                relief_duration_months=report.relief_duration_months,
            ),
        ]
    elif isinstance(report, RfaFollowUpOutcome):
        hist = list(ep.rfa_history or ())
        if hist:
            last = hist[-1]
            hist[-1] = RfaProcedure.model_construct(
                relief_percent=(
                    report.relief_percent if report.relief_percent is not None
                    else last.relief_percent
                ),
                relief_duration_months=(
                    report.relief_duration_months if report.relief_duration_months is not None
                    else last.relief_duration_months
                ),
            )
        else:
            hist.append(RfaProcedure.model_construct(
                relief_percent=report.relief_percent,
                relief_duration_months=report.relief_duration_months,
            ))
            update["completed_steps"] = _completed(ep, RFA)
        update["rfa_history"] = hist
    elif isinstance(report, PainRecurredOutcome):
        if report.pain_nrs is not None:
            update["pain_nrs"] = report.pain_nrs
        hist = list(ep.rfa_history or ())
        if report.after_months is not None and hist and hist[-1].relief_duration_months is None:
            hist[-1] = RfaProcedure.model_construct(
                relief_percent=hist[-1].relief_percent,
                relief_duration_months=report.after_months,
            )
            update["rfa_history"] = hist
    elif isinstance(report, PainScoreOutcome):
        update["pain_nrs"] = report.pain_nrs
    elif isinstance(report, ScsTrialOutcome):
        update["scs_trial"] = ScsTrial.model_construct(relief_percent=report.relief_percent)
        update["completed_steps"] = _completed(ep, SCS_TRIAL)
    elif isinstance(report, ImagingOutcome):
        done = list(ep.imaging_done or ())
        if report.modality not in done:
            done.append(report.modality)
        update["imaging_done"] = done
        update["imaging_findings"] = _merge_findings(ep.imaging_findings, report.findings)
        step = _MODALITY_STEP.get(report.modality)
        if step is not None:
            update["completed_steps"] = _completed(ep, step)
    elif isinstance(report, PhysicalTherapyOutcome):
        update["physical_therapy_weeks"] = (ep.physical_therapy_weeks or 0.0) + report.weeks
    elif isinstance(report, ScreeningOutcome):
        for name in _SCORES:
            value = getattr(report, name)
            if value is not None:
                update[name] = value
    elif isinstance(report, PsychologicalEvaluationOutcome):
        for name in _SCORES:
            value = getattr(report, name)
            if value is not None:
                update[name] = value
        update["psychological_evaluation_done"] = True
        update["completed_steps"] = _completed(ep, PSYCHOLOGY_ASSESSMENT)
    elif isinstance(report, StepCompletedOutcome):
        update["completed_steps"] = _completed(ep, report.step)
        if report.step == PSYCHOLOGY_ASSESSMENT:
            update["psychological_evaluation_done"] = True
        modality = _STEP_MODALITY.get(report.step)
        if modality is not None and modality not in (ep.imaging_done or ()):
            update["imaging_done"] = [*(ep.imaging_done or ()), modality]
    elif isinstance(report, ClinicalReviewOutcome):
        for name in _CLINICAL_FIELDS:
            value = getattr(report, name)
            if value is not None:
                update[name] = list(value) if isinstance(value, list) else value
    if not update:
        return ep
    return ep.model_copy(update=update)


def _merge_findings(old: list[Any] | None, new: list[Any]) -> list[Any]:
    merged = [f for f in (old or ()) if f != "normal"]
    real = [f for f in new if f != "normal"]
    for f in real:
        if f not in merged:
            merged.append(f)
    if not merged and ("normal" in new or (old and "normal" in old)):
        merged.append("normal")
    return merged


def outcome_steps(report: OutcomeReport) -> tuple[Step, ...]:
    """The step(s) a report shows were just carried out (for ``reconcile(completed_steps=)``).

    A step that was just carried out and is recommended again (e.g. a second medial branch block
    under the ``sis`` profile, or a block whose relief went unrecorded) then gets a fresh id.
    """
    steps: list[Step] = []
    if report.step is not None:
        steps.append(report.step)
    implied: Step | None = None
    if isinstance(report, MedialBranchBlockOutcome):
        implied = MEDIAL_BRANCH_BLOCK
    elif isinstance(report, ScsTrialOutcome):
        implied = SCS_TRIAL
    elif isinstance(report, ImagingOutcome):
        implied = _MODALITY_STEP.get(report.modality)
    elif isinstance(report, PsychologicalEvaluationOutcome):
        implied = PSYCHOLOGY_ASSESSMENT
    elif isinstance(report, RfaOutcome) and report.step is None:
        implied = RFA
    if implied is not None and implied not in steps:
        steps.append(implied)
    return tuple(steps)
