"""What each service publishes, and what each event means: the AsyncAPI contract's source.

Services publish with ``broker.publish`` (see :mod:`carepath_runtime.kafka_broker`), which
FastStream does not document. :func:`declare_publishers` declares one documented FastStream
publisher per event type a service emits (title = the event type, schema = its body model), so
that ``AsyncAPI(broker)`` lists them next to the subscribers that
:func:`carepath_runtime.consumer.reliable_subscriber` registered (their topics, groups, accepted
types and dead-letter topics are read from the broker itself). ``carepath asyncapi`` calls it on
each service's app; a service may call it from ``create_app`` as well. Declaring a publisher
sends nothing (FastStream's publisher ``start`` is a no-op).

``EVENTS`` says for each event type when it is emitted, its key and its ordering guarantee;
``carepath asyncapi`` renders it into docs/asyncapi/ and docs/events.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from pydantic import BaseModel

from carepath_contracts import events as ev
from carepath_contracts import topics as tp
from carepath_contracts.topics import TopicSpec
from carepath_runtime.service import Runtime


@dataclass(frozen=True)
class Publication:
    """Event types a service publishes to one topic."""

    topic: TopicSpec
    event_types: tuple[str, ...]


@dataclass(frozen=True)
class EventDoc:
    summary: str
    emitted_when: str
    key: str
    ordering: str


PUBLISHES: Final[dict[str, tuple[Publication, ...]]] = {
    "intake": (Publication(tp.EPISODES, (ev.EPISODE_SUBMITTED, ev.OUTCOME_REPORTED)),),
    "pathway": (
        Publication(tp.RECOMMENDATIONS, (ev.RECOMMENDATIONS_ISSUED,)),
        Publication(tp.PATHWAY_STATUS, (ev.PATHWAY_STATUS,)),
    ),
    "referrals": (
        Publication(tp.REFERRALS, (ev.REFERRAL_CREATED, ev.REFERRAL_STATUS_CHANGED,
                                   ev.REFERRAL_ESCALATED)),
        Publication(tp.AUDIT, (ev.AUDIT_RECORDED,)),
        Publication(tp.CARE_PLANS, (ev.CARE_PLAN_UPDATED,)),
        Publication(tp.EPISODES, (ev.OUTCOME_REPORTED,)),
    ),
    "notifications": (Publication(
        tp.NOTIFICATION_ATTEMPTS,
        tuple(t for t in ev.BODY_MODELS if t.startswith("carepath.notification.")),
    ),),
}

SERVICE_DESCRIPTIONS: Final[dict[str, str]] = {
    "intake": "Accepts episodes (JSON or FHIR R4 Bundle) and outcome reports over HTTP and "
              "publishes them as events.",
    "pathway": "Evaluates each episode with the clinical pathway and publishes its "
               "recommendations and the compacted pathway status.",
    "referrals": "Folds recommendations into each episode's versioned care plan, one referral "
                 "per recommendation, and publishes referral, audit and care-plan events.",
    "notifications": "Delivers referral events to subscribers as signed webhooks.",
}

_PER_EPISODE = ("per episode: the key is the episode id, so one episode's events share a "
                "partition and arrive in the order they were published")

EVENTS: Final[dict[str, EventDoc]] = {
    ev.EPISODE_SUBMITTED: EventDoc(
        "An episode was submitted.",
        "Intake accepted an episode: POST /episodes, or POST /fhir/Bundle once the Bundle is "
        "mapped. Published (acks=all) before the 202 answer.",
        "episode_id",
        _PER_EPISODE + "; an episode's submission precedes its outcome reports",
    ),
    ev.OUTCOME_REPORTED: EventDoc(
        "A team reported the outcome of a step.",
        "POST /episodes/{id}/outcomes at intake, or a referral completed with an outcome "
        "(referrals service; then referral_id is set).",
        "episode_id",
        _PER_EPISODE + "; on the same topic and partition as the episode's submission",
    ),
    ev.RECOMMENDATIONS_ISSUED: EventDoc(
        "The pathway's recommendations for an episode.",
        "After the pathway evaluated an episode: on each submission and each outcome report.",
        "episode_id",
        _PER_EPISODE + "; evaluation_seq grows by one per evaluation",
    ),
    ev.PATHWAY_STATUS: EventDoc(
        "The latest pathway status of an episode (for dashboards).",
        "With every recommendations event, on the compacted status topic.",
        "episode_id",
        _PER_EPISODE + "; compacted: after compaction only the latest status per episode "
        "remains",
    ),
    ev.REFERRAL_CREATED: EventDoc(
        "A referral (a FHIR-style Task for one team) was created.",
        "The referrals service created a referral for a new recommendation.",
        "episode_id",
        _PER_EPISODE + "; a referral's creation precedes its status changes",
    ),
    ev.REFERRAL_STATUS_CHANGED: EventDoc(
        "A referral changed status.",
        "A team or coordinator acted on a referral (claim, accept, decline, schedule, start, "
        "complete, cancel, reroute), a withdrawn recommendation cancelled it, or it was "
        "escalated.",
        "episode_id",
        _PER_EPISODE + "; per referral in revision order",
    ),
    ev.REFERRAL_ESCALATED: EventDoc(
        "An overdue referral was escalated.",
        "The deadline sweep found an open referral not started by its due time (once per "
        "due time).",
        "episode_id",
        _PER_EPISODE + "; after the status change that records the escalation",
    ),
    ev.CARE_PLAN_UPDATED: EventDoc(
        "The episode's care plan changed (a new version).",
        "Any change to the plan: recommendations applied, a referral action, an escalation.",
        "episode_id",
        _PER_EPISODE + "; compacted: the latest plan per episode remains; version grows",
    ),
    ev.AUDIT_RECORDED: EventDoc(
        "Who did what to a referral, when and why.",
        "One per referral change, its creation included.",
        "episode_id",
        _PER_EPISODE + "; per referral in revision order",
    ),
    ev.NOTIFICATION_ATTEMPTED: EventDoc(
        "One delivery attempt of a notification and its outcome.",
        "After each attempt to deliver an event to a subscription (webhook or email): "
        "delivered, retry or failed.",
        "delivery job id (one job per event and subscription)",
        "per delivery job: its attempts in order",
    ),
    ev.NOTIFICATION_FAILED: EventDoc(
        "A notification was given up (dead-lettered).",
        "When a delivery job reaches its attempt cap or meets a permanent error; published "
        "after that attempt's notification.attempted.",
        "delivery job id",
        "per delivery job: after its last attempt",
    ),
    "carepath.notification.redriven.v1": EventDoc(
        "A dead-lettered notification was put back on the delivery queue.",
        "An operator redrove a failed delivery job.",
        "delivery job id",
        "per delivery job: after the failure it redrives",
    ),
}

DLQ_HEADERS: Final[dict[str, str]] = {
    "dlq_kind": "undecodable (bad envelope or body), rejected (a permanent error) or "
                "handler_failed (the retry cap was reached)",
    "dlq_cause": "the error, as '<type>: <message>' (at most 2000 characters)",
    "dlq_group": "the consumer group that gave up",
    "dlq_original_topic": "where the record came from",
    "dlq_original_partition": "its partition",
    "dlq_original_offset": "its offset",
    "dlq_attempts": "how often it was tried",
    "dlq_failed_at": "when it was dead-lettered (ISO 8601)",
}


def declare_publishers(
    rt: Runtime, models: Mapping[str, type[BaseModel]] | None = None
) -> list[Any]:
    """Declare the service's documented publishers on its broker (see the module doc).

    ``models`` overrides the body model of some types (by default each type is documented with
    its model in the contract's registry, ``BODY_MODELS``).
    """
    chosen = {**ev.BODY_MODELS, **(models or {})}
    declared: list[Any] = []
    for pub in PUBLISHES.get(rt.service, ()):
        topic = pub.topic.name(rt.settings.namespace)
        for event_type in pub.event_types:
            declared.append(rt.broker.publisher(
                topic, title=event_type, description=EVENTS[event_type].summary,
                schema=chosen[event_type],
            ))
    return declared
