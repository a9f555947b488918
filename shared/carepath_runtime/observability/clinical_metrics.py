"""Clinical service-level metrics of the referrals service.

Gauges are recomputed from the authoritative referral state (``refresh_open``), so every
replica reports the same values (aggregate them with ``max``, not ``sum``). Histograms and
counters are observed by the replica that made the change (aggregate them with ``sum``).
Labels: team, step (the contract's step codes), status and priority, all closed vocabularies.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from prometheus_client import Counter, Gauge, Histogram

from carepath_runtime.observability.metrics import REGISTRY

_HOURS = 3600.0
_TIME_BUCKETS = tuple(h * _HOURS for h in (0.25, 0.5, 1, 2, 4, 8, 24, 48, 72, 168, 336, 720, 2160))

#: An urgent referral should be accepted within this long (the routing table's urgent due).
URGENT_ACCEPT_WITHIN = timedelta(hours=4)

REFERRALS_OPEN = Gauge(
    "carepath_referrals_open",
    "Open referrals (not completed or cancelled), by team, step and status.",
    ["team", "step", "status"],
    registry=REGISTRY,
)
REFERRALS_OVERDUE = Gauge(
    "carepath_referrals_overdue",
    "Open referrals past their due time and not yet started, by team and priority.",
    ["team", "priority"],
    registry=REGISTRY,
)
URGENT_UNACCEPTED = Gauge(
    "carepath_urgent_unaccepted_4h",
    "Urgent referrals created more than 4 h ago and still not accepted, by team.",
    ["team"],
    registry=REGISTRY,
)
TIME_TO_ACCEPT = Histogram(
    "carepath_referral_time_to_accept_seconds",
    "Time from a referral's creation to its acceptance, by team.",
    ["team", "priority"],
    buckets=_TIME_BUCKETS,
    registry=REGISTRY,
)
TIME_TO_COMPLETE = Histogram(
    "carepath_referral_time_to_complete_seconds",
    "Time from a referral's creation to its completion, by team.",
    ["team", "step"],
    buckets=_TIME_BUCKETS,
    registry=REGISTRY,
)
ESCALATIONS = Counter(
    "carepath_escalations_total",
    "Overdue referrals escalated to the care coordinator, by team.",
    ["team", "priority"],
    registry=REGISTRY,
)
DECLINES = Counter(
    "carepath_referral_declines_total",
    "Referrals declined by a team (they go to the coordinator to reroute), by team.",
    ["team"],
    registry=REGISTRY,
)


@dataclass(frozen=True)
class ReferralFacts:
    """What the metrics need of one referral: no id, nothing about the patient."""

    team: str
    step: str
    status: str
    priority: str
    created_at: datetime
    due_at: datetime
    accepted: bool
    started: bool
    open: bool


@dataclass(frozen=True)
class OpenSnapshot:
    open: dict[tuple[str, str, str], int]
    overdue: dict[tuple[str, str], int]
    urgent_unaccepted: dict[str, int]


def snapshot(referrals: Iterable[ReferralFacts], now: datetime) -> OpenSnapshot:
    """Counts of open, overdue and urgent-unaccepted referrals (pure)."""
    open_: Tally[tuple[str, str, str]] = Tally()
    overdue: Tally[tuple[str, str]] = Tally()
    urgent: Tally[str] = Tally()
    for r in referrals:
        if not r.open:
            continue
        open_[(r.team, r.step, r.status)] += 1
        if not r.started and r.due_at <= now:
            overdue[(r.team, r.priority)] += 1
        if r.priority == "urgent" and not r.accepted and now - r.created_at >= URGENT_ACCEPT_WITHIN:
            urgent[r.team] += 1
    return OpenSnapshot(dict(open_), dict(overdue), dict(urgent))


def publish_snapshot(snap: OpenSnapshot) -> None:
    """Replace the gauges' values with ``snap`` (series that went to zero are removed)."""
    for gauge, values in (
        (REFERRALS_OPEN, snap.open),
        (REFERRALS_OVERDUE, snap.overdue),
        (URGENT_UNACCEPTED, {(k,): v for k, v in snap.urgent_unaccepted.items()}),
    ):
        gauge.clear()
        for labels, value in values.items():
            gauge.labels(*labels).set(value)


def observe_transition(before: ReferralFacts | None, after: ReferralFacts,
                       now: datetime, *, escalated: bool = False) -> None:
    """Count what one committed referral change means for the service levels."""
    if escalated:
        ESCALATIONS.labels(after.team, after.priority).inc()
    if before is None:
        return
    if after.accepted and not before.accepted:
        TIME_TO_ACCEPT.labels(after.team, after.priority).observe(
            max(0.0, (now - after.created_at).total_seconds()))
    if after.status == "completed" and before.status != "completed":
        TIME_TO_COMPLETE.labels(after.team, after.step).observe(
            max(0.0, (now - after.created_at).total_seconds()))
    if after.status == "rejected" and before.status != "rejected":
        DECLINES.labels(before.team).inc()
