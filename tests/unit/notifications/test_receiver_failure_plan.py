"""The test receiver's failure injection: rate, window, every-Nth (used by delivery tests)."""

from __future__ import annotations

from carepath.webhook_receiver import FailurePlan


def test_no_plan_never_fails() -> None:
    plan = FailurePlan()
    assert not any(plan.fails(float(t)) for t in range(100))


def test_every_nth() -> None:
    plan = FailurePlan(fail_every=3)
    assert [plan.fails(0.0) for _ in range(6)] == [False, False, True, False, False, True]


def test_rate_is_about_half_and_repeatable_with_a_seed() -> None:
    a = [FailurePlan(fail_rate=0.5, seed=7).fails(0.0) for _ in range(1)]
    plan1, plan2 = FailurePlan(fail_rate=0.5, seed=7), FailurePlan(fail_rate=0.5, seed=7)
    run1 = [plan1.fails(0.0) for _ in range(400)]
    run2 = [plan2.fails(0.0) for _ in range(400)]
    assert run1 == run2 and a == run1[:1]
    assert 150 < sum(run1) < 250


def test_failures_stop_after_the_window_of_requests() -> None:
    plan = FailurePlan(fail_rate=1.0, fail_for_requests=5)
    assert [plan.fails(0.0) for _ in range(8)] == [True] * 5 + [False] * 3


def test_failures_stop_after_the_window_of_seconds_and_restart() -> None:
    plan = FailurePlan(fail_rate=1.0, fail_for_seconds=10)
    assert plan.fails(100.0) and plan.fails(109.0)
    assert not plan.fails(110.0)
    plan.restart()
    assert plan.fails(200.0)
