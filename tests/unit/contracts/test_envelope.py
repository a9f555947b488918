"""The CloudEvents envelope carried as Kafka headers (binary mode)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from carepath_contracts.envelope import SPECVERSION, Envelope, EnvelopeError, derive_id

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def make(**kw: object) -> Envelope:
    args: dict[str, object] = {
        "event_type": "carepath.episode.submitted.v1",
        "source": "/carepath/intake",
        "event_id": "e-1",
        "time": T0,
    }
    args.update(kw)
    return Envelope.new(**args)  # type: ignore[arg-type]


def test_headers_carry_the_required_cloudevents_attributes() -> None:
    headers = make().to_headers()
    assert headers["ce_id"] == "e-1"
    assert headers["ce_source"] == "/carepath/intake"
    assert headers["ce_type"] == "carepath.episode.submitted.v1"
    assert headers["ce_specversion"] == SPECVERSION == "1.0"
    assert headers["ce_time"] == "2026-11-25T08:00:00+00:00"
    assert headers["content-type"] == "application/json"


def test_a_root_event_correlates_to_itself_and_has_no_cause() -> None:
    env = make()
    assert env.correlationid == "e-1"
    assert env.causationid is None
    assert "ce_causationid" not in env.to_headers()


def test_a_caused_event_inherits_correlation_and_names_its_cause() -> None:
    root = make(correlation_id="corr-9")
    child = Envelope.new(
        event_type="carepath.pathway.recommendations.v1", source="/carepath/pathway",
        event_id="e-2", causation=root,
    )
    assert child.correlationid == "corr-9"
    assert child.causationid == "e-1"
    headers = child.to_headers()
    assert headers["ce_correlationid"] == "corr-9"
    assert headers["ce_causationid"] == "e-1"


def test_headers_round_trip_as_bytes_too() -> None:
    env = make(correlation_id="c", subject="referral/1")
    raw = {k: v.encode() for k, v in env.to_headers().items()}
    assert Envelope.from_headers(raw) == env


@pytest.mark.parametrize("missing", ["ce_id", "ce_source", "ce_type", "ce_time"])
def test_missing_required_header_is_an_error_naming_it(missing: str) -> None:
    headers = make().to_headers()
    del headers[missing]
    with pytest.raises(EnvelopeError, match=missing):
        Envelope.from_headers(headers)


def test_wrong_specversion_is_refused() -> None:
    headers = make().to_headers()
    headers["ce_specversion"] = "0.3"
    with pytest.raises(EnvelopeError, match="specversion"):
        Envelope.from_headers(headers)


@pytest.mark.parametrize("bad", ["episode.submitted", "carepath.episode.submitted", "x.y.v1"])
def test_event_types_must_be_versioned_carepath_types(bad: str) -> None:
    headers = make().to_headers()
    headers["ce_type"] = bad
    with pytest.raises(EnvelopeError):
        Envelope.from_headers(headers)


def test_unparseable_time_is_refused() -> None:
    headers = make().to_headers()
    headers["ce_time"] = "yesterday"
    with pytest.raises(EnvelopeError):
        Envelope.from_headers(headers)


def test_derived_ids_are_deterministic_and_input_sensitive() -> None:
    assert derive_id("a", "b") == derive_id("a", "b")
    assert derive_id("a", "b") != derive_id("a", "c")
    # the separator keeps ("ab", "c") and ("a", "bc") apart
    assert derive_id("ab", "c") != derive_id("a", "bc")
