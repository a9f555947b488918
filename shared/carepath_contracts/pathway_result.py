"""The pathway's answer: the object ``carepath evaluate`` prints and the recommendation event body.

:meth:`PathwayResult.to_json_dict` gives exactly the contract's shape
(``pathway``, ``pathway_version``, ``urgent``, ``recommendations``, ``missing_data``) plus
Carepath's extra fields: ``profile``, ``withdrawn``, and per recommendation ``facts`` and
``recommendation_id`` (left out while it is ``None``).

:class:`Recommendation` extends :class:`RecommendationView`, the lenient shape in which a care
plan keeps and shows recommendations (:mod:`carepath_contracts.views`): one model of a
recommendation for the pathway, its event, the referrals domain and the plan view.

The engine builds these models with the ``build`` class methods: like ``model_construct`` (no
validation) but cheaper, since the engine always passes every field. The models still validate
anything read back (events, tests).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, PrivateAttr

from carepath_contracts.steps import Step, Team

__all__ = [
    "PATHWAY_ID",
    "Evidence",
    "EvidenceSource",
    "MissingData",
    "PathwayResult",
    "Priority",
    "Recommendation",
    "RecommendationView",
    "WithdrawnRecommendation",
]

PATHWAY_ID = "failed-facet-injection"



class Priority(StrEnum):
    """A recommendation's and a referral's priority: FHIR request priority, restricted to the
    two codes the pathway emits. A ``StrEnum`` for the reasons given in
    :mod:`carepath_contracts.referral_status` (the wire carries the plain string)."""

    ROUTINE = "routine"
    URGENT = "urgent"

    @property
    def rank(self) -> int:
        """Higher is more urgent."""
        return 1 if self is Priority.URGENT else 0


EvidenceSource = Literal["seed", "guideline", "profile"]
"""``seed``: the clinical seed text (section titled as in the seed, ``FAQ Qn`` or ``Tip n``);
``guideline``: an external source summarised in clinical-facts.md section B;
``profile``: Carepath's default profile (clinical-facts.md section E)."""

_M = TypeVar("_M", bound=BaseModel)
_OUT = ConfigDict(extra="forbid", frozen=True)
_set = object.__setattr__


def _fast(cls: type[_M], values: dict[str, Any], private: dict[str, Any] | None = None) -> _M:
    """An instance of ``cls`` from ``values`` (every field, in order), without validation."""
    m = cls.__new__(cls)
    _set(m, "__dict__", values)
    _set(m, "__pydantic_fields_set__", set(values))
    _set(m, "__pydantic_extra__", None)
    _set(m, "__pydantic_private__", private)
    return m


class Evidence(BaseModel):
    model_config = _OUT

    source: EvidenceSource
    section: str

    def to_json_dict(self) -> dict[str, str]:
        return {"source": self.source, "section": self.section}


class MissingData(BaseModel):
    model_config = _OUT

    field: str
    why: str

    @classmethod
    def build(cls, field: str, why: str) -> MissingData:
        return _fast(cls, {"field": field, "why": why})

    def to_json_dict(self) -> dict[str, str]:
        return {"field": self.field, "why": self.why}


class RecommendationView(BaseModel):
    """A recommendation as a care plan keeps and shows it.

    Lenient, as the released ``careplan.updated`` schema is: ``team``, ``priority`` and
    ``rationale`` may be missing (a team member's view of another team's recommendation keeps
    only the id, step, team and priority) and further fields (``evidence``, ``thresholds``,
    ``facts``) are kept as they come. :class:`Recommendation` is this shape made complete, as
    the pathway issues it (the id is optional here only because the engine gives it last). No
    other model of a recommendation exists: the referrals service keeps the pathway's own
    instances, typed as this.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    recommendation_id: str | None = None
    step: Step
    team: Team | None = None
    priority: Priority | None = None
    rationale: str | None = None


class Recommendation(RecommendationView):
    """One recommended step, as the pathway issues it: every field required but the id (the
    engine numbers the recommendations last), no unknown field."""

    model_config = _OUT

    step: Step
    team: Team
    priority: Priority
    rationale: str
    evidence: list[Evidence]
    thresholds: dict[str, int | float] = {}
    facts: dict[str, Any] = {}

    @classmethod
    def build(
        cls,
        step: Step,
        team: Team,
        priority: Priority,
        rationale: str,
        evidence: list[Evidence],
        thresholds: dict[str, int | float],
        facts: dict[str, Any],
        recommendation_id: str | None = None,
    ) -> Recommendation:
        return _fast(cls, {
            "step": step,
            "team": team,
            "priority": priority,
            "rationale": rationale,
            "evidence": evidence,
            "thresholds": thresholds,
            "facts": facts,
            "recommendation_id": recommendation_id,
        })

    def to_json_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "step": self.step,
            "team": self.team,
            "priority": self.priority,
            "rationale": self.rationale,
            "evidence": [e.to_json_dict() for e in self.evidence],
            "thresholds": dict(self.thresholds),
            "facts": dict(self.facts),
        }
        if self.recommendation_id is not None:
            out["recommendation_id"] = self.recommendation_id
        return out


class WithdrawnRecommendation(BaseModel):
    model_config = _OUT

    recommendation_id: str
    step: Step
    reason: str

    def to_json_dict(self) -> dict[str, str]:
        return {
            "recommendation_id": self.recommendation_id,
            "step": self.step,
            "reason": self.reason,
        }


class PathwayResult(BaseModel):
    model_config = _OUT

    pathway: Literal["failed-facet-injection"] = "failed-facet-injection"
    pathway_version: str
    profile: str
    urgent: bool
    recommendations: list[Recommendation]
    missing_data: list[MissingData]
    withdrawn: list[WithdrawnRecommendation] = []

    # Steps the evaluated episode shows as already carried out (completed_steps plus what its
    # records imply). Not serialised; lets reconcile tell "completed" from "withdrawn".
    _steps_done: frozenset[str] = PrivateAttr(default=frozenset())

    @classmethod
    def build(
        cls,
        pathway_version: str,
        profile: str,
        urgent: bool,
        recommendations: list[Recommendation],
        missing_data: list[MissingData],
        withdrawn: list[WithdrawnRecommendation],
        steps_done: frozenset[str] = frozenset(),
    ) -> PathwayResult:
        return _fast(
            cls,
            {
                "pathway": PATHWAY_ID,
                "pathway_version": pathway_version,
                "profile": profile,
                "urgent": urgent,
                "recommendations": recommendations,
                "missing_data": missing_data,
                "withdrawn": withdrawn,
            },
            {"_steps_done": steps_done},
        )

    @property
    def steps_done(self) -> frozenset[str]:
        return self._steps_done

    def to_json_dict(self) -> dict[str, Any]:
        """The contract's object (plus Carepath's extra fields), ready for ``json.dumps``."""
        return {
            "pathway": self.pathway,
            "pathway_version": self.pathway_version,
            "profile": self.profile,
            "urgent": self.urgent,
            "recommendations": [r.to_json_dict() for r in self.recommendations],
            "missing_data": [m.to_json_dict() for m in self.missing_data],
            "withdrawn": [w.to_json_dict() for w in self.withdrawn],
        }
