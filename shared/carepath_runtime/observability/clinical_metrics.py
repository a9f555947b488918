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
from datetime import UTC, datetime, timedelta

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

    def encode(self) -> bytes:
        """A compact record (about 80 bytes) for the store's index of open referrals, so a
        refresh of the gauges reads these instead of every open referral's document."""
        return "|".join((
            self.team, self.step, self.status, self.priority,
            f"{self.created_at.timestamp():.3f}", f"{self.due_at.timestamp():.3f}",
            "1" if self.accepted else "0", "1" if self.started else "0",
            "1" if self.open else "0",
        )).encode()

    @classmethod
    def decode(cls, raw: bytes) -> ReferralFacts:
        team, step, status, priority, created, due, accepted, started, open_ = (
            raw.decode().split("|"))
        return cls(team=team, step=step, status=status, priority=priority,
                   created_at=datetime.fromtimestamp(float(created), UTC),
                   due_at=datetime.fromtimestamp(float(due), UTC),
                   accepted=accepted == "1", started=started == "1", open=open_ == "1")


@dataclass(frozen=True)
class OpenSnapshot:
    open: dict[tuple[str, str, str], int]
    overdue: dict[tuple[str, str], int]
    urgent_unaccepted: dict[str, int]


class OpenTally:
    """Counts of open, overdue and urgent-unaccepted referrals, one referral at a time (so a
    refresh streams the open referrals in chunks instead of holding them all)."""

    def __init__(self, now: datetime) -> None:
        self._now = now
        self._open: Tally[tuple[str, str, str]] = Tally()
        self._overdue: Tally[tuple[str, str]] = Tally()
        self._urgent: Tally[str] = Tally()

    def add(self, r: ReferralFacts) -> None:
        if not r.open:
            return
        self._open[(r.team, r.step, r.status)] += 1
        if not r.started and r.due_at <= self._now:
            self._overdue[(r.team, r.priority)] += 1
        if (r.priority == "urgent" and not r.accepted
                and self._now - r.created_at >= URGENT_ACCEPT_WITHIN):
            self._urgent[r.team] += 1

    def snapshot(self) -> OpenSnapshot:
        return OpenSnapshot(dict(self._open), dict(self._overdue), dict(self._urgent))


def snapshot(referrals: Iterable[ReferralFacts], now: datetime) -> OpenSnapshot:
    """Counts of open, overdue and urgent-unaccepted referrals (pure)."""
    tally = OpenTally(now)
    for r in referrals:
        tally.add(r)
    return tally.snapshot()


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
