"""Closed-loop outcomes: what a team reports back once it has carried out a step.

An :data:`OutcomeReport` arrives through intake (HTTP) or with a referral completed with an
outcome. It is a discriminated union on ``kind``; every variant is strict (no coercion) and
refuses unknown fields, like the episode. Every report carries ``episode_id``, the ``step`` it
reports on (optional) and ``reported_at`` (optional; ISO 8601 text is accepted).

How each kind updates the episode is documented in
:func:`carepath_pathway.domain.apply_outcome`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from carepath_contracts.episode import (
    Anesthetic,
    Gad7Score,
    ImagingFinding,
    ImagingModality,
    NeurologicalDeficit,
    NonNegativeNumber,
    PainNrs,
    PcsScore,
    Percent,
    Phq9Score,
    RedFlag,
    SiProvocationCount,
)
from carepath_contracts.iso_time import IsoDatetime
from carepath_contracts.steps import Step

__all__ = [
    "OUTCOME_ADAPTER",
    "ClinicalReviewOutcome",
    "FacetInjectionOutcome",
    "ImagingOutcome",
    "MedialBranchBlockOutcome",
    "OutcomeReport",
    "PainRecurredOutcome",
    "PainScoreOutcome",
    "PhysicalTherapyOutcome",
    "PsychologicalEvaluationOutcome",
    "RfaFollowUpOutcome",
    "RfaOutcome",
    "ScreeningOutcome",
    "ScsTrialOutcome",
    "StepCompletedOutcome",
    "parse_outcome",
]


class _Report(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    episode_id: str
    step: Step | None = None
    # ISO 8601 text (JSON text and already-decoded dicts alike); a number is refused.
    reported_at: IsoDatetime | None = None


class MedialBranchBlockOutcome(_Report):
    """A diagnostic medial branch block was done; ``relief_percent`` None = not recorded."""

    kind: Literal["medial_branch_block"]
    relief_percent: Percent | None = None
    anesthetic: Anesthetic | None = None


class FacetInjectionOutcome(_Report):
    """A facet joint injection (typically the repeat of a technically inadequate one)."""

    kind: Literal["facet_injection"]
    levels: list[str] | None = None
    relief_percent: Percent | None = None
    relief_duration_weeks: NonNegativeNumber | None = None
    technically_adequate: bool | None = None


class RfaOutcome(_Report):
    """An RFA was done. ``relief_duration_months`` only once the relief has worn off."""

    kind: Literal["rfa"]
    relief_percent: Percent | None = None
    relief_duration_months: NonNegativeNumber | None = None


class RfaFollowUpOutcome(_Report):
    """Follow-up of the most recent RFA: corrects its relief and/or records how long it lasted."""

    kind: Literal["rfa_follow_up"]
    relief_percent: Percent | None = None
    relief_duration_months: NonNegativeNumber | None = None


class ScsTrialOutcome(_Report):
    kind: Literal["scs_trial"]
    relief_percent: Percent | None = None


class ImagingOutcome(_Report):
    kind: Literal["imaging"]
    modality: ImagingModality
    findings: list[ImagingFinding] = []


class PhysicalTherapyOutcome(_Report):
    """Weeks of structured physical therapy completed (added to the episode's total)."""

    kind: Literal["physical_therapy"]
    weeks: NonNegativeNumber


class ScreeningOutcome(_Report):
    """Psychological screening scores (each optional; given ones replace the old values)."""

    kind: Literal["screening"]
    phq9: Phq9Score | None = None
    gad7: Gad7Score | None = None
    pain_catastrophizing: PcsScore | None = None


class PsychologicalEvaluationOutcome(_Report):
    """The psychological evaluation/assessment was done (optionally with fresh scores)."""

    kind: Literal["psychological_evaluation"]
    phq9: Phq9Score | None = None
    gad7: Gad7Score | None = None
    pain_catastrophizing: PcsScore | None = None


class StepCompletedOutcome(_Report):
    """A step was carried out with no measurable result (e.g. pain education)."""

    kind: Literal["step_completed"]
    step: Step


class PainScoreOutcome(_Report):
    kind: Literal["pain_score"]
    pain_nrs: PainNrs


class PainRecurredOutcome(_Report):
    """Pain came back after a treatment (e.g. an RFA wore off ``after_months`` months)."""

    kind: Literal["pain_recurred"]
    pain_nrs: PainNrs | None = None
    after_months: NonNegativeNumber | None = None


class ClinicalReviewOutcome(_Report):
    """A clinician's re-assessment; each given field replaces the episode's value.

    Used e.g. by the surgeon after an urgent referral to clear red flags (``red_flags: []``,
    ``bowel_bladder_dysfunction: false``, ``neurological_deficit: "stable"``).
    """

    kind: Literal["clinical_review"]
    radicular_pain: bool | None = None
    neurological_deficit: NeurologicalDeficit | None = None
    bowel_bladder_dysfunction: bool | None = None
    red_flags: list[RedFlag] | None = None
    si_provocation_positive: SiProvocationCount | None = None
    trigger_points: bool | None = None
    neuropathic_features: bool | None = None
    pain_nrs: PainNrs | None = None


OutcomeReport = Annotated[
    MedialBranchBlockOutcome
    | FacetInjectionOutcome
    | RfaOutcome
    | RfaFollowUpOutcome
    | ScsTrialOutcome
    | ImagingOutcome
    | PhysicalTherapyOutcome
    | ScreeningOutcome
    | PsychologicalEvaluationOutcome
    | StepCompletedOutcome
    | PainScoreOutcome
    | PainRecurredOutcome
    | ClinicalReviewOutcome,
    Field(discriminator="kind"),
]
"""A team's outcome report (discriminated on ``kind``)."""

OUTCOME_ADAPTER: TypeAdapter[OutcomeReport] = TypeAdapter(OutcomeReport)


def parse_outcome(data: bytes | str | dict[str, Any]) -> OutcomeReport:
    """Validate an outcome report from JSON text/bytes or a decoded dict.

    Raises :class:`pydantic.ValidationError`; :func:`carepath_contracts.episode.validation_errors`
    names the fields (the first path element is the report's ``kind``).
    """
    if isinstance(data, dict):
        return OUTCOME_ADAPTER.validate_python(data)
    return OUTCOME_ADAPTER.validate_json(data)
