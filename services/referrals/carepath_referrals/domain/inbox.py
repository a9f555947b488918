"""A team's inbox: filter and sort referrals (pure; who may see what is :mod:`actors`' job).

Sorting follows the order work is done in, ascending by default:

* ``due_at``: earliest due first;
* ``priority``: most urgent first (urgent before routine);
* ``status``: workflow order (requested, received, accepted, in-progress, rejected, completed,
  cancelled).

Ties are broken by due time, then most urgent, then referral id, so the order is total and stable;
``descending=True`` reverses it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from datetime import datetime
from typing import Any, Literal

from carepath_referrals.domain.codes import BusinessStatus, Priority, TaskStatus, Team
from carepath_referrals.domain.referral import Referral

SortKey = Literal["due_at", "priority", "status"]

STATUS_ORDER: dict[TaskStatus, int] = {
    status: i
    for i, status in enumerate(
        (
            TaskStatus.REQUESTED,
            TaskStatus.RECEIVED,
            TaskStatus.ACCEPTED,
            TaskStatus.IN_PROGRESS,
            TaskStatus.REJECTED,
            TaskStatus.COMPLETED,
            TaskStatus.CANCELLED,
        )
    )
}


def _as_set(value: Any, kind: Callable[[Any], Any]) -> frozenset[Any] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return frozenset({kind(value)})
    return frozenset(kind(v) for v in value)


def _tiebreak(r: Referral) -> tuple[datetime, int, str]:
    return (r.due_at, -r.priority.rank, r.referral_id)


_SORT_KEYS: dict[str, Callable[[Referral], tuple[Any, ...]]] = {
    "due_at": _tiebreak,
    "priority": lambda r: (-r.priority.rank, *_tiebreak(r)),
    "status": lambda r: (STATUS_ORDER[r.status], *_tiebreak(r)),
}


def filter_and_sort(
    referrals: Iterable[Referral],
    status: TaskStatus | str | Collection[TaskStatus | str] | None = None,
    priority: Priority | str | Collection[Priority | str] | None = None,
    due_before: datetime | None = None,
    sort: SortKey = "due_at",
    descending: bool = False,
    *,
    team: Team | str | None = None,
    business_status: BusinessStatus | str | Collection[BusinessStatus | str] | None = None,
) -> list[Referral]:
    """Referrals matching every given filter, sorted. ``status``, ``priority`` and
    ``business_status`` take one value or several; ``due_before`` keeps ``due_at < due_before``.
    Unknown codes raise ``ValueError``."""
    if sort not in _SORT_KEYS:
        raise ValueError(f"unknown sort {sort!r}; expected one of: {', '.join(_SORT_KEYS)}")
    statuses = _as_set(status, TaskStatus)
    priorities = _as_set(priority, Priority)
    businesses = _as_set(business_status, BusinessStatus)
    team_code = Team(team) if team is not None else None
    kept = [
        r
        for r in referrals
        if (statuses is None or r.status in statuses)
        and (priorities is None or r.priority in priorities)
        and (businesses is None or r.business_status in businesses)
        and (team_code is None or r.team is team_code)
        and (due_before is None or r.due_at < due_before)
    ]
    return sorted(kept, key=_SORT_KEYS[sort], reverse=descending)
