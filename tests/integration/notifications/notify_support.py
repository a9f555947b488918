"""Helpers for the notifications tests on the real broker: processes, events, job states."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import redis

from carepath_contracts.audit import AuditEntry
from carepath_contracts.envelope import Envelope
from carepath_contracts.events import (
    CARE_PLAN_UPDATED,
    PATHWAY_STATUS,
    REFERRAL_CREATED,
    REFERRAL_ESCALATED,
    EscalationEvent,
    PathwayStatus,
    ReferralCreated,
)
from carepath_runtime.kafka_admin import create_topics
from carepath_runtime.kafka_broker import OutboundEvent, build_event
from carepath_testkit.processes import new_webhook_secret
from support.processes import ServiceProcess, free_port

SECRET = new_webhook_secret()  # this test session's receivers and subscriptions share it
COORDINATOR = {"Authorization": "Bearer dev-coordinator-token"}
RADIOLOGY = {"Authorization": "Bearer dev-radiology-token"}
SURGERY = {"Authorization": "Bearer dev-surgery-token"}


def new_namespace(kafka: str, prefix: str) -> str:
    ns = f"{prefix}{uuid.uuid4().hex[:8]}"
    asyncio.run(create_topics(kafka, ns))
    return ns


def base_env(ns: str, kafka: str, redis_url: str) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": kafka,
        "REDIS_URL": redis_url,
        "CAREPATH_NAMESPACE": ns,
        "CAREPATH_WEBHOOK_URL": "",
        "CAREPATH_LOG_LEVEL": "INFO",
        "CAREPATH_NOTIFY_BACKOFF_BASE_S": "0.05",
        "CAREPATH_NOTIFY_BACKOFF_MAX_S": "1.0",
        "CAREPATH_NOTIFY_LEASE_S": "5",
    }


def allowlist(*receivers: ServiceProcess) -> dict[str, str]:
    """The environment that allowlists these loopback receivers for the SSRF guard."""
    return {"CAREPATH_WEBHOOK_ALLOWLIST": ",".join(f"127.0.0.1:{r.port}" for r in receivers)}


def start_receiver(ns: str, name: str, *args: str) -> ServiceProcess:
    port = free_port()
    proc = ServiceProcess(f"receiver-{name}", "carepath.webhook_receiver", port,
                          {"CAREPATH_NAMESPACE": ns, "CAREPATH_WEBHOOK_SECRET": SECRET},
                          ["--port", str(port), *args])
    proc.start(health_path="/received")
    return proc


def start_notifications(ns: str, env: dict[str, str]) -> ServiceProcess:
    port = free_port()
    proc = ServiceProcess("notifications", "carepath_notifications.main", port,
                          {**env, "NOTIFICATIONS_PORT": str(port)})
    proc.start()
    return proc


def write_subscriptions(path: Path, subs: list[dict[str, Any]]) -> str:
    path.write_bytes(orjson.dumps({"subscriptions": subs}))
    return str(path)


def webhook_sub(sid: str, url: str, types: list[str] | None = None, kind: str = "system",
                team: str | None = None) -> dict[str, Any]:
    return {"id": sid, "subscriber": sid, "kind": kind, "team": team,
            "event_types": types or ["carepath.referral.created.v1"], "channel": "webhook",
            "url": url, "secret": SECRET}


def referral_created(topic: str, i: int, team: str, tag: str) -> OutboundEvent:
    episode = f"ep-{tag}-{i:03d}"
    env = Envelope.new(event_type=REFERRAL_CREATED, source="/test",
                       event_id=f"ev-{tag}-{i:03d}")
    body = ReferralCreated(
        referral_id=f"ref-{tag}-{i:03d}", episode_id=episode, recommendation_id=f"rec-{i}",
        step="imaging.mri", team=team, priority="routine", status="requested",
        created_at=datetime.now(UTC),
    )
    return build_event(topic=topic, key=episode, envelope=env, body=body)


def referral_escalated(topic: str, i: int, team: str, tag: str) -> OutboundEvent:
    episode = f"ep-{tag}-esc-{i:03d}"
    env = Envelope.new(event_type=REFERRAL_ESCALATED, source="/test",
                       event_id=f"esc-{tag}-{i:03d}")
    body = escalation_body(f"ref-{tag}-esc-{i}", episode, team, [team, "care_coordinator"])
    return build_event(topic=topic, key=episode, envelope=env, body=body)


ESCALATION_DUE = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)


def escalation_body(referral_id: str, episode: str, team: str, notify: list[str],
                    priority: str = "routine", reason: str | None = None,
                    details: dict[str, Any] | None = None) -> EscalationEvent:
    """A complete escalation body (the contract's model) for an imaging referral."""
    at = ESCALATION_DUE.replace(hour=10)
    audit = AuditEntry(
        audit_id=f"audit-{referral_id}", referral_id=referral_id, episode_id=episode,
        revision=2, action="escalate", actor_subject="system:carepath-referrals",
        actor_team="care_coordinator", actor_role="admin", at=at, reason=reason,
        from_status="requested", to_status="requested", from_business_status="awaiting-triage",
        to_business_status="overdue-escalated", details=details or {})
    return EscalationEvent(
        escalation_id=f"esc-{referral_id}", referral_id=referral_id, episode_id=episode,
        recommendation_id=f"rec-{referral_id}", step="imaging.mri", team=team, queue=team,
        priority=priority, status="requested", previous_business_status="awaiting-triage",
        due_at=ESCALATION_DUE, escalated_at=at, overdue_seconds=3600, notify=notify,
        audit=audit)


def status_event(topic: str, episode: str, seq: int, event_id: str) -> OutboundEvent:
    env = Envelope.new(event_type=PATHWAY_STATUS, source="/test", event_id=event_id)
    body = PathwayStatus(
        episode_id=episode, evaluation_seq=seq, pathway_version="test", profile="seed",
        urgent=False, active_steps=["imaging.mri"], missing_fields=[],
        updated_at=datetime.now(UTC),
    )
    return build_event(topic=topic, key=episode, envelope=env, body=body)


def careplan_event(topic: str, episode: str, version: int, event_id: str) -> OutboundEvent:
    env = Envelope.new(event_type=CARE_PLAN_UPDATED, source="/test", event_id=event_id)
    now = datetime.now(UTC).isoformat()  # a care plan has its times (CarePlanView)
    body = {"episode_id": episode, "version": version, "referrals": {}, "created_at": now,
            "updated_at": now}
    return build_event(topic=topic, key=episode, envelope=env, body=body)


class Jobs:
    """Read delivery job records straight from Redis."""

    def __init__(self, redis_url: str, ns: str) -> None:
        self.r = redis.Redis.from_url(redis_url)
        self.ns = ns

    def status(self, sub: str, event_id: str) -> str | None:
        raw = self.r.hget(f"{self.ns}:{{{self.ns}:notify}}:job:{sub}:{event_id}", "status")
        return raw.decode() if isinstance(raw, bytes) else None

    def field(self, sub: str, event_id: str, name: str) -> str | None:
        raw = self.r.hget(f"{self.ns}:{{{self.ns}:notify}}:job:{sub}:{event_id}", name)
        return raw.decode() if isinstance(raw, bytes) else None

    def terminal(self, pairs: list[tuple[str, str]]) -> bool:
        return all(self.status(s, e) in ("delivered", "dead") for s, e in pairs)

    def close(self) -> None:
        self.r.close()


class SseEvent:
    def __init__(self, event: str, data: str, event_id: str | None) -> None:
        self.event, self.data, self.id = event, data, event_id

    def json(self) -> Any:
        return orjson.loads(self.data)


def sse_events(lines: Iterator[str]) -> Iterator[SseEvent]:
    """Parse a text/event-stream (the subset the service emits)."""
    event: str = "message"
    event_id: str | None = None
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                yield SseEvent(event, "\n".join(data), event_id)
            event, event_id, data = "message", None, []
            continue
        if line.startswith(":"):  # a keepalive: surfaced so that readers can check the clock
            yield SseEvent(":", line[1:].strip(), None)
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id":
            event_id = value
