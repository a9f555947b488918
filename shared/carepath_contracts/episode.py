"""The public episode: what has been tried since facet joint injections, and what is known now.

Exactly the shape of ``episode-contract.md``. Every field is optional except ``region``, and so
is every field inside a list item. A field that is absent (or ``null``) means *unknown*, never
*no*: the pathway asks for it in ``missing_data`` instead of guessing.

Validation is strict and never coerces: a wrong type (``"5"``, ``5.5`` or ``true`` for an
integer; ``1`` or ``"yes"`` for a boolean), a value out of range, an unknown enum word, a
missing ``region`` and an unknown field are all refused with an error whose ``loc`` names the
field. Numbers (``number`` in the contract) accept integers and floats, but not booleans,
strings, NaN or infinity. :func:`validation_errors` turns a :class:`pydantic.ValidationError`
into ``[{"field": "medial_branch_blocks[0].relief_percent", "reason": "..."}]``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from carepath_contracts.steps import Step

__all__ = [
    "Anesthetic",
    "Episode",
    "FacetInjection",
    "ImagingFinding",
    "ImagingModality",
    "MedialBranchBlock",
    "NeurologicalDeficit",
    "RedFlag",
    "Region",
    "RfaProcedure",
    "ScsTrial",
    "Sex",
    "Step",
    "parse_episode",
    "validation_errors",
]

Region = Literal["lumbar", "cervical"]
Sex = Literal["female", "male", "other"]
Anesthetic = Literal["lidocaine", "bupivacaine"]
ImagingModality = Literal["xray", "mri", "ct", "spect"]
ImagingFinding = Literal[
    "disc_herniation",
    "spinal_stenosis",
    "nerve_root_compression",
    "facet_arthropathy",
    "spondylolisthesis",
    "instability",
    "fracture",
    "spect_active_facet",
    "normal",
]
NeurologicalDeficit = Literal["none", "stable", "progressive"]
RedFlag = Literal["fever", "weight_loss", "cancer_history", "trauma", "immunosuppression"]

Percent = Annotated[int, Field(ge=0, le=100)]
# The contract's score ranges, named once for the episode and the outcome reports.
PainNrs = Annotated[int, Field(ge=0, le=10)]
SiProvocationCount = Annotated[int, Field(ge=0, le=5)]
Phq9Score = Annotated[int, Field(ge=0, le=27)]
Gad7Score = Annotated[int, Field(ge=0, le=21)]
PcsScore = Annotated[int, Field(ge=0, le=52)]
"""Relief in percent: an integer 0–100."""
NonNegativeNumber = Annotated[float, Field(ge=0, allow_inf_nan=False)]
"""A contract ``number``: int or float (never bool or string), finite, not negative."""

_STRICT = ConfigDict(strict=True, extra="forbid", frozen=True)


class FacetInjection(BaseModel):
    """One facet joint injection (oldest first in ``Episode.facet_injections``)."""

    model_config = _STRICT

    levels: list[str] | None = None
    relief_percent: Percent | None = None
    relief_duration_weeks: NonNegativeNumber | None = None
    technically_adequate: bool | None = None


class MedialBranchBlock(BaseModel):
    """One diagnostic medial branch block; a block whose relief was never recorded is kept."""

    model_config = _STRICT

    relief_percent: Percent | None = None
    anesthetic: Anesthetic | None = None


class RfaProcedure(BaseModel):
    """One radiofrequency ablation.

    ``relief_duration_months`` is how long the relief lasted: recording it means the relief has
    worn off. While the relief is ongoing it is left out (unknown).
    """

    model_config = _STRICT

    relief_percent: Percent | None = None
    relief_duration_months: NonNegativeNumber | None = None


class ScsTrial(BaseModel):
    """Result of a spinal cord stimulation trial."""

    model_config = _STRICT

    relief_percent: Percent | None = None


class Episode(BaseModel):
    """A patient episode after failed facet joint injections (the contract's object).

    Immutable: :func:`carepath_pathway.domain.apply_outcome` returns an updated copy.
    """

    model_config = _STRICT

    episode_id: str | None = None
    region: Region
    age: Annotated[int, Field(ge=0, le=130)] | None = None
    sex: Sex | None = None
    pain_nrs: PainNrs | None = None
    symptom_duration_months: NonNegativeNumber | None = None
    facet_injections: list[FacetInjection] | None = None
    medial_branch_blocks: list[MedialBranchBlock] | None = None
    rfa_history: list[RfaProcedure] | None = None
    imaging_done: list[ImagingModality] | None = None
    imaging_findings: list[ImagingFinding] | None = None
    radicular_pain: bool | None = None
    neurological_deficit: NeurologicalDeficit | None = None
    bowel_bladder_dysfunction: bool | None = None
    red_flags: list[RedFlag] | None = None
    si_provocation_positive: SiProvocationCount | None = None
    trigger_points: bool | None = None
    neuropathic_features: bool | None = None
    phq9: Phq9Score | None = None
    gad7: Gad7Score | None = None
    pain_catastrophizing: PcsScore | None = None
    prior_spine_surgery: bool | None = None
    scs_trial: ScsTrial | None = None
    physical_therapy_weeks: NonNegativeNumber | None = None
    psychological_evaluation_done: bool | None = None
    completed_steps: list[Step] | None = None


class EpisodeJSONError(ValueError):
    """The input is not a JSON object."""


def parse_episode(data: bytes | str | dict[str, Any]) -> Episode:
    """Validate an episode from JSON text/bytes or an already decoded dict.

    Raises :class:`pydantic.ValidationError` for a bad episode (invalid JSON text is reported
    by pydantic as a ``json_invalid`` error at the root).
    """
    if isinstance(data, dict):
        return Episode.model_validate(data)
    return Episode.model_validate_json(data)


def field_path(loc: tuple[int | str, ...]) -> str:
    """A pydantic ``loc`` as a dotted path naming the field.

    ``("medial_branch_blocks", 0, "relief_percent")`` -> ``medial_branch_blocks[0].relief_percent``.
    FastAPI's leading ``"body"`` is dropped: the caller knows it sent a body.
    """
    out = ""
    if loc and loc[0] == "body":
        loc = loc[1:]
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif out:
            out += f".{part}"
        else:
            out = part
    return out or "(root)"


_REASONS = {
    "missing": "required field is missing",
    "extra_forbidden": "unknown field (not part of the episode contract)",
}


def validation_errors(exc: ValidationError | Any, show_input: bool = True
                      ) -> list[dict[str, str]]:
    """One ``{"field": dotted path, "reason": words}`` per error, in pydantic's order.

    Takes a pydantic ``ValidationError`` or anything with the same ``errors()`` (FastAPI's
    ``RequestValidationError``): every 4xx of every service names its fields this one way.
    ``show_input=False`` leaves the offending value out (HTTP answers may carry secrets).
    """
    out: list[dict[str, str]] = []
    for err in exc.errors():
        kind = err["type"]
        reason = _REASONS.get(kind, err["msg"])
        if show_input and kind not in _REASONS and kind != "json_invalid" and "input" in err:
            shown = repr(err["input"])
            if len(shown) > 40:
                shown = shown[:37] + "..."
            reason = f"{reason} (got {shown})"
        out.append({"field": field_path(tuple(err["loc"])), "reason": reason})
    return out
