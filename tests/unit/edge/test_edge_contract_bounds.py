"""The contract's bounds and the one episode-id rule (pure), property-based where they have
thresholds; event sizes are checked when an event is built."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carepath_contracts.envelope import Envelope
from carepath_contracts.episode_id import EPISODE_ID_MAX, EPISODE_ID_RULE, is_episode_id
from carepath_contracts.events import EPISODE_SUBMITTED, EpisodeSubmitted
from carepath_contracts.limits import LIST_LIMITS, MAX_LIST, MAX_TEXT, bound_errors
from carepath_contracts.outcome import parse_outcome
from carepath_runtime.kafka_broker import EventTooLarge, build_event
from carepath_runtime.problems import MAX_ERRORS, problem_body

ID_CHARS = st.sampled_from("abcXYZ019._:-")


@given(first=st.sampled_from("aZ9"), rest=st.text(ID_CHARS, max_size=EPISODE_ID_MAX - 1))
def test_ids_of_the_pattern_pass(first: str, rest: str) -> None:
    assert is_episode_id(first + rest)
    assert bound_errors({"episode_id": first + rest}) == []


@given(st.text(min_size=0, max_size=300))
def test_the_rule_is_the_documented_pattern(value: str) -> None:
    documented = re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}", value) is not None
    assert is_episode_id(value) == documented


@pytest.mark.parametrize("bad", ["", "   ", " a", "a b", "a/b", "../x", "-a", "a\n",
                                 "x" * 129, "é", 5])
def test_present_but_bad_ids_are_errors(bad: Any) -> None:
    errors = bound_errors({"episode_id": bad, "region": "lumbar"})
    assert [e["field"] for e in errors] == ["episode_id"]
    assert errors[0]["reason"] == f"must be {EPISODE_ID_RULE}"  # a fixed text: no echo


def test_an_absent_or_null_id_is_no_error() -> None:
    assert bound_errors({"region": "lumbar"}) == []
    assert bound_errors({"region": "lumbar", "episode_id": None}) == []


@given(st.integers(min_value=0, max_value=MAX_TEXT + 50))
def test_text_is_bounded_at_2000(n: int) -> None:
    errors = bound_errors({"note": "n" * n})
    assert (errors == []) == (n <= MAX_TEXT)
    if errors:
        assert errors == [{"field": "note", "reason": "at most 2000 characters"}]


@given(st.sampled_from(sorted(LIST_LIMITS)), st.integers(min_value=0, max_value=120))
def test_lists_are_bounded_per_field(name: str, n: int) -> None:
    errors = bound_errors({name: [1] * n})
    assert (errors == []) == (n <= LIST_LIMITS[name])


def test_unnamed_lists_and_nesting_are_bounded() -> None:
    assert bound_errors({"x": [1] * (MAX_LIST + 1)})[0]["reason"] == "at most 100 items"
    deep: Any = 1
    for _ in range(20):
        deep = [deep]
    assert "nested deeper" in bound_errors({"x": deep})[0]["reason"]


def test_100000_invalid_items_give_a_short_answer() -> None:
    # Before: 100,000 invalid list items gave a 422 of 13 MB.
    errors = bound_errors({"imaging_done": ["nope"] * 100_000})
    assert errors == [{"field": "imaging_done", "reason": "at most 10 items"}]
    many = [{"field": f"f{i}", "reason": "bad"} for i in range(500)]
    body = problem_body(422, "invalid", many)
    assert len(body["errors"]) == MAX_ERRORS and body["errors_truncated"] == 480


def test_timestamps_are_iso_text_only() -> None:
    base = {"kind": "pain_score", "episode_id": "e1", "pain_nrs": 3}
    assert parse_outcome({**base, "reported_at": "2026-05-01T09:00:00+00:00"}).reported_at
    for bad in (12345, 1.5e9, True):
        with pytest.raises(ValueError, match="ISO 8601"):
            parse_outcome({**base, "reported_at": bad})


def test_an_event_over_its_topics_size_is_refused_when_built() -> None:
    env = Envelope.new(event_type=EPISODE_SUBMITTED, source="/t", event_id="e")
    levels = ["L4-L5"] * 200_000  # ~1.6 MB of JSON inside one episode
    body = EpisodeSubmitted.model_validate({
        "episode_id": "e1", "submitted_at": "2026-05-01T09:00:00+00:00",
        "episode": {"episode_id": "e1", "region": "lumbar",
                    "facet_injections": [{"levels": levels}]}})
    with pytest.raises(EventTooLarge) as caught:
        build_event(topic="ns.episodes", key="e1", envelope=env, body=body)
    assert caught.value.limit == 1_048_576 and caught.value.size > caught.value.limit
    small = body.model_copy(update={"episode": body.episode.model_copy(
        update={"facet_injections": None})})
    assert build_event(topic="ns.episodes", key="e1", envelope=env, body=small).value
