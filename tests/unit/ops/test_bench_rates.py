"""The benchmark's rates: a batching hop that emits a small phase at once still has a rate."""

from __future__ import annotations

from benchmarks.stats import busy_rate, ratio


def test_a_hop_that_emits_everything_in_one_millisecond_still_has_a_busy_rate() -> None:
    # 12 outputs all stamped at t=10.000 s; the first input reached the hop at 9.990 s.
    assert busy_rate(12, 9.990, 10.000) == 1200.0
    # Even with the input stamped in the same millisecond the span is at least 1 ms.
    assert busy_rate(12, 10.000, 10.000) == 12000.0
    assert ratio(busy_rate(12, 10.0, 10.0), busy_rate(12, 9.99, 10.0)) == 10.0


def test_no_outputs_is_no_rate() -> None:
    assert busy_rate(0, 1.0, 2.0) == 0.0
    assert ratio(1.0, busy_rate(0, 1.0, 2.0)) is None
