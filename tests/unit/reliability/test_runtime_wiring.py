"""What a service wires onto its Runtime is typed: subscription specs, committers, resources."""

from __future__ import annotations

from carepath_contracts.events import PATHWAY_STATUS, PathwayStatus
from carepath_runtime.service import make_runtime, subscribe
from carepath_runtime.settings import Settings
from carepath_runtime.subscription import Delivery


async def on_status(delivery: Delivery[PathwayStatus]) -> None:
    return None


async def test_subscribe_records_its_spec_and_committer() -> None:
    runtime = make_runtime("wiring", Settings(carepath_namespace="wired"))
    spec = subscribe(runtime, topic=runtime.topics.pathway_status, group="dash",
                     dlq_topic=runtime.topics.dlq_notifications,
                     handlers={PathwayStatus: on_status})
    assert runtime.subscriptions == [spec]
    assert spec.group == runtime.topics.group("dash")
    assert spec.accepted_types == {PATHWAY_STATUS}
    assert spec.retry.max_attempts == runtime.settings.carepath_max_attempts
    assert runtime.consumer_groups() == [(spec.group, runtime.topics.pathway_status)]
    assert len(runtime.committers) == 1
    await runtime.aclose()


async def test_the_runtime_closes_what_the_service_owns() -> None:
    runtime = make_runtime("wiring", Settings(carepath_namespace="wired"))
    closed: list[str] = []

    class Client:
        async def aclose(self) -> None:
            closed.append("client")

    runtime.resources.append(Client())
    await runtime.aclose()
    assert closed == ["client"]
