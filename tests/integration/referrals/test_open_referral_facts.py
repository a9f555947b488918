"""The plan store keeps a compact facts record per open referral; the service-level gauges
are recounted from it alone (no referral document is loaded), and a closed referral leaves it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from carepath_contracts.envelope import Cause
from carepath_referrals.domain import (
    DEFAULT_ROUTING,
    SYSTEM_ACTOR,
    Cancel,
    CarePlan,
    apply_action,
    apply_referral_change,
    new_plan,
    new_referral,
)
from carepath_referrals.plan_events import plan_events
from carepath_referrals.plan_store import PlanStore
from carepath_referrals.service_levels import refresh_once
from carepath_runtime.kafka_admin import create_topics
from carepath_runtime.observability.clinical_metrics import REFERRALS_OPEN
from carepath_runtime.service import Runtime
from support.runtime import started_runtime

pytestmark = [pytest.mark.kafka, pytest.mark.redis]

NOW = datetime.now(UTC)


@pytest.fixture()
async def runtime(kafka_bootstrap: str, redis_url: str) -> AsyncIterator[Runtime]:
    namespace = f"facts{uuid.uuid4().hex[:10]}"
    await create_topics(kafka_bootstrap, namespace)
    async with started_runtime("referrals-test", kafka_bootstrap, redis_url, namespace) as rt:
        yield rt


def _plan_with(episode_id: str, steps: list[str]) -> CarePlan:
    referrals = [new_referral(episode_id=episode_id, recommendation_id=f"rec-{episode_id}-{i}",
                              decision=DEFAULT_ROUTING.route(step, "routine", NOW), now=NOW)
                 for i, step in enumerate(steps)]
    return new_plan(episode_id, NOW).model_copy(
        update={"version": 1, "referrals": {r.referral_id: r for r in referrals}})


def _open_gauge_total() -> float:
    return sum(sample.value for metric in REFERRALS_OPEN.collect()
               for sample in metric.samples)


async def test_open_facts_follow_the_referrals_and_feed_the_gauges(runtime: Runtime) -> None:
    store = PlanStore(runtime)
    plans = {f"ep-{i}": _plan_with(f"ep-{i}", ["imaging.mri", "rehab.physical_therapy"])
             for i in range(3)}
    for episode_id, plan in plans.items():
        await store.change_and_publish(
            episode_id, f"seed-{episode_id}",
            lambda before, plan=plan: (plan, plan_events(runtime.topics, before, plan,
                                                         Cause(id="seed"))),
            runtime.broker)

    facts = [f async for f in store.open_referral_facts(chunk=2)]
    assert len(facts) == 6
    assert {f.team for f in facts} == {"radiology", "physical_therapy"}
    await refresh_once(store)
    assert _open_gauge_total() == 6

    # cancel one referral: it leaves the open index, and the next recount says so
    plan = plans["ep-0"]
    referral = next(iter(plan.referrals.values()))
    cancelled, _ = apply_action(referral, Cancel(reason="duplicate"), SYSTEM_ACTOR,
                                NOW + timedelta(minutes=1), DEFAULT_ROUTING)
    after = apply_referral_change(plan, cancelled)
    await store.change_and_publish(
        "ep-0", "cancel-1",
        lambda before: (after, plan_events(runtime.topics, before, after, Cause(id="c"))),
        runtime.broker)
    assert len([f async for f in store.open_referral_facts()]) == 5
    await refresh_once(store)
    assert _open_gauge_total() == 5
