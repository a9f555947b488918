"""The pathway's Kafka handler on FastStream's TestKafkaBroker (fast, in process).

Kafka is faked here; Redis is real (the handler's state store). Delivery guarantees are
tested on the real broker in tests/integration and tests/e2e.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from faststream.kafka import TestKafkaBroker
from faststream.kafka.annotations import KafkaMessage

from carepath_contracts.envelope import Envelope
from carepath_contracts.events import EPISODE_SUBMITTED, OUTCOME_REPORTED
from carepath_pathway import handlers
from carepath_pathway.episode_store import episode_store
from carepath_runtime.consumer import raw_decoder
from carepath_runtime.service import make_runtime
from carepath_runtime.settings import Settings

pytestmark = [pytest.mark.redis]


@pytest.fixture()
def runtime(redis_url: str) -> Any:
    settings = Settings(redis_url=redis_url, carepath_namespace=f"c{uuid.uuid4().hex[:8]}")
    rt = make_runtime("pathway", settings)
    handlers.register(rt, episode_store(rt))
    captured: dict[str, list[tuple[dict[str, str], dict[str, Any]]]] = {}

    for topic in (rt.topics.recommendations, rt.topics.pathway_status, rt.topics.dlq_pathway):
        def make(t: str) -> Any:
            async def capture(msg: KafkaMessage) -> None:
                raw = msg.body
                try:
                    body = orjson.loads(raw or b"null")
                except orjson.JSONDecodeError:
                    body = raw  # a dead letter keeps the original bytes
                captured.setdefault(t, []).append((dict(msg.headers), body))
            return capture
        rt.broker.subscriber(topic, group_id=f"capture-{topic}", decoder=raw_decoder)(make(topic))
    rt.captured = captured  # type: ignore[attr-defined]
    return rt


def submitted(episode: dict[str, Any], event_id: str) -> tuple[bytes, dict[str, str]]:
    env = Envelope.new(event_type=EPISODE_SUBMITTED, source="/test", event_id=event_id)
    body = {"episode_id": episode["episode_id"], "episode": episode,
            "submitted_at": datetime.now(UTC).isoformat()}
    return orjson.dumps(body), env.to_headers()


async def test_an_episode_yields_recommendations_and_status(runtime: Any) -> None:
    value, headers = submitted({"episode_id": "ep-1", "region": "lumbar",
                                "medial_branch_blocks": [{"relief_percent": 75}]}, "ev-1")
    async with TestKafkaBroker(runtime.broker) as br:
        await br.publish(value, runtime.topics.episodes, key=b"ep-1", headers=headers)
    captured = runtime.captured
    [(rec_headers, recs)] = captured[runtime.topics.recommendations]
    assert rec_headers["ce_type"] == "carepath.pathway.recommendations.v1"
    assert rec_headers["ce_causationid"] == "ev-1"
    assert recs["episode_id"] == "ep-1" and recs["evaluation_seq"] == 1
    assert "ablation.rfa" in [r["step"] for r in recs["recommendations"]]
    assert all(r["recommendation_id"] for r in recs["recommendations"])
    [(_, status)] = captured[runtime.topics.pathway_status]
    assert status["active_steps"] == [r["step"] for r in recs["recommendations"]]


async def test_a_redelivered_episode_is_not_evaluated_twice(runtime: Any) -> None:
    value, headers = submitted({"episode_id": "ep-2", "region": "cervical"}, "ev-2")
    async with TestKafkaBroker(runtime.broker) as br:
        await br.publish(value, runtime.topics.episodes, key=b"ep-2", headers=headers)
        await br.publish(value, runtime.topics.episodes, key=b"ep-2", headers=headers)
    recs = runtime.captured[runtime.topics.recommendations]
    assert len(recs) == 1


async def test_undecodable_and_invalid_events_are_dead_lettered_with_their_cause(
    runtime: Any,
) -> None:
    _, headers = submitted({"episode_id": "ep-3", "region": "lumbar"}, "ev-3")
    bad_body = orjson.dumps({"episode_id": "ep-3", "episode": {"region": "thoracic"},
                             "submitted_at": datetime.now(UTC).isoformat()})
    async with TestKafkaBroker(runtime.broker) as br:
        await br.publish(b"\x00not json", runtime.topics.episodes, key=b"ep-3", headers=headers)
        await br.publish(bad_body, runtime.topics.episodes, key=b"ep-3",
                         headers={**headers, "ce_id": "ev-3b"})
        await br.publish(b"{}", runtime.topics.episodes, key=b"ep-3", headers={})
    dead = runtime.captured[runtime.topics.dlq_pathway]
    assert len(dead) == 3
    causes = [h["dlq_cause"] for h, _ in dead]
    assert dead[0][1] == b"\x00not json"  # the original bytes, kept
    assert "region" in causes[1]  # names the field
    assert "ce_id" in causes[2]  # names the missing header
    assert all(h["dlq_kind"] == "undecodable" for h, _ in dead)
    assert runtime.topics.recommendations not in runtime.captured


async def test_an_outcome_for_an_unknown_episode_is_rejected_to_the_dlq(runtime: Any) -> None:
    env = Envelope.new(event_type=OUTCOME_REPORTED, source="/test", event_id="ev-4")
    body = orjson.dumps({"episode_id": "nope", "reported_at": datetime.now(UTC).isoformat(),
                         "report": {"kind": "pain_score", "episode_id": "nope", "pain_nrs": 5}})
    async with TestKafkaBroker(runtime.broker) as br:
        await br.publish(body, runtime.topics.episodes, key=b"nope", headers=env.to_headers())
    [(headers, _)] = runtime.captured[runtime.topics.dlq_pathway]
    assert headers["dlq_kind"] == "rejected"
    assert "not seen" in headers["dlq_cause"]


async def test_a_record_without_a_key_is_dead_lettered_as_undecodable(runtime: Any) -> None:
    value, headers = submitted({"episode_id": "ep-5", "region": "lumbar"}, "ev-5")
    async with TestKafkaBroker(runtime.broker) as br:
        await br.publish(value, runtime.topics.episodes, headers=headers)
    [(dead_headers, body)] = runtime.captured[runtime.topics.dlq_pathway]
    assert dead_headers["dlq_kind"] == "undecodable"
    assert "no key" in dead_headers["dlq_cause"]
    assert body == orjson.loads(value)  # the original record, kept
    assert runtime.topics.recommendations not in runtime.captured


async def test_the_state_endpoint_reads_the_typed_state_the_handler_stored(runtime: Any) -> None:
    from carepath_pathway.episode_store import episode_store

    value, headers = submitted({"episode_id": "ep-6", "region": "lumbar",
                                "medial_branch_blocks": [{"relief_percent": 75}]}, "ev-6")
    async with TestKafkaBroker(runtime.broker) as br:
        await br.publish(value, runtime.topics.episodes, key=b"ep-6", headers=headers)
    stored = await episode_store(runtime).get("ep-6")
    assert stored.data is not None and stored.data.evaluation_seq == 1
    assert "ablation.rfa" in stored.data.active
    raw = await runtime.redis.get(episode_store(runtime).state_key("ep-6"))
    assert b'"profile":null' not in raw  # absent fields stay absent, as always stored
