"""What happens to a delivery job after one attempt: delivered, retried later, or dead.

Pure: the worker sends, then asks :func:`decide` with the attempt's result; the job queue
records the decision. A 2xx delivers. 5xx, 408, 429, timeouts and connection errors retry
with capped exponential backoff and full jitter, never sooner than a ``Retry-After`` the
receiver sent, until the retry budget is spent. Any other answer (a 4xx: the request itself
is wrong) is dead at once. A dead job becomes a dead-letter record and a delivery-failed event.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from carepath_notifications.domain.retry_policy import Outcome, RetryPolicy

Kind = Literal["delivered", "retry", "dead"]


@dataclass(frozen=True)
class AttemptResult:
    """How one attempt went, as the channel reported it."""

    outcome: Outcome  # "success" | "retry" | "give_up"
    status_code: int | None = None
    error: str | None = None
    retry_after: str | None = None
    # A machine-readable cause kind for permanent refusals (``destination_refused``).
    cause: str | None = None


@dataclass(frozen=True)
class Decision:
    kind: Kind
    delay_s: float = 0.0
    reason: str | None = None

    @property
    def event_outcome(self) -> Literal["delivered", "retry", "failed"]:
        """The ``outcome`` of the attempt's ``DeliveryAttempted`` event."""
        return "failed" if self.kind == "dead" else self.kind


def decide(
    attempt: int,
    result: AttemptResult,
    policy: RetryPolicy,
    rng: random.Random | None = None,
    *,
    now: float | None = None,
) -> Decision:
    """The decision after attempt number ``attempt`` (1-based) ended in ``result``."""
    if attempt < 1:
        raise ValueError("attempts are numbered from 1")
    if result.outcome == "success":
        return Decision("delivered")
    if result.outcome == "give_up":
        return Decision("dead", reason=f"not retryable: {_what(result)}")
    if not policy.should_retry(attempt, result.outcome):
        return Decision("dead", reason=f"retry budget spent after {attempt} attempts: "
                                       f"{_what(result)}")
    delay = policy.next_delay(attempt, result.retry_after, rng, now=now)
    return Decision("retry", delay_s=delay, reason=_what(result))


def _what(result: AttemptResult) -> str:
    if result.error:
        return result.error
    return f"status {result.status_code}" if result.status_code is not None else "no answer"
