"""Percentiles and rates, in plain Python (no numpy)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (q in 0..100)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return float(sorted_values[min(rank, len(sorted_values)) - 1])


def latency_summary(values_ms: Sequence[float]) -> dict[str, Any]:
    """count, p50, p95, p99, max and mean of latencies in milliseconds."""
    v = sorted(values_ms)
    if not v:
        return {"count": 0}
    return {
        "count": len(v),
        "p50_ms": round(percentile(v, 50), 1),
        "p95_ms": round(percentile(v, 95), 1),
        "p99_ms": round(percentile(v, 99), 1),
        "max_ms": round(v[-1], 1),
        "mean_ms": round(sum(v) / len(v), 1),
    }


def rate(count: int, start: float, end: float) -> float:
    """count per second over [start, end] (seconds); 0 when the span is empty."""
    span = end - start
    return round(count / span, 1) if span > 0 and count else 0.0


def busy_rate(count: int, first_input: float, last_output: float) -> float:
    """A hop's input messages per second while it worked: from the first input that reached
    it to its last output (seconds). Counting from its first *output* instead would give a
    zero span, and no rate, when a batching hop emits a small phase's outputs at once.
    Timestamps have millisecond resolution, so the span is at least 1 ms."""
    if not count:
        return 0.0
    return round(count / max(last_output - first_input, 0.001), 1)


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not b or math.isnan(a) or math.isnan(b):
        return None
    value = a / b
    # Three significant digits: a small ratio (a relay far faster than us) never rounds to 0.
    return float(f"{value:.3g}")
