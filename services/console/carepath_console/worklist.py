"""Worklist queues, filters, sorting and paging over the referrals the API returned (pure).

The console never widens what the referrals API gave the signed-in user: every queue here is a
subset of the user's ``/inbox`` answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Queue = Literal["mine", "unclaimed", "open", "overdue", "completed",
                "declined", "urgent", "escalated", "all"]
Sort = Literal["due", "priority", "updated"]
TERMINAL = frozenset({"completed", "cancelled"})
PAGE_SIZE_MAX = 200


class WorklistQuery(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    queue: Queue = "open"
    sort: Sort = "due"
    step: str | None = Field(default=None, max_length=100)
    status: str | None = Field(default=None, max_length=50)
    team: str | None = Field(default=None, max_length=50)
    page: int = Field(default=1, ge=1)
    size: int = Field(default=50, ge=1, le=PAGE_SIZE_MAX)


def _due(ref: Mapping[str, Any]) -> datetime:
    return datetime.fromisoformat(str(ref["due_at"]))


def in_queue(ref: Mapping[str, Any], queue: Queue, subject: str, now: datetime) -> bool:
    status = ref.get("status")
    is_open = status not in TERMINAL
    if queue == "all":
        return True
    if queue == "open":
        return is_open
    if queue == "mine":
        return is_open and ref.get("claimed_by") == subject
    if queue == "unclaimed":
        return status == "requested" and not ref.get("claimed_by")
    if queue == "overdue":
        return is_open and _due(ref) < now
    if queue == "completed":
        return status == "completed"
    if queue == "declined":
        return ref.get("business_status") == "declined-awaiting-reroute"
    if queue == "urgent":
        return is_open and ref.get("priority") == "urgent"
    if queue == "escalated":
        return is_open and bool(ref.get("escalated_at"))
    return False


def sort_key(sort: Sort) -> Any:
    if sort == "priority":
        return lambda r: (0 if r.get("priority") == "urgent" else 1, str(r["due_at"]),
                          r["referral_id"])
    if sort == "updated":
        return lambda r: (str(r.get("updated_at", "")), r["referral_id"])
    return lambda r: (str(r["due_at"]), r["referral_id"])


def select(refs: Iterable[Mapping[str, Any]], q: WorklistQuery, subject: str,
           now: datetime | None = None) -> dict[str, Any]:
    """One page of the queue: ``{"items", "total", "page", "pages", "counts"}``.

    ``counts`` gives each queue's size (before the step/status filters), for the tabs.
    """
    now = now or datetime.now(UTC)
    all_refs = list(refs)
    if q.team:
        all_refs = [r for r in all_refs if r.get("team") == q.team]
    queues: tuple[Queue, ...] = ("mine", "unclaimed", "open", "overdue", "completed",
                                 "declined", "urgent", "escalated")
    counts = {name: sum(1 for r in all_refs if in_queue(r, name, subject, now))
              for name in queues}
    chosen = [r for r in all_refs if in_queue(r, q.queue, subject, now)
              and (q.step is None or r.get("step") == q.step)
              and (q.status is None or r.get("status") == q.status)]
    chosen.sort(key=sort_key(q.sort), reverse=q.sort == "updated")
    total = len(chosen)
    pages = max(1, -(-total // q.size))
    page = min(q.page, pages)
    start = (page - 1) * q.size
    return {"items": chosen[start:start + q.size], "total": total, "page": page,
            "pages": pages, "size": q.size, "counts": counts,
            "steps": sorted({str(r.get("step")) for r in all_refs})}
