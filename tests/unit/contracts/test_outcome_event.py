"""The one builder of ``outcome.reported``: intake and referrals publish what it gives."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime

import orjson

from carepath_contracts.envelope import Envelope, derive_id
from carepath_contracts.events import OUTCOME_REPORTED, OutcomeReported, dump_body, parse_body
from carepath_contracts.outcome import parse_outcome
from carepath_contracts.outcome_event import outcome_event
from carepath_contracts.topics import Topics

AT = datetime(2025, 3, 21, 9, 30, tzinfo=UTC)
TOPICS = Topics("ns")
REPORT = parse_outcome({"kind": "rfa", "episode_id": "ep-1", "step": "ablation.rfa",
                        "relief_percent": 80})


def test_intake_outcome_event() -> None:
    out = outcome_event(TOPICS, REPORT, source="/carepath/intake", identity=("ep-1", "key-1"),
                        at=AT)
    assert (out.topic, out.key) == (TOPICS.episodes, "ep-1")
    assert out.envelope.id == derive_id(OUTCOME_REPORTED, "ep-1", "key-1")
    assert out.envelope.type == OUTCOME_REPORTED and out.envelope.source == "/carepath/intake"
    assert out.envelope.time == AT and out.envelope.causationid is None
    assert out.body == OutcomeReported(episode_id="ep-1", report=REPORT, reported_at=AT)
    assert parse_body(OUTCOME_REPORTED, dump_body(out.body)) == out.body


def test_referrals_outcome_event_names_the_referral_and_its_cause() -> None:
    cause = Envelope.new(event_type="carepath.referral.action.v1", source="/carepath/referrals",
                         event_id="action-1", time=AT)
    out = outcome_event(TOPICS, REPORT, source="/carepath/referrals", identity=("action-1",),
                        at=AT, referral_id="ref-1", causation=cause)
    assert out.envelope.id == derive_id(OUTCOME_REPORTED, "action-1")
    assert out.envelope.causationid == "action-1"
    assert out.envelope.correlationid == cause.correlationid
    assert orjson.loads(dump_body(out.body))["referral_id"] == "ref-1"


def test_the_same_inputs_give_the_same_event() -> None:
    def build() -> bytes:
        out = outcome_event(TOPICS, REPORT, source="/s", identity=("a", "b"), at=AT)
        return orjson.dumps(out.envelope.to_headers()) + dump_body(out.body)

    assert build() == build()


def test_both_producers_use_the_builder() -> None:
    import carepath_intake.api as intake_api
    import carepath_referrals.service as referrals_service

    for module in (intake_api, referrals_service):
        source = inspect.getsource(module)
        assert "outcome_event(" in source, module.__name__
        assert "OutcomeReported(" not in source, module.__name__
