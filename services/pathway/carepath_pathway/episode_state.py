"""What the pathway service remembers of an episode between events (pure fold)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from carepath_pathway.domain import Profile, apply_outcome, evaluate, outcome_steps, reconcile
from carepath_shared.episode import Episode
from carepath_shared.outcome import OutcomeReport
from carepath_shared.pathway_result import PathwayResult


class EpisodeState(BaseModel):
    """The episode as known now, the active recommendations and the evaluation count."""

    model_config = ConfigDict(extra="forbid")

    episode: Episode
    active: dict[str, str] = {}
    evaluation_seq: int = 0

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
    return _evaluate(episode, previous_active, seq, profile)


def on_outcome(
    state: EpisodeState | None, report: OutcomeReport, profile: Profile
) -> tuple[EpisodeState, PathwayResult]:
    """A team's outcome updates the episode, which is then re-evaluated."""
    if state is None:
        raise UnknownEpisode("outcome reported for an episode the pathway has not seen")
    episode = apply_outcome(state.episode, report)
    return _evaluate(
        episode, state.active, state.evaluation_seq + 1, profile, outcome_steps(report)
    )


def _evaluate(
    episode: Episode,
    previous_active: dict[str, str],
    seq: int,
    profile: Profile,
    completed: tuple[str, ...] = (),
) -> tuple[EpisodeState, PathwayResult]:
    episode_id = episode.episode_id or ""
    result = evaluate(episode, profile)
    result, active = reconcile(
        episode_id, previous_active, result, seq, completed_steps=completed
    )
    return EpisodeState(episode=episode, active=active, evaluation_seq=seq), result
