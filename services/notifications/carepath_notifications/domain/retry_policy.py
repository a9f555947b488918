"""When to retry a delivery, and how long to wait first.

``classify`` turns an attempt's result into ``success``, ``retry`` or ``give_up``;
``RetryPolicy.next_delay`` is capped exponential backoff with full jitter
(``uniform(0, min(cap, base * 2 ** (attempt - 1)))``), never shorter than a ``Retry-After``
the receiver sent (also capped). Attempts are numbered from 1: ``next_delay(1)`` is the wait
after the first attempt failed.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Literal

Outcome = Literal["success", "retry", "give_up"]

# 2 ** 64 * any sane base already exceeds every sane cap; avoids float overflow for huge attempts
_MAX_EXPONENT = 64
_rng = random.Random()


def classify(status_code: int | None, error: str | None = None) -> Outcome:
    """2xx succeeds; 5xx, 408, 429 and no response at all (timeout, connection error) retry.

    Other 4xx give up: the request itself is wrong (bad URL, auth, payload) and sending it again
    cannot help. 1xx/3xx also give up: redirects are not followed (SSRF), so a redirecting
    endpoint needs reconfiguring. ``error`` only matters when there is no status code.
    """
    if status_code is None:
        return "retry"
    if 200 <= status_code < 300:
        return "success"
    if status_code >= 500 or status_code in (408, 429):
        return "retry"
    return "give_up"


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or HTTP-date), else None.

    A date in the past yields 0; an unparseable value yields None (ignored).
    """
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)  # a huge value becomes inf, which the cap then bounds
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    current = time.time() if now is None else now
    # "-0000" dates parse as naive; HTTP-dates are always GMT
    seconds = (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()
    return max(0.0, seconds - current)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 10
    base_delay_s: float = 2.0
    max_delay_s: float = 600.0
    jitter: bool = True

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not 0 <= self.base_delay_s <= self.max_delay_s:
            raise ValueError("need 0 <= base_delay_s <= max_delay_s")

    def should_retry(self, attempt: int, outcome: Outcome) -> bool:
        """Whether attempt ``attempt`` (1-based), which ended in ``outcome``, gets another."""
        return outcome == "retry" and attempt < self.max_attempts

    def backoff_ceiling(self, attempt: int) -> float:
        """The upper bound of the jittered delay after attempt ``attempt``."""
        exponent = min(max(attempt, 1) - 1, _MAX_EXPONENT)
        return min(self.max_delay_s, self.base_delay_s * 2.0**exponent)

    def next_delay(
        self,
        attempt: int,
        retry_after_header: str | None = None,
        rng: random.Random | None = None,
        *,
        now: float | None = None,
    ) -> float:
        """Seconds to wait before the attempt after ``attempt``; always in ``[0, max_delay_s]``.

        Pass the response's ``Retry-After`` (sent with 429, 408 or 503); the delay is then at
        least that long, up to the cap.
        """
        ceiling = self.backoff_ceiling(attempt)
        delay = (rng or _rng).uniform(0.0, ceiling) if self.jitter else ceiling
        retry_after = parse_retry_after(retry_after_header, now)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return min(delay, self.max_delay_s)
