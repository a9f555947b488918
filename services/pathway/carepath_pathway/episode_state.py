"""What the pathway service remembers of an episode between events (pure fold)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from carepath_contracts.episode import Episode
from carepath_contracts.outcome import OutcomeReport
from carepath_contracts.pathway_result import PathwayResult
from carepath_pathway.domain import (
    Profile,
    apply_outcome,
    evaluate,
    get_profile,
    outcome_steps,
    reconcile,
)


class EpisodeState(BaseModel):
    """The episode as known now, the active recommendations and the evaluation count.

    ``profile`` is the threshold profile the episode was moved to by a re-evaluation
    (:func:`on_reevaluation`); its later events are evaluated under it. ``None``: the
    service's configured profile (``CAREPATH_PATHWAY_PROFILE``).
    """

    model_config = ConfigDict(extra="forbid")

    episode: Episode
    active: dict[str, str] = {}
    evaluation_seq: int = 0
    profile: str | None = None

    @classmethod
    def load(cls, data: dict[str, Any] | None) -> EpisodeState | None:
        return None if data is None else cls.model_validate(data)

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


class UnknownEpisode(LookupError):
    pass


def on_submitted(
    state: EpisodeState | None, episode: Episode, profile: Profile
) -> tuple[EpisodeState, PathwayResult]:
    """A (re)submitted episode replaces what was known and is evaluated afresh."""
    previous_active = state.active if state else {}
    seq = (state.evaluation_seq if state else 0) + 1
    return _evaluate(episode, previous_active, seq, profile, adopted=_adopted(state))


def on_outcome(
    state: EpisodeState | None, report: OutcomeReport, profile: Profile
) -> tuple[EpisodeState, PathwayResult]:
    """A team's outcome updates the episode, which is then re-evaluated."""
    if state is None:
        raise UnknownEpisode("outcome reported for an episode the pathway has not seen")
    episode = apply_outcome(state.episode, report)
    return _evaluate(
        episode, state.active, state.evaluation_seq + 1, profile, outcome_steps(report),
        adopted=_adopted(state),
    )


def on_reevaluation(state: EpisodeState, profile: Profile) -> tuple[EpisodeState, PathwayResult]:
    """The stored episode evaluated afresh under ``profile``, which it keeps from now on.

    Nothing about the episode changes but the thresholds: a step still recommended keeps its
    recommendation id (so its referral stays), one no longer recommended is withdrawn, a new
    one gets a new id (:func:`carepath_pathway.domain.reconcile`).
    """
    return _evaluate(state.episode, state.active, state.evaluation_seq + 1, profile,
                     adopted=profile.name)


def profile_for(state: EpisodeState | None, default: Profile) -> Profile:
    """The profile an episode's next event is evaluated under: its adopted one, or ``default``."""
    if state is None or state.profile is None or state.profile == default.name:
        return default
    return get_profile(state.profile)


def _adopted(state: EpisodeState | None) -> str | None:
    return state.profile if state is not None else None


def _evaluate(
    episode: Episode,
    previous_active: dict[str, str],
    seq: int,
    profile: Profile,
    completed: tuple[str, ...] = (),
    *,
    adopted: str | None = None,
) -> tuple[EpisodeState, PathwayResult]:
    episode_id = episode.episode_id or ""
    result = evaluate(episode, profile)
    result, active = reconcile(
        episode_id, previous_active, result, seq, completed_steps=completed
    )
    state = EpisodeState(episode=episode, active=active, evaluation_seq=seq, profile=adopted)
    return state, result
