"""Kafka adapters of the pathway service: decode, fold into the episode, publish.

Consumes ``episode.submitted`` and ``outcome.reported`` (one topic, keyed by episode, so in
order), evaluates with the pure engine, and publishes the recommendation event plus the
compacted status record. Each handler returns the change to the episode's state (a pure
fold); the consumer stores state and outbound events together in Redis before publishing
(see :mod:`carepath_runtime.state_store`), so redelivery republishes the same events with the
same ids and never folds an outcome twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from pydantic import BaseModel

from carepath_contracts.envelope import Envelope, derive_id
from carepath_contracts.events import (
    PATHWAY_STATUS,
    RECOMMENDATIONS_ISSUED,
    EpisodeSubmitted,
    OutcomeReported,
    PathwayStatus,
    RecommendationsIssued,
)
from carepath_contracts.pathway_result import PathwayResult
from carepath_contracts.topics import Topics
from carepath_pathway.domain import Profile, get_profile
from carepath_pathway.episode_state import (
    EpisodeState,
    UnknownEpisode,
    on_outcome,
    on_submitted,
    profile_for,
)
from carepath_pathway.episode_store import EpisodeStore
from carepath_runtime.consumer import Delivery, PermanentError
from carepath_runtime.kafka_broker import OutboundEvent, build_event
from carepath_runtime.service import Runtime, subscribe
from carepath_runtime.state_store import Change

SOURCE = "/carepath/pathway"


def outbound_events(
    runtime: Runtime, trigger: Envelope, episode_id: str, state: EpisodeState,
    result: PathwayResult,
) -> list[OutboundEvent]:
    recs_envelope = Envelope.new(
        event_type=RECOMMENDATIONS_ISSUED,
        source=SOURCE,
        event_id=derive_id(RECOMMENDATIONS_ISSUED, trigger.id),
        causation=trigger,
    )
    recs = RecommendationsIssued.model_validate(
        {
            # The result's own fields, as validated models: no dump-and-reparse round trip.
            **{name: getattr(result, name) for name in type(result).model_fields},
            "episode_id": episode_id,
            "evaluation_seq": state.evaluation_seq,
            "trigger_event_id": trigger.id,
        }
    )
    status_envelope = Envelope.new(
        event_type=PATHWAY_STATUS,
        source=SOURCE,
        event_id=derive_id(PATHWAY_STATUS, trigger.id),
        causation=trigger,
    )
    status = PathwayStatus(
        episode_id=episode_id,
        evaluation_seq=state.evaluation_seq,
        pathway_version=result.pathway_version,
        profile=result.profile,
        urgent=result.urgent,
        active_steps=[r.step for r in result.recommendations],
        missing_fields=[m.field for m in result.missing_data],
        updated_at=datetime.now(UTC),
    )
    topics = runtime.topics
    return [
        build_event(topic=topics.recommendations, key=episode_id, envelope=recs_envelope,
                    body=recs),
        build_event(topic=topics.pathway_status, key=episode_id, envelope=status_envelope,
                    body=status),
    ]


@dataclass(frozen=True)
class Pathway:
    """What the pathway's handlers need: the runtime (topics), the store, the profile."""

    runtime: Runtime
    store: EpisodeStore
    profile: Profile

    @property
    def topics(self) -> Topics:
        return self.runtime.topics


Evaluation = Callable[[EpisodeState | None, Profile], tuple[EpisodeState, PathwayResult]]


def _evaluation(pathway: Pathway, delivery: Delivery[Any], episode_id: str,
                evaluate: Evaluation) -> Change[EpisodeState]:
    def fold(state: EpisodeState | None) -> tuple[EpisodeState, list[OutboundEvent]]:
        episode_profile = profile_for(state, pathway.profile)  # adopted by a re-evaluation?
        new_state, result = evaluate(state, episode_profile)
        return new_state, outbound_events(pathway.runtime, delivery.envelope, episode_id,
                                          new_state, result)

    return pathway.store.change(episode_id, delivery.envelope.id, fold)


async def evaluate_submission(pathway: Pathway, delivery: Delivery[EpisodeSubmitted]
                              ) -> Change[EpisodeState]:
    """A (re)submitted episode, evaluated afresh."""
    episode = delivery.body.episode
    return _evaluation(pathway, delivery, delivery.body.episode_id or delivery.key,
                       lambda state, profile: on_submitted(state, episode, profile))


async def evaluate_outcome(pathway: Pathway, delivery: Delivery[OutcomeReported]
                           ) -> Change[EpisodeState]:
    """A team's outcome folded into the episode, which is then re-evaluated."""
    report = delivery.body.report

    def evaluate(state: EpisodeState | None, profile: Profile
                 ) -> tuple[EpisodeState, PathwayResult]:
        try:
            return on_outcome(state, report, profile)
        except UnknownEpisode as exc:
            raise PermanentError(str(exc)) from exc

    return _evaluation(pathway, delivery, delivery.body.episode_id or delivery.key, evaluate)


PathwayHandler = Callable[[Pathway, Delivery[Any]], Awaitable[Change[EpisodeState]]]

HANDLERS: Mapping[type[BaseModel], PathwayHandler] = {
    EpisodeSubmitted: evaluate_submission,
    OutcomeReported: evaluate_outcome,
}


def register(runtime: Runtime, store: EpisodeStore) -> None:
    pathway = Pathway(runtime, store, get_profile(runtime.settings.carepath_pathway_profile))
    subscribe(
        runtime,
        topic=runtime.topics.episodes,
        group="pathway",
        dlq_topic=runtime.topics.dlq_pathway,
        handlers={model: partial(handler, pathway) for model, handler in HANDLERS.items()},
    )
