"""`carepath tail` and `carepath replay` on the real broker.

Events are published the way the services publish them (CloudEvents headers, keyed by
episode); then the commands, driven through their argparse wiring, print exactly the expected
records as JSON lines.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from carepath.tail_command import (
    add_replay_arguments,
    add_tail_arguments,
    replay_command,
    tail_command,
)
from carepath_contracts.envelope import Envelope, derive_id
from carepath_contracts.events import (
    CARE_PLAN_UPDATED,
    OUTCOME_REPORTED,
    REFERRAL_CREATED,
    OutcomeReported,
    ReferralCreated,
)
from carepath_contracts.outcome import parse_outcome
from carepath_contracts.topics import Topics
from carepath_runtime.kafka_admin import create_topics
from carepath_runtime.kafka_broker import OutboundEvent, build_event

pytestmark = [pytest.mark.kafka]


def outcome(topics: Topics, episode: str, n: int) -> OutboundEvent:
    env = Envelope.new(event_type=OUTCOME_REPORTED, source="/test",
                       event_id=derive_id("tail-test", episode, str(n)))
    report = parse_outcome({"kind": "pain_score", "episode_id": episode, "pain_nrs": n % 11})
    return build_event(topic=topics.episodes, key=episode, envelope=env, body=OutcomeReported(
        episode_id=episode, report=report, reported_at=datetime.now(UTC)))


def referral(topics: Topics, episode: str) -> OutboundEvent:
    env = Envelope.new(event_type=REFERRAL_CREATED, source="/test",
                       event_id=derive_id("tail-test-ref", episode))
    return build_event(topic=topics.referrals, key=episode, envelope=env, body=ReferralCreated(
        referral_id=f"ref-{episode}", episode_id=episode, recommendation_id="rec-1",
        step="ablation.rfa", team="interventional_pain", priority="routine",
        status="requested", created_at=datetime.now(UTC)))


def plan(topics: Topics, episode: str) -> OutboundEvent:
    env = Envelope.new(event_type=CARE_PLAN_UPDATED, source="/test",
                       event_id=derive_id("tail-test-plan", episode))
    now = datetime.now(UTC).isoformat()  # a care plan has its times (CarePlanView)
    return build_event(topic=topics.care_plans, key=episode, envelope=env,
                       body={"episode_id": episode, "version": 1, "created_at": now,
                             "updated_at": now})


async def publish(bootstrap: str, events: list[OutboundEvent]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                enable_idempotence=True)
    await producer.start()
    try:
        for e in events:
            await producer.send_and_wait(e.topic, e.value, key=e.key.encode(),
                                         headers=[(k, v.encode()) for k, v in e.headers.items()])
    finally:
        await producer.stop()


def parse(add: Callable[[argparse.ArgumentParser], None], argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="carepath")
    add(parser)
    return parser.parse_args(argv)


@pytest.fixture(scope="module")
def story(kafka_bootstrap: str) -> dict[str, Any]:
    """Two batches on the episodes topic, separated by a recorded time; plus other topics."""
    ns = f"tail{uuid.uuid4().hex[:8]}"
    asyncio.run(create_topics(kafka_bootstrap, ns))
    topics = Topics(ns)
    a, b = f"ep-a-{uuid.uuid4().hex[:6]}", f"ep-b-{uuid.uuid4().hex[:6]}"
    before = [outcome(topics, a, 1), outcome(topics, b, 2), referral(topics, a)]
    asyncio.run(publish(kafka_bootstrap, before))
    time.sleep(0.02)  # record timestamps are in ms: keep the batches in distinct ms
    since = datetime.now(UTC)
    time.sleep(0.02)
    after = [outcome(topics, a, 3), outcome(topics, b, 4), outcome(topics, a, 5),
             plan(topics, a)]
    asyncio.run(publish(kafka_bootstrap, after))
    return {"ns": ns, "a": a, "b": b, "since": since, "before": before, "after": after,
            "bootstrap": kafka_bootstrap}


def run_tail(story: dict[str, Any], *argv: str) -> list[dict[str, Any]]:
    lines: list[str] = []
    args = parse(add_tail_arguments, [*argv, "--namespace", story["ns"],
                                      "--bootstrap", story["bootstrap"]])
    assert tail_command(args, emit=lambda r: lines.append(json.dumps(r))) == 0
    return [json.loads(line) for line in lines]  # what the command prints: JSON lines


def ids(events: list[OutboundEvent]) -> list[str]:
    return [e.headers["ce_id"] for e in events]


def test_tail_from_a_time_prints_the_events_published_since(story: dict[str, Any]) -> None:
    got = run_tail(story, "episodes", "--from-time", story["since"].isoformat(),
                   "--max", "3", "--timeout", "20")
    expected = [e for e in story["after"] if e.topic.endswith(".episodes")]
    assert sorted(r["headers"]["ce_id"] for r in got) == sorted(ids(expected))
    # Per episode, in publication order; each line has headers and the decoded body.
    for episode in (story["a"], story["b"]):
        mine = [r for r in got if r["key"] == episode]
        assert [r["headers"]["ce_id"] for r in mine] == \
            ids([e for e in expected if e.key == episode])
        assert all(r["body"]["episode_id"] == episode for r in mine)
    assert {r["headers"]["ce_type"] for r in got} == {OUTCOME_REPORTED}
    assert all(r["topic"] == f"{story['ns']}.episodes" for r in got)


def test_tail_filters_by_episode(story: dict[str, Any]) -> None:
    expected = [e for e in story["before"] + story["after"]
                if e.key == story["a"] and e.topic.endswith(".episodes")]
    got = run_tail(story, "episodes", "--from-beginning", "--episode", story["a"],
                   "--max", str(len(expected)), "--timeout", "30")
    assert [r["headers"]["ce_id"] for r in got] == ids(expected)


def test_tail_stops_after_the_timeout_without_new_records(story: dict[str, Any]) -> None:
    assert run_tail(story, "episodes", "--from-time", datetime.now(UTC).isoformat(),
                    "--timeout", "1") == []


def test_tail_from_an_offset_in_every_partition(story: dict[str, Any]) -> None:
    everything = run_tail(story, "episodes", "--from-beginning", "--max", "5",
                          "--timeout", "30")
    assert sorted(r["headers"]["ce_id"] for r in everything) == sorted(
        ids([e for e in story["before"] + story["after"] if e.topic.endswith(".episodes")]))
    expected = sorted(r["headers"]["ce_id"] for r in everything if r["offset"] >= 1)
    later = run_tail(story, "episodes", "--from-offset", "1", "--max", str(len(expected)),
                     "--timeout", "30")
    assert sorted(r["headers"]["ce_id"] for r in later) == expected


def test_tail_of_an_unknown_topic_fails(story: dict[str, Any]) -> None:
    args = parse(add_tail_arguments, ["no.such.topic", "--namespace", story["ns"],
                                      "--bootstrap", story["bootstrap"], "--timeout", "1"])
    assert tail_command(args, emit=lambda r: None) == 2


def test_replay_prints_an_episodes_history_across_topics_in_time_order(
        story: dict[str, Any]) -> None:
    got: list[dict[str, Any]] = []
    args = parse(add_replay_arguments, [story["a"], "--namespace", story["ns"],
                                        "--bootstrap", story["bootstrap"]])
    assert replay_command(args, emit=got.append) == 0
    mine = [e for e in story["before"] + story["after"] if e.key == story["a"]]
    assert [r["headers"]["ce_id"] for r in got] == ids(mine)
    assert {r["topic"].split(".", 1)[1] for r in got} == {"episodes", "referrals", "careplans"}
    assert [r["timestamp"] for r in got] == sorted(r["timestamp"] for r in got)

    everywhere: list[dict[str, Any]] = []
    args = parse(add_replay_arguments, [story["a"], "--all-partitions", "--namespace",
                                        story["ns"], "--bootstrap", story["bootstrap"]])
    assert replay_command(args, emit=everywhere.append) == 0
    assert everywhere == got

    args = parse(add_replay_arguments, ["ep-unknown", "--namespace", story["ns"],
                                        "--bootstrap", story["bootstrap"]])
    assert replay_command(args, emit=got.append) == 1
