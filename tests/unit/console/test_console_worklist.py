"""The console's pure parts: worklist queues, sorting and paging; cookie and sign-in settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carepath_console.settings import ConsoleSettings
from carepath_console.worklist import WorklistQuery, in_queue, select

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
STATUSES = ["requested", "received", "accepted", "in-progress", "rejected", "completed",
            "cancelled"]


def ref(i: int, status: str = "requested", **extra: Any) -> dict[str, Any]:
    return {"referral_id": f"r{i:05d}", "episode_id": f"e{i}", "step": "ablation.rfa",
            "team": "interventional_pain", "status": status, "priority": "routine",
            "business_status": "awaiting-triage", "claimed_by": None,
            "due_at": (NOW + timedelta(hours=i - 50)).isoformat(),
            "updated_at": NOW.isoformat(), **extra}


refs_strategy = st.lists(
    st.builds(lambda i, s, p, c, h: ref(i, s, priority=p, claimed_by=c,
                                        due_at=(NOW + timedelta(hours=h)).isoformat()),
              st.integers(0, 99999), st.sampled_from(STATUSES),
              st.sampled_from(["routine", "urgent"]), st.sampled_from([None, "me", "other"]),
              st.integers(-100, 100)),
    max_size=120, unique_by=lambda r: r["referral_id"])


@given(refs_strategy, st.integers(1, 7), st.sampled_from(["due", "priority", "updated"]))
def test_pages_cover_the_queue_exactly_once(refs: list[dict[str, Any]], size: int,
                                            sort: str) -> None:
    first = select(refs, WorklistQuery(queue="open", sort=sort, size=size), "me", NOW)  # type: ignore[arg-type]
    seen: list[str] = []
    for page in range(1, first["pages"] + 1):
        out = select(refs, WorklistQuery(queue="open", sort=sort, size=size, page=page), "me", NOW)  # type: ignore[arg-type]
        assert len(out["items"]) <= size
        seen.extend(r["referral_id"] for r in out["items"])
    expected = {r["referral_id"] for r in refs if r["status"] not in ("completed", "cancelled")}
    assert len(seen) == len(set(seen)) == first["total"]
    assert set(seen) == expected


@given(refs_strategy)
def test_every_queue_is_a_subset_of_what_the_api_returned(refs: list[dict[str, Any]]) -> None:
    ids = {r["referral_id"] for r in refs}
    for queue in ("mine", "unclaimed", "open", "overdue", "completed", "declined", "urgent",
                  "escalated"):
        out = select(refs, WorklistQuery(queue=queue, size=200), "me", NOW)  # type: ignore[arg-type]
        assert {r["referral_id"] for r in out["items"]} <= ids
        assert out["counts"][queue] == out["total"]


def test_queues() -> None:
    assert in_queue(ref(1, claimed_by="me", status="accepted"), "mine", "me", NOW)
    assert not in_queue(ref(1, claimed_by="other", status="accepted"), "mine", "me", NOW)
    assert in_queue(ref(1), "unclaimed", "me", NOW)
    assert not in_queue(ref(1, status="received", claimed_by="x"), "unclaimed", "me", NOW)
    assert in_queue(ref(10), "overdue", "me", NOW)  # due 40 h ago
    assert not in_queue(ref(10, status="completed"), "overdue", "me", NOW)
    assert not in_queue(ref(60), "overdue", "me", NOW)
    assert in_queue(ref(1, business_status="declined-awaiting-reroute", status="rejected"),
                    "declined", "me", NOW)
    assert in_queue(ref(1, priority="urgent"), "urgent", "me", NOW)
    assert in_queue(ref(1, escalated_at=NOW.isoformat()), "escalated", "me", NOW)


def test_sort_by_priority_puts_urgent_first_then_due() -> None:
    refs = [ref(5), ref(3, priority="urgent"), ref(1), ref(4, priority="urgent")]
    out = select(refs, WorklistQuery(sort="priority"), "me", NOW)
    assert [r["referral_id"] for r in out["items"]] == ["r00003", "r00004", "r00001", "r00005"]


def test_a_page_past_the_end_gives_the_last_page() -> None:
    out = select([ref(i) for i in range(120)], WorklistQuery(page=99, size=50), "me", NOW)
    assert out["page"] == 3 and len(out["items"]) == 20


def test_bad_queries_are_refused() -> None:
    for bad in ({"queue": "everything"}, {"size": 0}, {"size": 10_000}, {"page": 0}):
        with pytest.raises(ValueError):
            WorklistQuery.model_validate(bad)


def test_cookie_and_sign_in_follow_the_setting() -> None:
    dev = ConsoleSettings(carepath_env="development")
    assert dev.dev_signin and not dev.cookie_secure and dev.cookie_name == "carepath-session"
    prod = ConsoleSettings(carepath_env="production", console_dev_signin=True,
                           console_cookie_secure=False)
    assert not prod.dev_signin  # never in production, whatever the flag says
    assert prod.cookie_secure and prod.cookie_name == "__Host-carepath-session"
    assert prod.stream_token is None
    https = ConsoleSettings(console_public_origin="https://console.example.org")
    assert https.cookie_secure and https.cookie_name.startswith("__Host-")
    assert not ConsoleSettings(console_dev_signin=False).dev_signin
