"""One real example of every event type, produced by running the services' own pure code.

A sample episode is submitted, evaluated by the pathway, folded into a care plan, a referral
is accepted, another escalated, an outcome reported and a notification attempted, all on a
fixed clock, so the examples are deterministic. Every body goes through ``build_event``
(validated against its model) exactly as the services publish it. ``ce_time`` is set to the
fixed clock (the services stamp the wall clock).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from carepath_contracts.envelope import Cause, Envelope, derive_id
from carepath_contracts.episode import Episode
from carepath_contracts.events import (
    BODY_MODELS,
    EPISODE_SUBMITTED,
    OUTCOME_REPORTED,
    PATHWAY_STATUS,
    RECOMMENDATIONS_ISSUED,
    EpisodeSubmitted,
    OutcomeReported,
    PathwayStatus,
    RecommendationsIssued,
)
from carepath_contracts.outcome import parse_outcome
from carepath_contracts.topics import Topics
from carepath_runtime.kafka_broker import OutboundEvent, build_event

EXAMPLE_TIME = datetime(2025, 3, 21, 9, 30, tzinfo=UTC)
EXAMPLE_EPISODE_ID = "ep-7f3a9c21"
EXAMPLE_EPISODE: dict[str, Any] = {
    "episode_id": EXAMPLE_EPISODE_ID,
    "region": "lumbar",
    "pain_nrs": 7,
    "facet_injections": [
        {"levels": ["L4-L5", "L5-S1"], "relief_percent": 20, "technically_adequate": True}
    ],
    "medial_branch_blocks": [{"relief_percent": 85, "anesthetic": "lidocaine"}],
    "imaging_done": ["xray", "mri"],
    "imaging_findings": ["facet_arthropathy"],
    "radicular_pain": False,
    "neurological_deficit": "none",
    "bowel_bladder_dysfunction": False,
    "red_flags": [],
    "phq9": 4,
    "gad7": 3,
}


@dataclass(frozen=True)
class Example:
    topic: str
    key: str
    headers: dict[str, str]
    body: dict[str, Any]


def _notification_bodies(event_id: str, at: datetime) -> dict[str, dict[str, Any]]:
    """Bodies for the notification types (their producer's state machine is not pure)."""
    sub = "radiology-webhook"
    return {
        "carepath.notification.attempted.v1": {
            "event_id": event_id, "subscription_id": sub, "channel": "webhook", "attempt": 1,
            "outcome": "delivered", "status_code": 204, "error": None, "at": at.isoformat(),
        },
        "carepath.notification.failed.v1": {
            "event_id": event_id, "subscription_id": sub, "channel": "webhook", "attempt": 8,
            "outcome": "failed", "status_code": 503,
            "error": "gave up after 8 attempts: HTTP 503", "at": at.isoformat(),
        },
        "carepath.notification.redriven.v1": {
            "job_id": derive_id("example-job", event_id, sub), "event_id": event_id,
            "subscription_id": sub, "channel": "webhook", "previous_attempts": 8,
            "redrive": 1, "at": at.isoformat(),
        },
    }


def build_examples(namespace: str = "carepath") -> dict[str, Example]:
    """The first event of each type in the sample story, by event type."""
    from carepath_pathway.domain import get_profile
    from carepath_pathway.episode_state import on_submitted
    from carepath_referrals.domain import (
        Accept,
        Actor,
        apply_action,
        apply_recommendations,
        apply_referral_change,
        escalate,
        new_plan,
    )
    from carepath_referrals.domain.routing import DEFAULT_ROUTING
    from carepath_referrals.plan_events import plan_events

    topics = Topics(namespace)
    out: dict[str, Example] = {}

    def add(event: OutboundEvent, at: datetime) -> None:
        headers = {**event.headers, "ce_time": at.isoformat()}
        out.setdefault(headers["ce_type"], Example(
            event.topic, event.key, headers, orjson.loads(event.value)))

    ep_id = EXAMPLE_EPISODE_ID
    t0 = EXAMPLE_TIME
    episode = Episode.model_validate(EXAMPLE_EPISODE)
    submitted = Envelope.new(event_type=EPISODE_SUBMITTED, source="/carepath/intake",
                             event_id=derive_id(EPISODE_SUBMITTED, ep_id, "example"), time=t0)
    add(build_event(topic=topics.episodes, key=ep_id, envelope=submitted, body=EpisodeSubmitted(
        episode_id=ep_id, episode=episode, submitted_at=t0)), t0)

    t1 = t0 + timedelta(seconds=1)
    state, result = on_submitted(None, episode, get_profile("seed"))
    recs_env = Envelope.new(event_type=RECOMMENDATIONS_ISSUED, source="/carepath/pathway",
                            event_id=derive_id(RECOMMENDATIONS_ISSUED, submitted.id),
                            causation=submitted, time=t1)
    recs = RecommendationsIssued.model_validate({
        **result.model_dump(mode="json"), "episode_id": ep_id,
        "evaluation_seq": state.evaluation_seq, "trigger_event_id": submitted.id,
    })
    add(build_event(topic=topics.recommendations, key=ep_id, envelope=recs_env, body=recs), t1)
    status_env = Envelope.new(event_type=PATHWAY_STATUS, source="/carepath/pathway",
                              event_id=derive_id(PATHWAY_STATUS, submitted.id),
                              causation=submitted, time=t1)
    add(build_event(topic=topics.pathway_status, key=ep_id, envelope=status_env,
                    body=PathwayStatus(
                        episode_id=ep_id, evaluation_seq=state.evaluation_seq,
                        pathway_version=result.pathway_version, profile=result.profile,
                        urgent=result.urgent,
                        active_steps=[r.step for r in result.recommendations],
                        missing_fields=[m.field for m in result.missing_data], updated_at=t1)), t1)

    t2 = t1 + timedelta(seconds=1)
    plan, _new, _cancelled = apply_recommendations(new_plan(ep_id, t2), recs, DEFAULT_ROUTING, t2)
    for event in plan_events(topics, None, plan, recs_env):
        add(event, t2)

    t3 = t2 + timedelta(hours=2)
    referrals = sorted(plan.referrals.values(), key=lambda r: r.step)
    first = referrals[0]
    actor = Actor(subject="pain@example.org", team=first.team, role="team_member")
    accepted, _audit = apply_action(first, Accept(), actor, t3)
    after_accept = apply_referral_change(plan, accepted)
    action = Cause(id=derive_id("referral-action", first.referral_id, "example"))
    for event in plan_events(topics, plan, after_accept, action):
        add(event, t3)

    late = referrals[-1]
    t4 = late.due_at + timedelta(hours=1)
    escalated, escalation = escalate(late, t4)
    after_escalation = apply_referral_change(after_accept, escalated)
    for event in plan_events(topics, after_accept, after_escalation, None, [escalation]):
        add(event, t4)

    t5 = t4 + timedelta(days=14)
    report = parse_outcome({"kind": "rfa", "episode_id": ep_id, "step": "ablation.rfa",
                            "relief_percent": 80})
    outcome_env = Envelope.new(event_type=OUTCOME_REPORTED, source="/carepath/referrals",
                               event_id=derive_id(OUTCOME_REPORTED, first.referral_id),
                               causation=action, time=t5)
    add(build_event(topic=topics.episodes, key=ep_id, envelope=outcome_env, body=OutcomeReported(
        episode_id=ep_id, report=report, reported_at=t5, referral_id=first.referral_id)), t5)

    created = out["carepath.referral.created.v1"]
    t6 = t2 + timedelta(seconds=1)
    for event_type, body in _notification_bodies(created.headers["ce_id"], t6).items():
        if event_type not in BODY_MODELS:
            continue
        job_id = derive_id("example-job", created.headers["ce_id"], "radiology-webhook")
        env = Envelope.new(event_type=event_type, source="/carepath/notifications",
                           event_id=derive_id(event_type, job_id), time=t6,
                           correlation_id=created.headers["ce_id"])
        add(build_event(topic=topics.notification_attempts, key=job_id, envelope=env,
                        body=BODY_MODELS[event_type].model_validate(body)), t6)
    return out


def dead_letter_example(original: Example, group: str, dlq_topic: str) -> Example:
    """What a dead-lettered copy of ``original`` looks like (see consumer.dead_letter)."""
    headers = {
        **original.headers,
        "dlq_kind": "rejected",
        "dlq_cause": "PermanentError: the input cannot be processed (example)",
        "dlq_group": group,
        "dlq_original_topic": original.topic,
        "dlq_original_partition": "3",
        "dlq_original_offset": "1207",
        "dlq_attempts": "1",
        "dlq_failed_at": (EXAMPLE_TIME + timedelta(minutes=5)).isoformat(),
    }
    return Example(dlq_topic, original.key, headers, original.body)
