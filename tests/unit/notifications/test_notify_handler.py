"""The consuming handler: an event nobody subscribed to costs nothing beyond the type check,
and a matched one becomes one job per subscription, enqueued in one step (with the jobs of
the rest of its poll: the handler defers the enqueue to the consumer)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast

import orjson
from pydantic import BaseModel

from carepath_contracts.envelope import Envelope
from carepath_contracts.events import CARE_PLAN_UPDATED, REFERRAL_CREATED, ReferralCreated
from carepath_notifications.domain.jobs import DeliveryJob
from carepath_notifications.domain.subscription_index import SubscriptionIndex
from carepath_notifications.domain.subscriptions import Subscription
from carepath_notifications.handlers import make_handler
from carepath_notifications.worker import coalesce_delay
from carepath_runtime.consumer import Delivery
from carepath_runtime.effects import Deferred, by_sink

SECRET = "whsec_Y2FyZXBhdGgtZGV2LXNlY3JldC1rZXktMDEyMzQ1"


def hook(sid: str, types: list[str], kind: str = "system", team: str | None = None
         ) -> Subscription:
    return Subscription.model_validate({
        "id": sid, "subscriber": sid, "kind": kind, "team": team, "event_types": types,
        "channel": "webhook", "url": f"https://{sid}.example/hook", "secret": SECRET,
    })


class Store:
    def __init__(self, subs: list[Subscription]) -> None:
        self.index = SubscriptionIndex(subs)

    async def current(self) -> SubscriptionIndex:
        return self.index


class Queue:
    def __init__(self, existing: int = 0) -> None:
        self.calls: list[list[DeliveryJob]] = []
        self.existing = existing

    async def enqueue_many(self, jobs: Sequence[DeliveryJob]) -> int:
        self.calls.append(list(jobs))
        return len(jobs) - self.existing


class Untouchable(BaseModel):
    """A body that fails the test if anything reads or serialises it."""

    def model_dump(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        raise AssertionError("the body of an event nobody wants was serialised")

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the body of an event nobody wants was read ({name})")


async def consumed(handle: Any, *deliveries: Delivery) -> None:
    """What the consumer does with a poll: each record's handler, then the deferred effects,
    each sink's together."""
    effects = [effect for d in deliveries if (effect := await handle(d)) is not None]
    assert all(isinstance(e, Deferred) for e in effects)
    for sink, items in by_sink(effects):
        await sink.apply_all(items)


def delivery(event_type: str, body: BaseModel, event_id: str = "ev-1") -> Delivery:
    env = Envelope.new(event_type=event_type, source="/test", event_id=event_id,
                       time=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    return Delivery(envelope=env, body=body, topic="t", partition=0, offset=0, key="ep-1")


def created(team: str) -> ReferralCreated:
    return ReferralCreated(referral_id="ref-1", episode_id="ep-1", recommendation_id="rec-1",
                           step="imaging.mri", team=team, priority="routine",
                           status="requested", created_at=datetime(2026, 1, 2, tzinfo=UTC))


async def test_an_event_type_nobody_wants_ends_before_its_body_is_touched() -> None:
    queue, woken = Queue(), []
    handle = make_handler(cast(Any, Store([hook("ehr", ["carepath.referral.*"])])),
                          cast(Any, queue), lambda: woken.append(1))
    await consumed(handle, delivery(CARE_PLAN_UPDATED, Untouchable()))
    assert queue.calls == [] and woken == []


async def test_a_matched_event_is_one_step_with_a_job_per_subscription() -> None:
    subs = [hook("ehr", ["carepath.referral.*"]),
            hook("radiology", ["carepath.referral.*"], kind="team", team="radiology"),
            hook("surgery", ["carepath.referral.*"], kind="team", team="surgery")]
    queue, woken = Queue(), []
    handle = make_handler(cast(Any, Store(subs)), cast(Any, queue), lambda: woken.append(1))
    await consumed(handle, delivery(REFERRAL_CREATED, created("radiology")))
    [jobs] = queue.calls
    assert sorted(j.subscription_id for j in jobs) == ["ehr", "radiology"]
    assert {j.id for j in jobs} == {"ehr:ev-1", "radiology:ev-1"}
    notice = orjson.loads(jobs[0].body)
    assert notice["id"] == "ev-1" and notice["type"] == REFERRAL_CREATED
    assert notice["data"]["team"] == "radiology" and notice["data"]["referral_id"] == "ref-1"
    assert jobs[0].body == jobs[1].body  # built once, signed identically on every attempt
    assert woken == [1]


async def test_a_redelivered_event_adds_no_job_and_wakes_nobody() -> None:
    queue, woken = Queue(existing=1), []
    handle = make_handler(cast(Any, Store([hook("ehr", ["*"])])), cast(Any, queue),
                          lambda: woken.append(1))
    await consumed(handle, delivery(REFERRAL_CREATED, created("radiology")))
    assert len(queue.calls) == 1 and woken == []


async def test_a_team_event_for_another_team_enqueues_nothing() -> None:
    queue: Queue = Queue()
    handle = make_handler(
        cast(Any, Store([hook("surgery", ["*"], kind="team", team="surgery")])),
        cast(Any, queue), lambda: None)
    await consumed(handle, delivery(REFERRAL_CREATED, created("radiology")))
    assert queue.calls == []


async def test_a_polls_matched_events_are_enqueued_in_one_step() -> None:
    queue, woken = Queue(), []
    handle = make_handler(cast(Any, Store([hook("ehr", ["carepath.referral.*"])])),
                          cast(Any, queue), lambda: woken.append(1))
    await consumed(handle, delivery(REFERRAL_CREATED, created("radiology"), "ev-1"),
                   delivery(CARE_PLAN_UPDATED, Untouchable(), "ev-2"),
                   delivery(REFERRAL_CREATED, created("surgery"), "ev-3"))
    assert [[j.id for j in call] for call in queue.calls] == [["ehr:ev-1", "ehr:ev-3"]]
    assert woken == [1]


async def test_a_large_polls_jobs_go_in_bounded_script_calls() -> None:
    queue, woken = Queue(), []
    handle = make_handler(cast(Any, Store([hook(f"s{i}", ["carepath.referral.*"])
                                           for i in range(3)])),
                          cast(Any, queue), lambda: woken.append(1))
    await consumed(handle, *(delivery(REFERRAL_CREATED, created("radiology"), f"ev-{i}")
                             for i in range(100)))
    assert [len(call) for call in queue.calls] == [256, 44]  # 300 jobs, in order
    assert [j.id for call in queue.calls for j in call][:3] == ["s0:ev-0", "s1:ev-0", "s2:ev-0"]
    assert woken == [1]


def test_a_claim_after_a_quiet_spell_is_not_held_back() -> None:
    assert coalesce_delay(since_last_s=5.0, gap_s=0.01) == 0.0
    assert coalesce_delay(since_last_s=0.01, gap_s=0.01) == 0.0
    assert 0.0 < coalesce_delay(since_last_s=0.004, gap_s=0.01) <= 0.006
