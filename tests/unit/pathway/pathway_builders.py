"""Episode builders and helpers shared by the pathway tests."""

from __future__ import annotations

from typing import Any

from carepath_contracts.episode import Episode, parse_episode
from carepath_contracts.pathway_result import PathwayResult
from carepath_pathway.domain import evaluate, get_profile

# A fully known, "quiet" lumbar episode: no red flags, no radicular pain, MRI done showing facet
# arthropathy, one adequate facet injection that failed, a negative block (so no MBB/RFA/SPECT),
# PT done, low screening scores. Tests override what they exercise.
QUIET: dict[str, Any] = {
    "episode_id": "ep-test",
    "region": "lumbar",
    "age": 55,
    "sex": "female",
    "pain_nrs": 6,
    "symptom_duration_months": 18,
    "facet_injections": [
        {"levels": ["L4-L5"], "relief_percent": 20, "relief_duration_weeks": 2,
         "technically_adequate": True}
    ],
    "medial_branch_blocks": [{"relief_percent": 30, "anesthetic": "lidocaine"}],
    "rfa_history": [],
    "imaging_done": ["xray", "mri"],
    "imaging_findings": ["facet_arthropathy"],
    "radicular_pain": False,
    "neurological_deficit": "none",
    "bowel_bladder_dysfunction": False,
    "red_flags": [],
    "si_provocation_positive": 1,
    "trigger_points": False,
    "neuropathic_features": False,
    "phq9": 4,
    "gad7": 3,
    "pain_catastrophizing": 12,
    "prior_spine_surgery": False,
    "physical_therapy_weeks": 8,
    "psychological_evaluation_done": False,
    "completed_steps": [],
}


def episode(**overrides: Any) -> Episode:
    """The quiet episode with ``overrides``; an override of ``None`` removes the field."""
    data = {**QUIET, **overrides}
    return parse_episode({k: v for k, v in data.items() if v is not None})


def run(profile: str = "seed", **overrides: Any) -> PathwayResult:
    return evaluate(episode(**overrides), get_profile(profile))


def steps(result: PathwayResult) -> list[str]:
    return [r.step for r in result.recommendations]


def rec(result: PathwayResult, step: str) -> Any:
    for r in result.recommendations:
        if r.step == step:
            return r
    raise AssertionError(f"{step} not recommended; got {steps(result)}")


def missing_fields(result: PathwayResult) -> list[str]:
    return [m.field for m in result.missing_data]
