"""What follows an attempt: delivered, retried (backoff, Retry-After) or dead."""

from __future__ import annotations

import random

import pytest

from carepath_notifications.domain.attempts import AttemptResult, decide
from carepath_notifications.domain.retry_policy import RetryPolicy, classify

POLICY = RetryPolicy(max_attempts=4, base_delay_s=1.0, max_delay_s=60.0)


def result(status: int | None, retry_after: str | None = None, error: str | None = None
           ) -> AttemptResult:
    return AttemptResult(classify(status, error), status, error, retry_after)


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_2xx_is_delivered(status: int) -> None:
    assert decide(1, result(status), POLICY).kind == "delivered"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 413, 422])
def test_other_4xx_is_dead_at_the_first_attempt(status: int) -> None:
    d = decide(1, result(status), POLICY)
    assert d.kind == "dead"
    assert d.event_outcome == "failed"
    assert str(status) in (d.reason or "")


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_5xx_408_429_are_retried(status: int) -> None:
    d = decide(1, result(status), POLICY, random.Random(1))
    assert d.kind == "retry"
    assert 0 <= d.delay_s <= POLICY.backoff_ceiling(1)


@pytest.mark.parametrize("error", ["timeout", "connection"])
def test_no_answer_is_retried(error: str) -> None:
    assert decide(2, result(None, error=error), POLICY).kind == "retry"


@pytest.mark.parametrize("status", [408, 429])
def test_retry_after_is_honoured(status: int) -> None:
    for seed in range(20):
        d = decide(1, result(status, retry_after="7"), POLICY, random.Random(seed))
        assert d.kind == "retry"
        assert d.delay_s >= 7.0  # jitter alone would stay below the 1 s ceiling


def test_retry_after_is_capped_by_the_policy() -> None:
    d = decide(1, result(429, retry_after="100000"), POLICY)
    assert d.delay_s == POLICY.max_delay_s


def test_budget_spent_makes_it_dead() -> None:
    assert decide(3, result(503), POLICY).kind == "retry"
    last = decide(4, result(503), POLICY)
    assert last.kind == "dead"
    assert "4 attempts" in (last.reason or "")


def test_backoff_grows_exponentially_with_full_jitter() -> None:
    policy = RetryPolicy(max_attempts=10, base_delay_s=1.0, max_delay_s=1000.0, jitter=False)
    delays = [decide(n, result(500), policy).delay_s for n in range(1, 6)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0]


def test_attempts_start_at_one() -> None:
    with pytest.raises(ValueError):
        decide(0, result(500), POLICY)
