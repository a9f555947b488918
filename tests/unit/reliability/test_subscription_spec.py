"""A subscriber's inputs are declared as data: body model -> handler, the accepted event types
read from the contracts (BODY_MODELS inverted), never restated beside the handlers."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from carepath_contracts.events import (
    BODY_MODELS,
    EPISODE_SUBMITTED,
    NOTIFICATION_ATTEMPTED,
    NOTIFICATION_FAILED,
    OUTCOME_REPORTED,
    EpisodeSubmitted,
    OutcomeReported,
)
from carepath_runtime.subscription import Delivery, SubscriptionSpec, event_types_of


async def on_submitted(delivery: Delivery[EpisodeSubmitted]) -> None:
    return None


async def on_outcome(delivery: Delivery[OutcomeReported]) -> None:
    return None


def spec(handlers: Any, **kwargs: Any) -> SubscriptionSpec:
    return SubscriptionSpec.of(topic="ns.episodes", group="ns.pathway", dlq_topic="ns.dlq",
                               handlers=handlers, **kwargs)


def test_the_accepted_types_are_the_contracts_types_of_the_handled_models() -> None:
    s = spec({OutcomeReported: on_outcome, EpisodeSubmitted: on_submitted})
    assert s.accepted_types == {EPISODE_SUBMITTED, OUTCOME_REPORTED}
    assert list(s.routes) == [EPISODE_SUBMITTED, OUTCOME_REPORTED]  # the contracts' order
    assert s.routes[OUTCOME_REPORTED].handler is on_outcome
    assert s.routes[OUTCOME_REPORTED].model is OutcomeReported


def test_every_model_of_the_contracts_maps_back_to_its_types() -> None:
    for event_type, model in BODY_MODELS.items():
        assert event_type in event_types_of(model)


def test_a_model_standing_for_several_types_needs_them_named() -> None:
    shared = BODY_MODELS[NOTIFICATION_FAILED]  # attempted and failed share their model
    assert set(event_types_of(shared)) == {NOTIFICATION_ATTEMPTED, NOTIFICATION_FAILED}
    with pytest.raises(ValueError, match="several event types"):
        spec({shared: on_submitted})
    narrowed = spec({shared: on_submitted}, event_types={NOTIFICATION_FAILED})
    assert narrowed.accepted_types == {NOTIFICATION_FAILED}


def test_a_model_that_is_no_event_body_is_refused() -> None:
    class NotAnEvent(BaseModel):
        x: int

    with pytest.raises(ValueError, match="no event type"):
        spec({NotAnEvent: on_submitted})


def test_a_named_type_without_a_handler_is_refused() -> None:
    with pytest.raises(ValueError, match="no handler"):
        spec({EpisodeSubmitted: on_submitted}, event_types={EPISODE_SUBMITTED, OUTCOME_REPORTED})
