"""The inbox: filtering and sorting a team's referrals."""

from __future__ import annotations

from datetime import timedelta

import pytest
from referral_builders import NOW, drive, make_referral

from carepath_referrals.domain import (
    BusinessStatus,
    Priority,
    Referral,
    TaskStatus,
    Team,
    filter_and_sort,
)


def inbox() -> dict[str, Referral]:
    return {
        "routine-new": make_referral(recommendation_id="r1", now=NOW),
        "urgent-new": make_referral(recommendation_id="r2", priority="urgent", now=NOW),
        "routine-old": drive(
            make_referral(recommendation_id="r3", now=NOW - timedelta(days=3)),
            TaskStatus.ACCEPTED,
        ),
        "urgent-claimed": drive(
            make_referral(recommendation_id="r4", priority="urgent", now=NOW + timedelta(hours=1)),
            TaskStatus.RECEIVED,
        ),
        "imaging": make_referral(step="imaging.mri", recommendation_id="r5", now=NOW),
        "done": drive(make_referral(recommendation_id="r6", now=NOW), TaskStatus.COMPLETED),
    }


def names(result: list[Referral], items: dict[str, Referral]) -> list[str]:
    by_id = {r.referral_id: name for name, r in items.items()}
    return [by_id[r.referral_id] for r in result]


def test_default_sort_is_earliest_due_first() -> None:
    items = inbox()
    result = filter_and_sort(items.values())
    dues = [r.due_at for r in result]
    assert dues == sorted(dues)
    assert names(result, items)[:2] == ["urgent-new", "urgent-claimed"]


def test_sort_by_priority_most_urgent_first_then_due() -> None:
    items = inbox()
    result = names(filter_and_sort(items.values(), sort="priority"), items)
    assert result[:2] == ["urgent-new", "urgent-claimed"]
    assert result[2] == "routine-old"


def test_sort_by_status_follows_the_workflow() -> None:
    items = inbox()
    result = filter_and_sort(items.values(), sort="status")
    assert [r.status for r in result] == [
        TaskStatus.REQUESTED,
        TaskStatus.REQUESTED,
        TaskStatus.REQUESTED,
        TaskStatus.RECEIVED,
        TaskStatus.ACCEPTED,
        TaskStatus.COMPLETED,
    ]


@pytest.mark.parametrize("sort", ["due_at", "priority", "status"])
def test_descending_reverses(sort: str) -> None:
    items = list(inbox().values())
    up = filter_and_sort(items, sort=sort)  # type: ignore[arg-type]
    down = filter_and_sort(items, sort=sort, descending=True)  # type: ignore[arg-type]
    assert down == list(reversed(up))


def test_sort_is_independent_of_input_order() -> None:
    items = list(inbox().values())
    assert filter_and_sort(items, sort="priority") == filter_and_sort(
        list(reversed(items)), sort="priority"
    )


def test_filters() -> None:
    items = inbox()
    all_ = items.values()
    requested = names(filter_and_sort(all_, status="requested"), items)
    assert requested[0] == "urgent-new"
    assert set(requested[1:]) == {"routine-new", "imaging"}  # same due time: by referral id
    assert {r.priority for r in filter_and_sort(all_, priority=Priority.URGENT)} == {
        Priority.URGENT
    }
    assert len(filter_and_sort(all_, status=[TaskStatus.RECEIVED, "accepted"])) == 2
    assert names(filter_and_sort(all_, team=Team.RADIOLOGY), items) == ["imaging"]
    assert names(filter_and_sort(all_, business_status=BusinessStatus.COMPLETED), items) == ["done"]
    cutoff = NOW + timedelta(hours=5)  # urgent-claimed is due at exactly NOW + 5h
    assert names(filter_and_sort(all_, due_before=cutoff), items) == ["urgent-new"]
    cutoff = NOW + timedelta(hours=6)
    assert set(names(filter_and_sort(all_, due_before=cutoff), items)) == {
        "urgent-new",
        "urgent-claimed",
    }
    combined = filter_and_sort(
        all_, status="requested", priority="routine", team="interventional_pain"
    )
    assert names(combined, items) == ["routine-new"]


def test_bad_filter_or_sort_is_refused() -> None:
    with pytest.raises(ValueError):
        filter_and_sort([], status="open")
    with pytest.raises(ValueError, match="unknown sort"):
        filter_and_sort([], sort="name")  # type: ignore[arg-type]


def test_empty_inbox() -> None:
    assert filter_and_sort([]) == []
