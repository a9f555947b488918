"""Topic names and configs."""

from __future__ import annotations

from carepath_contracts.topics import ALL_TOPICS, CARE_PLANS, PATHWAY_STATUS, Topics


def test_latest_state_streams_are_compacted() -> None:
    assert PATHWAY_STATUS.kafka_config()["cleanup.policy"] == "compact"
    assert CARE_PLANS.kafka_config()["cleanup.policy"] == "compact"


def test_event_streams_are_not_compacted() -> None:
    compacted = {spec.suffix for spec in ALL_TOPICS if spec.compacted}
    assert compacted == {"pathway.status", "careplans"}


def test_every_consumer_has_a_dead_letter_topic() -> None:
    names = {name for name, _ in Topics("ns").all()}
    assert {"ns.dlq.pathway", "ns.dlq.referrals", "ns.dlq.notifications"} <= names


def test_namespace_prefixes_every_topic() -> None:
    assert all(name.startswith("ns.") for name, _ in Topics("ns").all())
    assert len({name for name, _ in Topics("ns").all()}) == len(ALL_TOPICS)
