"""Clinical service-level metrics: what counts as open, overdue and urgent-unaccepted, and the
transitions that feed the histograms and counters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from carepath_runtime.observability import clinical_metrics as cm
from carepath_runtime.observability.metrics import REGISTRY, status_class

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def facts(**over: object) -> cm.ReferralFacts:
    base: dict[str, object] = {
        "team": "surgery", "step": "surgery.urgent_referral", "status": "awaiting-triage",
        "priority": "urgent", "created_at": NOW - timedelta(hours=1),
        "due_at": NOW + timedelta(hours=3), "accepted": False, "started": False, "open": True,
    }
    base.update(over)
    return cm.ReferralFacts(**base)  # type: ignore[arg-type]


def test_closed_referrals_count_nowhere() -> None:
    snap = cm.snapshot([facts(open=False, due_at=NOW - timedelta(days=1),
                              created_at=NOW - timedelta(days=2))], NOW)
    assert snap.open == {} and snap.overdue == {} and snap.urgent_unaccepted == {}


def test_open_referrals_are_counted_by_team_step_and_status() -> None:
    snap = cm.snapshot([facts(), facts(), facts(team="radiology", step="imaging.mri",
                                                priority="routine")], NOW)
    assert snap.open == {("surgery", "surgery.urgent_referral", "awaiting-triage"): 2,
                         ("radiology", "imaging.mri", "awaiting-triage"): 1}


@given(st.integers(min_value=-600, max_value=600))
def test_overdue_means_past_due_and_not_started(minutes: int) -> None:
    due = NOW + timedelta(minutes=minutes)
    snap = cm.snapshot([facts(due_at=due), facts(due_at=due, started=True)], NOW)
    expected = {("surgery", "urgent"): 1} if due <= NOW else {}
    assert snap.overdue == expected


@given(st.integers(min_value=0, max_value=600))
def test_urgent_unaccepted_after_four_hours(minutes_old: int) -> None:
    created = NOW - timedelta(minutes=minutes_old)
    snap = cm.snapshot([facts(created_at=created), facts(created_at=created, accepted=True),
                        facts(created_at=created, priority="routine")], NOW)
    assert snap.urgent_unaccepted == ({"surgery": 1} if minutes_old >= 240 else {})


def _value(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_acceptance_completion_and_decline_feed_the_histograms_and_counters() -> None:
    team = {"team": "psychology", "priority": "routine"}
    before_accept = _value("carepath_referral_time_to_accept_seconds_count", team)
    before_decline = _value("carepath_referral_declines_total", {"team": "psychology"})
    created = NOW - timedelta(hours=2)
    requested = facts(team="psychology", step="psychology.assessment", priority="routine",
                      created_at=created)
    accepted = facts(team="psychology", step="psychology.assessment", priority="routine",
                     created_at=created, accepted=True, status="accepted")
    cm.observe_transition(requested, accepted, NOW)
    cm.observe_transition(accepted, accepted, NOW)  # no change: nothing observed again
    assert _value("carepath_referral_time_to_accept_seconds_count", team) == before_accept + 1
    assert _value("carepath_referral_time_to_accept_seconds_sum", team) >= 7200
    declined = facts(team="care_coordinator", step="psychology.assessment",
                     priority="routine", status="rejected", created_at=created)
    requested_rejected = facts(team="psychology", status="awaiting-triage", created_at=created)
    cm.observe_transition(requested_rejected, declined, NOW)
    assert _value("carepath_referral_declines_total", {"team": "psychology"}) == (
        before_decline + 1)


def test_publishing_a_snapshot_replaces_old_series() -> None:
    cm.publish_snapshot(cm.snapshot([facts()], NOW))
    labels = {"team": "surgery", "step": "surgery.urgent_referral", "status": "awaiting-triage"}
    assert _value("carepath_referrals_open", labels) == 1
    cm.publish_snapshot(cm.snapshot([], NOW))
    assert REGISTRY.get_sample_value("carepath_referrals_open", labels) is None


def test_status_class_is_bounded() -> None:
    assert [status_class(c) for c in (200, 204, 301, 404, 429, 500, 503, 99, 999)] == [
        "2xx", "2xx", "3xx", "4xx", "4xx", "5xx", "5xx", "1xx", "5xx"]


_moments = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1),
                        timezones=st.just(UTC)).map(lambda d: d.replace(microsecond=0))


@given(team=st.sampled_from(["surgery", "radiology", "care_coordinator"]),
       step=st.sampled_from(["surgery.urgent_referral", "imaging.mri", "rehab.pain_education"]),
       status=st.sampled_from(["awaiting-triage", "accepted", "overdue-escalated"]),
       priority=st.sampled_from(["urgent", "routine"]), created=_moments, due=_moments,
       accepted=st.booleans(), started=st.booleans(), is_open=st.booleans())
def test_the_compact_record_of_the_open_index_round_trips(
        team: str, step: str, status: str, priority: str, created: datetime, due: datetime,
        accepted: bool, started: bool, is_open: bool) -> None:
    original = cm.ReferralFacts(team=team, step=step, status=status, priority=priority,
                                created_at=created, due_at=due, accepted=accepted,
                                started=started, open=is_open)
    raw = original.encode()
    assert len(raw) < 120
    assert cm.ReferralFacts.decode(raw) == original


@given(st.lists(st.tuples(st.booleans(), st.booleans(), st.booleans(),
                          st.integers(-10, 10), st.integers(0, 10)), max_size=30))
def test_a_streamed_tally_counts_as_the_whole_snapshot(
        rows: list[tuple[bool, bool, bool, int, int]]) -> None:
    referrals = [facts(open=o, accepted=a, started=s, due_at=NOW + timedelta(hours=due_h),
                       created_at=NOW - timedelta(hours=age_h))
                 for o, a, s, due_h, age_h in rows]
    tally = cm.OpenTally(NOW)
    for r in referrals:
        tally.add(r)
    assert tally.snapshot() == cm.snapshot(referrals, NOW)
