"""Topic names, partition counts and configs: the one list every service and script reads."""

from __future__ import annotations

from dataclasses import dataclass, field

PARTITIONS = 6
# Kafka's default max.message.bytes (1 MiB + batch overhead), set on every topic explicitly;
# the producer's max_request_size (1 MiB) is the tighter bound, so events are held to it.
MAX_MESSAGE_BYTES = 1_048_576


def replication_for(brokers: int) -> tuple[int, int]:
    """(replication factor, min.insync.replicas) for a cluster of ``brokers`` brokers.

    Three copies where there are three brokers or more, two of which must acknowledge a
    write (acks=all): one broker may be down without losing a write or refusing one. One or
    two brokers: every broker holds a copy and one acknowledgement is enough.
    """
    if brokers < 1:
        raise ValueError("a cluster has at least one broker")
    if brokers >= 3:
        return 3, 2
    return brokers, 1


@dataclass(frozen=True)
class TopicSpec:
    suffix: str
    partitions: int = PARTITIONS
    compacted: bool = False
    config: dict[str, str] = field(default_factory=dict)
    description: str = ""
    max_message_bytes: int = MAX_MESSAGE_BYTES

    def name(self, namespace: str) -> str:
        return f"{namespace}.{self.suffix}"

    def kafka_config(self, brokers: int = 1) -> dict[str, str]:
        cfg = {"min.insync.replicas": str(replication_for(brokers)[1]),
               "max.message.bytes": str(self.max_message_bytes)}
        if self.compacted:
            cfg.update(
                {
                    "cleanup.policy": "compact",
                    "min.cleanable.dirty.ratio": "0.1",
                    "segment.ms": "3600000",
                    "delete.retention.ms": "86400000",
                }
            )
        cfg.update(self.config)
        return cfg


# Intake's events: episodes submitted and outcomes reported. One topic, keyed by episode
# id, so an episode's submission and its outcomes stay in order.
EPISODES = TopicSpec("episodes", description="episode submitted, outcome reported")
RECOMMENDATIONS = TopicSpec("pathway.recommendations", description="pathway answers")
PATHWAY_STATUS = TopicSpec(
    "pathway.status", compacted=True, description="latest pathway status per episode"
)
REFERRALS = TopicSpec("referrals", description="referral created and status changes")
CARE_PLANS = TopicSpec("careplans", compacted=True, description="latest care plan per episode")
AUDIT = TopicSpec("audit", description="who did what, when and why")
NOTIFICATION_ATTEMPTS = TopicSpec(
    "notifications.attempts", description="delivery attempts and outcomes"
)
DLQ_PATHWAY = TopicSpec("dlq.pathway", partitions=1, description="dead letters of pathway")
DLQ_REFERRALS = TopicSpec("dlq.referrals", partitions=1, description="dead letters of referrals")
DLQ_NOTIFICATIONS = TopicSpec(
    "dlq.notifications", partitions=1, description="dead letters of notifications"
)

ALL_TOPICS: tuple[TopicSpec, ...] = (
    EPISODES,
    RECOMMENDATIONS,
    PATHWAY_STATUS,
    REFERRALS,
    CARE_PLANS,
    AUDIT,
    NOTIFICATION_ATTEMPTS,
    DLQ_PATHWAY,
    DLQ_REFERRALS,
    DLQ_NOTIFICATIONS,
)


def max_message_bytes(topic: str) -> int:
    """The largest record ``topic`` (a namespaced name) takes."""
    for spec in sorted(ALL_TOPICS, key=lambda t: -len(t.suffix)):
        if topic.endswith("." + spec.suffix):
            return spec.max_message_bytes
    return MAX_MESSAGE_BYTES


class Topics:
    """Resolved topic names for one namespace."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.episodes = EPISODES.name(namespace)
        self.recommendations = RECOMMENDATIONS.name(namespace)
        self.pathway_status = PATHWAY_STATUS.name(namespace)
        self.referrals = REFERRALS.name(namespace)
        self.care_plans = CARE_PLANS.name(namespace)
        self.audit = AUDIT.name(namespace)
        self.notification_attempts = NOTIFICATION_ATTEMPTS.name(namespace)
        self.dlq_pathway = DLQ_PATHWAY.name(namespace)
        self.dlq_referrals = DLQ_REFERRALS.name(namespace)
        self.dlq_notifications = DLQ_NOTIFICATIONS.name(namespace)

    def group(self, service: str) -> str:
        """The consumer group of a service in this namespace (isolated per namespace)."""
        return f"{self.namespace}.{service}"

    def all(self) -> list[tuple[str, TopicSpec]]:
        return [(spec.name(self.namespace), spec) for spec in ALL_TOPICS]
