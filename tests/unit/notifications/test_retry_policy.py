"""Retry classification and backoff bounds."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carepath_notifications.domain import RetryPolicy, classify, parse_retry_after

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [
        (200, None, "success"),
        (201, None, "success"),
        (204, None, "success"),
        (400, None, "give_up"),
        (401, None, "give_up"),
        (403, None, "give_up"),
        (404, None, "give_up"),
        (408, None, "retry"),
        (409, None, "give_up"),
        (410, None, "give_up"),
        (429, None, "retry"),
        (500, None, "retry"),
        (502, None, "retry"),
        (503, None, "retry"),
        (504, None, "retry"),
        (None, "timeout", "retry"),
        (None, "connection refused", "retry"),
        (None, None, "retry"),
        (301, None, "give_up"),
    ],
)
def test_classify(status: int | None, error: str | None, expected: str) -> None:
    assert classify(status, error) == expected


def test_should_retry_stops_at_max_attempts_and_on_non_retry_outcomes() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert policy.should_retry(1, "retry") and policy.should_retry(2, "retry")
    assert not policy.should_retry(3, "retry")
    assert not policy.should_retry(1, "give_up")
    assert not policy.should_retry(1, "success")


def test_without_jitter_backoff_doubles_up_to_the_cap() -> None:
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=10.0, jitter=False)
    assert [policy.next_delay(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


@pytest.mark.parametrize(
    "kwargs",
    [{"max_attempts": 0}, {"base_delay_s": -1.0}, {"base_delay_s": 5.0, "max_delay_s": 1.0}],
)
def test_invalid_policy_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_retry_after_http_date() -> None:
    when = datetime.fromtimestamp(NOW + 120, tz=UTC)
    assert parse_retry_after(format_datetime(when, usegmt=True), now=NOW) == 120.0
    past = datetime.fromtimestamp(NOW - 120, tz=UTC)
    assert parse_retry_after(format_datetime(past, usegmt=True), now=NOW) == 0.0


@pytest.mark.parametrize("value", [None, "", "soon", "-5", "1.5", "Mon, 99 Foo 2024"])
def test_unparseable_retry_after_is_ignored(value: str | None) -> None:
    assert parse_retry_after(value, now=NOW) is None


policies = st.builds(
    lambda base, extra, jitter, attempts: RetryPolicy(attempts, base, base + extra, jitter),
    st.floats(0, 60, allow_nan=False),
    st.floats(0, 3600, allow_nan=False),
    st.booleans(),
    st.integers(1, 50),
)
attempts = st.integers(min_value=1, max_value=100_000)
rngs = st.integers(0, 2**32).map(random.Random)


@given(policies, attempts, rngs)
def test_delay_is_within_zero_and_cap(
    policy: RetryPolicy, attempt: int, rng: random.Random
) -> None:
    delay = policy.next_delay(attempt, None, rng)
    assert 0.0 <= delay <= policy.backoff_ceiling(attempt) <= policy.max_delay_s


@given(policies, attempts, rngs, st.integers(0, 10**9))
def test_retry_after_seconds_is_honoured_up_to_cap(
    policy: RetryPolicy, attempt: int, rng: random.Random, seconds: int
) -> None:
    delay = policy.next_delay(attempt, str(seconds), rng)
    assert min(seconds, policy.max_delay_s) <= delay <= policy.max_delay_s


@given(policies, attempts, rngs, st.integers(-(10**6), 10**6))
def test_retry_after_http_date_is_honoured_up_to_cap(
    policy: RetryPolicy, attempt: int, rng: random.Random, offset: int
) -> None:
    header = format_datetime(datetime.fromtimestamp(NOW + offset, tz=UTC), usegmt=True)
    delay = policy.next_delay(attempt, header, rng, now=NOW)
    assert min(max(offset, 0), policy.max_delay_s) <= delay <= policy.max_delay_s


@given(policies, attempts, st.text(max_size=40))
def test_garbage_retry_after_never_breaks_bounds(
    policy: RetryPolicy, attempt: int, header: str
) -> None:
    assert (
        0.0 <= policy.next_delay(attempt, header, random.Random(0), now=NOW) <= policy.max_delay_s
    )


def test_jitter_spreads_delays() -> None:
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=100.0)
    rng = random.Random(42)
    delays = {policy.next_delay(5, None, rng) for _ in range(50)}
    assert len(delays) == 50 and max(delays) <= 16.0


def test_absurdly_large_retry_after_is_capped_not_a_crash() -> None:
    policy = RetryPolicy(max_delay_s=60.0)
    assert policy.next_delay(1, "9" * 6000, random.Random(0)) == 60.0
