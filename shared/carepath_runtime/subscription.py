"""What a subscriber declares: the event bodies it handles, as data.

A service lists its inputs as a mapping from body model to handler, in the spirit of
cosmicpython's ``EVENT_HANDLERS``::

    HANDLERS = {EpisodeSubmitted: on_submitted, OutcomeReported: on_outcome}

The event type each model stands for comes from the contracts (``BODY_MODELS``, inverted),
so what a consumer accepts and what its handler is handed are one declaration. A handler
receives a :class:`Delivery` whose ``body`` is the model it was registered for and whose
``key`` is the record's key (a record without a key is dead-lettered as undecodable: every
Carepath event is keyed, by its episode or its delivery job).

A handler either makes its effect durable itself and returns ``None``, or returns a
:class:`carepath_runtime.state_store.Change`: what to fold into which key of which state
store. The consumer then applies the change (state, outbox and projections in one Redis
transaction), publishes its events and commits, so a stateful handler holds no I/O at all.

:func:`carepath_runtime.service.subscribe` records a :class:`SubscriptionSpec` per
subscription on the :class:`~carepath_runtime.service.Runtime`; the consumer runs from it,
and the lag monitor and the AsyncAPI generator read it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel

from carepath_contracts.envelope import Envelope
from carepath_contracts.events import BODY_MODELS

if TYPE_CHECKING:
    from carepath_runtime.effects import Deferred
    from carepath_runtime.state_store import Change

B = TypeVar("B", bound=BaseModel)


@dataclass(frozen=True)
class Delivery(Generic[B]):
    """One decoded Kafka record, as a handler sees it: the envelope, the validated body of
    the model the handler was registered for, and where the record came from."""

    envelope: Envelope
    body: B
    key: str
    topic: str
    partition: int
    offset: int


Handler = Callable[[Delivery[Any]], Awaitable["Change[Any] | Deferred[Any] | None"]]
"""Handles one delivery: its effect made durable (``None``), a change for the consumer to
apply through its state store, or an effect for the consumer to apply with the rest of its
poll's (:mod:`carepath_runtime.effects`)."""

HandlerMap = Mapping[type[BaseModel], Handler]
"""Body model -> handler: a subscriber's inputs."""


@dataclass
class RetryConfig:
    max_attempts: int = 5
    backoff_ms: int = 200
    max_backoff_ms: int = 5000
    # Waiting out a dependency: first retry after transient_backoff_ms, doubling, capped.
    transient_backoff_ms: int = 100
    transient_max_backoff_ms: int = 2000


def event_types_of(model: type[BaseModel]) -> tuple[str, ...]:
    """The event types whose body is ``model`` (the contracts' ``BODY_MODELS`` inverted)."""
    return tuple(t for t, m in BODY_MODELS.items() if m is model)


@dataclass(frozen=True)
class Route:
    """One accepted event type: the model its body is validated against, and its handler."""

    event_type: str
    model: type[BaseModel]
    handler: Handler


@dataclass(frozen=True)
class SubscriptionSpec:
    """One reliable subscription: where it reads, as which group, what it accepts and how
    it handles each type, where its dead letters go and how failures are retried."""

    topic: str
    group: str
    dlq_topic: str
    routes: Mapping[str, Route]
    retry: RetryConfig = field(default_factory=RetryConfig)

    @property
    def accepted_types(self) -> frozenset[str]:
        return frozenset(self.routes)

    @classmethod
    def of(
        cls,
        *,
        topic: str,
        group: str,
        dlq_topic: str,
        handlers: HandlerMap,
        retry: RetryConfig | None = None,
        event_types: Iterable[str] | None = None,
    ) -> SubscriptionSpec:
        """The spec of a handler map. ``event_types`` is needed only when a model stands for
        several event types (the contracts give one model to more than one type): it names
        the ones this subscription takes."""
        routes = routes_of(handlers, event_types)
        return cls(topic=topic, group=group, dlq_topic=dlq_topic, routes=routes,
                   retry=retry or RetryConfig())


def routes_of(handlers: HandlerMap, event_types: Iterable[str] | None = None
              ) -> dict[str, Route]:
    """Event type -> route of a handler map, in the contracts' order of types."""
    wanted = None if event_types is None else frozenset(event_types)
    routes: dict[str, Route] = {}
    for model, handler in handlers.items():
        types = event_types_of(model)
        if not types:
            raise ValueError(f"{model.__name__} is the body of no event type in BODY_MODELS")
        if wanted is not None:
            types = tuple(t for t in types if t in wanted)
        elif len(types) > 1:
            raise ValueError(f"{model.__name__} is the body of several event types "
                             f"({', '.join(types)}): name the ones to accept (event_types)")
        if not types:
            raise ValueError(f"none of the event types of {model.__name__} is accepted")
        for event_type in types:
            routes[event_type] = Route(event_type, model, handler)
    if wanted is not None and not wanted <= set(routes):
        raise ValueError(f"no handler for {sorted(wanted - set(routes))}")
    order = list(BODY_MODELS)
    return {t: routes[t] for t in sorted(routes, key=order.index)}
