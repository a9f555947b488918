"""OpenTelemetry traces across HTTP and Kafka hops.

``configure_tracing(service)`` installs a tracer provider once per process. Spans are exported
over OTLP/HTTP only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or the traces-specific variable) is
set; otherwise the provider records nothing and exports nothing.

Kafka hops use FastStream's telemetry middleware, which injects W3C ``traceparent`` into the
record headers beside the CloudEvents ``ce_*`` attributes and parents each ``process`` span on
it. Carepath's attribute provider drops the record key (an episode id) from span attributes and
adds the current messaging semantic-convention names; the consumer adds
``messaging.consumer.group.name`` (the middleware does not know the group).

Consumers take records in batches; FastStream's span of a batch starts a trace of its own
(linked to the records'), so the consumer gives each record its own ``<topic> process`` span
(:func:`record_span`), parented on the record's ``traceparent``, and makes it current while
the record's handler runs and while its outbound events are published (:func:`within`):
each event's ``traceparent`` continues the trace of the record that caused it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any

from faststream.kafka.opentelemetry.provider import (
    BatchKafkaTelemetrySettingsProvider,
    KafkaTelemetrySettingsProvider,
)
from faststream.opentelemetry.middleware import TelemetryMiddleware
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.semconv.trace import SpanAttributes
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_KEY_ATTRS = (SpanAttributes.MESSAGING_KAFKA_MESSAGE_KEY,)
_TRACE_PROPAGATOR = TraceContextTextMapPropagator()
_configured: dict[str, Any] = {}


def tracing_enabled() -> bool:
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
                or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def configure_tracing(service: str) -> trace.TracerProvider:
    """The process's tracer provider (installed on first call)."""
    if "provider" in _configured:
        provider: trace.TracerProvider = _configured["provider"]
        return provider
    if not tracing_enabled():
        provider = trace.NoOpTracerProvider()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        sdk = TracerProvider(resource=Resource.create({"service.name": f"carepath-{service}"}))
        sdk.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        provider = sdk
        trace.set_tracer_provider(provider)
    _configured["provider"] = provider
    return provider


def shutdown_tracing() -> None:
    """Flush and stop the exporter (at service shutdown)."""
    provider = _configured.get("provider")
    shutdown = getattr(provider, "shutdown", None)
    if callable(shutdown):
        shutdown()


class _PrivateKafkaAttrs(KafkaTelemetrySettingsProvider):
    """FastStream's consume attributes without the record key, with current semconv names."""

    def get_consume_attrs_from_message(self, msg: Any) -> dict[str, Any]:
        attrs = super().get_consume_attrs_from_message(msg)
        for name in _KEY_ATTRS:
            attrs.pop(name, None)
        record = msg.raw_message
        attrs["messaging.destination.name"] = record.topic
        attrs["messaging.destination.partition.id"] = str(record.partition)
        attrs["messaging.kafka.offset"] = record.offset
        attrs["messaging.operation.name"] = "process"
        attrs["messaging.operation.type"] = "process"
        return attrs

    def get_publish_attrs_from_cmd(self, cmd: Any) -> dict[str, Any]:
        attrs = super().get_publish_attrs_from_cmd(cmd)
        for name in _KEY_ATTRS:
            attrs.pop(name, None)
        attrs["messaging.operation.name"] = "send"
        attrs["messaging.operation.type"] = "send"
        return attrs


def _provider_factory(msg: Any) -> Any:
    if isinstance(msg, (list, tuple)):
        return BatchKafkaTelemetrySettingsProvider()
    return _PrivateKafkaAttrs()


class CarepathKafkaTelemetry(TelemetryMiddleware[Any]):
    """FastStream's Kafka telemetry middleware with Carepath's attribute provider."""

    def __init__(self, tracer_provider: trace.TracerProvider) -> None:
        super().__init__(settings_provider_factory=_provider_factory,
                         tracer_provider=tracer_provider, include_messages_counters=False)


def kafka_telemetry(service: str) -> CarepathKafkaTelemetry | None:
    """The broker middleware, or None when tracing is off (no per-message cost then)."""
    if not tracing_enabled():
        return None
    return CarepathKafkaTelemetry(configure_tracing(service))


def mark_consumer_group(group: str) -> None:
    """Name the consumer group on the current ``process`` span."""
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attribute("messaging.consumer.group.name", group)


def inject_headers(headers: MutableMapping[str, str]) -> None:
    """Add ``traceparent`` (and ``tracestate``) of the current span to outgoing headers."""
    propagate.inject(headers)


def extract_context(headers: Mapping[str, str]) -> Any:
    return propagate.extract(headers)


@contextmanager
def continued_span(name: str, traceparent: str, attributes: Mapping[str, str]) -> Iterator[None]:
    """A span that continues the trace named by a stored ``traceparent`` (none when tracing
    is off or nothing was stored)."""
    provider = _configured.get("provider")
    if not traceparent or provider is None or not tracing_enabled():
        yield
        return
    tracer = trace.get_tracer("carepath", tracer_provider=provider)
    ctx = propagate.extract({"traceparent": traceparent})
    with tracer.start_as_current_span(name, context=ctx, kind=trace.SpanKind.CLIENT,
                                      attributes=dict(attributes)):
        yield


def record_span(*, topic: str, partition: int, offset: int, timestamp: int, group: str,
                headers: Mapping[str, str]) -> trace.Span | None:
    """The ``process`` span of one consumed record, parented on its ``traceparent`` (None
    when tracing is off). The caller ends it. No attribute names the record key."""
    provider = _configured.get("provider")
    if provider is None or not tracing_enabled():
        return None
    tracer = trace.get_tracer("carepath", tracer_provider=provider)
    return tracer.start_span(
        f"{topic} process",
        context=_TRACE_PROPAGATOR.extract(headers),
        kind=trace.SpanKind.CONSUMER,
        attributes={
            "messaging.system": "kafka",
            "messaging.destination.name": topic,
            "messaging.destination.partition.id": str(partition),
            "messaging.kafka.offset": offset,
            "messaging.message.id": f"{offset}-{timestamp}",
            "messaging.operation": "process",
            "messaging.operation.name": "process",
            "messaging.operation.type": "process",
            "messaging.consumer.group.name": group,
        },
    )


@contextmanager
def within(span: trace.Span | None) -> Iterator[None]:
    """Make ``span`` the current span (nothing when None)."""
    if span is None:
        yield
        return
    token = otel_context.attach(trace.set_span_in_context(span))
    try:
        yield
    finally:
        otel_context.detach(token)
