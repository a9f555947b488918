"""Kafka adapters of the pathway service: decode, fold into the episode, publish.

Consumes ``episode.submitted`` and ``outcome.reported`` (one topic, keyed by episode, so in
order), evaluates with the pure engine, and publishes the recommendation event plus the
compacted status record. State and outbound events are stored together in Redis before
publishing (see :mod:`carepath_runtime.state_store`), so redelivery republishes the same
events with the same ids and never folds an outcome twice.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Any

from carepath_contracts.envelope import Envelope, derive_id
from carepath_contracts.events import (
    EPISODE_SUBMITTED,
    OUTCOME_REPORTED,
    PATHWAY_STATUS,
    RECOMMENDATIONS_ISSUED,
    EpisodeSubmitted,
    OutcomeReported,
    PathwayStatus,
    RecommendationsIssued,
)
from carepath_contracts.pathway_result import PathwayResult
from carepath_pathway.domain import get_profile
from carepath_pathway.episode_state import (
    EpisodeState,
    UnknownEpisode,
    on_outcome,
    on_submitted,
    profile_for,
)
from carepath_runtime.consumer import Delivery, PermanentError
from carepath_runtime.kafka_broker import OutboundEvent, build_event, publish_all
from carepath_runtime.log import get_logger
from carepath_runtime.service import Runtime, subscribe
from carepath_runtime.state_store import StateStore, run_and_publish

SOURCE = "/carepath/pathway"
log = get_logger(__name__)


def outbound_events(
    rt: Runtime, trigger: Envelope, episode_id: str, state: EpisodeState, result: PathwayResult
) -> list[OutboundEvent]:
    recs_env = Envelope.new(
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
    status_env = Envelope.new(
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
    return [
        build_event(topic=rt.topics.recommendations, key=episode_id, envelope=recs_env, body=recs),
        build_event(
            topic=rt.topics.pathway_status, key=episode_id, envelope=status_env, body=status
        ),
    ]


def register(rt: Runtime) -> None:
    store = StateStore(rt.redis, rt.settings.namespace, "pathway")
    profile = get_profile(rt.settings.carepath_pathway_profile)

    async def handle(d: Delivery) -> None:
        body = d.body
        episode_id = getattr(body, "episode_id", None) or d.key or ""

        def fold(data: dict[str, Any] | None) -> tuple[dict[str, Any], list[OutboundEvent]]:
            state = EpisodeState.load(data)
            episode_profile = profile_for(state, profile)  # adopted by a re-evaluation?
            if isinstance(body, EpisodeSubmitted):
                new_state, result = on_submitted(state, body.episode, episode_profile)
            elif isinstance(body, OutcomeReported):
                try:
                    new_state, result = on_outcome(state, body.report, episode_profile)
                except UnknownEpisode as exc:
                    raise PermanentError(str(exc)) from exc
            else:  # pragma: no cover - filtered by accepted_types
                raise PermanentError(f"unexpected body {type(body).__name__}")
            return new_state.dump(), outbound_events(rt, d.envelope, episode_id, new_state, result)

        outputs = await run_and_publish(
            store, episode_id, d.envelope.id, fold, partial(publish_all, rt.broker)
        )
        log.debug("episode_evaluated", event_id=d.envelope.id, episode_id=episode_id,
                 published=len(outputs))

    subscribe(
        rt,
        topic=rt.topics.episodes,
        group="pathway",
        dlq_topic=rt.topics.dlq_pathway,
        handler=handle,
        accepted_types=frozenset({EPISODE_SUBMITTED, OUTCOME_REPORTED}),
    )
