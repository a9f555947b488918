"""Traces and metrics on the real stack.

One episode's trace, exported over OTLP by the four service processes to an in-memory sink on
loopback, runs intake (HTTP) -> pathway -> referrals -> notifications -> the webhook call, with
each span parented on the previous hop's, and the webhook request carries ``traceparent``.
Every service's ``/metrics`` holds the shared metrics, and no label of any metric carries an
episode id, a referral id or another per-patient value.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from carepath_testkit.processes import Stack
from support.api import post_accepted
from support.observe import received_webhooks, wait_until
from support.otlp_sink import OTLPSink, SpanRecord
from support.processes import start_stack

pytestmark = [pytest.mark.kafka, pytest.mark.redis, pytest.mark.e2e]

EHR = {"Authorization": "Bearer dev-ehr-token"}
COORDINATOR = {"Authorization": "Bearer dev-coordinator-token"}
SERVICES = ("intake", "pathway", "referrals", "notifications")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# Label names a Carepath metric may carry: each has a closed set of values.
ALLOWED_LABELS = {
    "service", "group", "topic", "partition", "outcome", "kind", "store", "method", "route",
    "status_class", "channel", "team", "step", "status", "priority",
    # FastStream's middleware metrics
    "app_name", "broker", "handler", "destination", "exception_type",
    # prometheus_client's own
    "le", "quantile", "version", "implementation", "major", "minor", "patchlevel",
}


@pytest.fixture(scope="module")
def sink() -> Iterator[OTLPSink]:
    with OTLPSink() as s:
        yield s


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, redis_url: str, sink: OTLPSink) -> Iterator[Stack]:
    import asyncio

    from carepath_runtime.kafka_admin import create_topics

    ns = f"obs{uuid.uuid4().hex[:8]}"
    asyncio.run(create_topics(kafka_bootstrap, ns))
    s = start_stack(ns, kafka_bootstrap, redis_url, extra_env={
        "OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "CAREPATH_LAG_SAMPLE_SECONDS": "1",
    })
    yield s
    s.stop()


@pytest.fixture(scope="module")
def journey(stack: Stack) -> dict[str, Any]:
    """One episode through the stack; its referral ids and the webhooks it caused."""
    episode_id = f"ep-{uuid.uuid4().hex[:8]}"
    answer = post_accepted(f"{stack['intake'].url}/episodes", {
        "episode_id": episode_id, "region": "lumbar", "imaging_done": ["mri"],
        "medial_branch_blocks": [{"relief_percent": 85}], "radicular_pain": False,
        "red_flags": [], "bowel_bladder_dysfunction": False, "neurological_deficit": "none",
    }, EHR)
    assert answer.status_code == 202, answer.text

    def webhooks() -> list[dict[str, Any]]:
        return [w for w in received_webhooks(stack["receiver"].url)["received"]
                if w["event"].get("data", {}).get("episode_id") == episode_id
                and w["event"]["type"].startswith("carepath.referral.created")]

    assert wait_until(lambda: bool(webhooks()), 30), "no webhook for the episode"
    plan = httpx.get(f"{stack['referrals'].url}/episodes/{episode_id}/referrals",
                     headers=COORDINATOR, timeout=10).json()
    referral_ids = [r["referral_id"] for r in plan.get("referrals", plan)] if plan else []
    return {"episode_id": episode_id, "webhook": webhooks()[0], "referral_ids": referral_ids}


def _by_id(spans: list[SpanRecord]) -> dict[str, SpanRecord]:
    return {s.span_id: s for s in spans}


def _ancestors(span: SpanRecord, index: dict[str, SpanRecord]) -> list[SpanRecord]:
    chain = [span]
    while chain[-1].parent_id and chain[-1].parent_id in index:
        chain.append(index[chain[-1].parent_id])
    return chain


def test_one_trace_runs_from_intake_to_the_webhook_call(
    journey: dict[str, Any], sink: OTLPSink
) -> None:
    traceparent = journey["webhook"]["traceparent"]
    assert traceparent, "the webhook request carried no traceparent"
    _version, trace_id, parent_span, _flags = traceparent.split("-")

    def complete() -> bool:
        index = _by_id(sink.trace(trace_id))
        return parent_span in index and not _ancestors(index[parent_span], index)[-1].parent_id

    assert wait_until(complete, 20), "the webhook's span chain did not reach a root"
    spans = sink.trace(trace_id)
    index = _by_id(spans)
    # Walk up from the span that made the webhook call to the trace's root.
    chain = _ancestors(index[parent_span], index)
    services = [s.service for s in reversed(chain)]
    names = [s.name for s in reversed(chain)]
    assert services[0] == "carepath-intake" and names[0] == "POST /episodes", names
    assert chain[0].service == "carepath-notifications" and chain[0].name == "deliver webhook"
    # Every service appears on the path, in pipeline order.
    first_seen = [svc for i, svc in enumerate(services) if svc not in services[:i]]
    assert first_seen == [f"carepath-{name}" for name in SERVICES], names
    process = [s for s in chain if s.name.endswith(" process")]
    assert len(process) == 3, names  # pathway, referrals, notifications each consumed once
    for span in process:
        assert span.attributes["messaging.system"] == "kafka"
        assert span.attributes["messaging.destination.name"]
        assert span.attributes["messaging.consumer.group.name"].endswith(
            span.service.removeprefix("carepath-"))
    # No span attribute carries the episode id (the record key is dropped).
    for span in spans:
        for value in span.attributes.values():
            assert journey["episode_id"] not in str(value), (span.name, value)


def _samples(url: str) -> list[tuple[str, dict[str, str]]]:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return [(sample.name, dict(sample.labels))
            for family in text_string_to_metric_families(text) for sample in family.samples]


def test_every_service_serves_metrics_and_no_label_names_a_patient(
    stack: Stack, journey: dict[str, Any]
) -> None:
    def lag_sampled() -> bool:
        return any(name == "carepath_consumer_lag_messages"
                   for name, _ in _samples(stack["referrals"].url))

    assert wait_until(lag_sampled, 20), "no lag gauge on referrals"
    assert wait_until(lambda: any(name == "carepath_referrals_open"
                                  for name, _ in _samples(stack["referrals"].url)), 20)
    per_service = {name: _samples(stack[name].url) for name in SERVICES}
    names = {name: {n for n, _ in samples} for name, samples in per_service.items()}
    for service in SERVICES:
        assert "carepath_http_requests_total" in names[service], service
    for service in ("pathway", "referrals", "notifications"):
        assert "faststream_received_messages_total" in names[service], service
        assert "carepath_handler_duration_seconds_bucket" in names[service], service
        assert "carepath_consumer_lag_messages" in names[service], service
        assert "carepath_consumer_lag_seconds" in names[service], service
    assert "faststream_published_messages_total" in names["intake"]
    assert "carepath_webhook_deliveries_total" in names["notifications"]
    webhooks_2xx = [labels for n, labels in per_service["notifications"]
                    if n == "carepath_webhook_deliveries_total"]
    assert {"status_class": "2xx"} in webhooks_2xx

    forbidden = [journey["episode_id"], *journey["referral_ids"]]
    for service, samples in per_service.items():
        for name, labels in samples:
            assert set(labels) <= ALLOWED_LABELS, (service, name, labels)
            for value in labels.values():
                assert not UUID.search(value), (service, name, labels)
                for secret in forbidden:
                    assert secret not in value, (service, name, labels)
    routes = {labels["route"] for n, labels in per_service["referrals"]
              if n == "carepath_http_requests_total"}
    assert "/episodes/{episode_id}/referrals" in routes, routes
