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


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not b or math.isnan(a) or math.isnan(b):
        return None
    value = a / b
    # Three significant digits: a small ratio (a relay far faster than us) never rounds to 0.
    return float(f"{value:.3g}")
