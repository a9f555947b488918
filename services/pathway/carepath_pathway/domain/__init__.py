"""The failed-facet-injection pathway, as pure Python (no I/O).

Public API::

    evaluate(episode, profile=None) -> PathwayResult
    apply_outcome(episode, report) -> Episode
    outcome_steps(report) -> tuple[Step, ...]
    reconcile(episode_id, previous_active, result, evaluation_seq, *, completed_steps=())
        -> tuple[PathwayResult, dict[str, str]]
    get_profile(name) -> Profile; Profile.with_overrides(**thresholds)
    PATHWAY_VERSION, PATHWAY (the versioned rule list), PROFILES, DEFAULT_PROFILE
"""

from carepath_pathway.domain.definition import PATHWAY, PATHWAY_VERSION, PathwayDefinition, Rule
from carepath_pathway.domain.engine import evaluate
from carepath_pathway.domain.outcomes import apply_outcome, outcome_steps
from carepath_pathway.domain.profiles import (
    DEFAULT_PROFILE,
    PROFILES,
    Profile,
    UnknownProfile,
    get_profile,
)
from carepath_pathway.domain.reconcile import RECOMMENDATION_NAMESPACE, recommendation_id, reconcile

__all__ = [
    "DEFAULT_PROFILE",
    "PATHWAY",
    "PATHWAY_VERSION",
    "PROFILES",
    "RECOMMENDATION_NAMESPACE",
    "PathwayDefinition",
    "Profile",
    "Rule",
    "UnknownProfile",
    "apply_outcome",
    "evaluate",
    "get_profile",
    "outcome_steps",
    "recommendation_id",
    "reconcile",
]
