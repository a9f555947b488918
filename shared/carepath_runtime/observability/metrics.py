"""The process's Prometheus registry and the metrics every service shares.

One service runs per process, so one registry per process (``REGISTRY``) serves ``/metrics``.
Label values are bounded by construction: service and group names, topic names, partitions,
HTTP route templates (never the raw path), status classes and the kinds named in code.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

#: The service this process runs (``set_service``), the ``service`` label of shared metrics.
_SERVICE = {"name": "unknown"}


def set_service(name: str) -> None:
    _SERVICE["name"] = name


def service_name() -> str:
    return _SERVICE["name"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HANDLER_SECONDS = Histogram(
    "carepath_handler_duration_seconds",
    "Time a consumer's handler took for one record, effect and publishes included.",
    ["service", "group", "topic", "outcome"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
RETRIES = Counter(
    "carepath_retries_total",
    "Records retried by a consumer, by why (transient: a dependency was down; "
    "handler_failed: the handler raised while dependencies were healthy).",
    ["service", "group", "kind"],
    registry=REGISTRY,
)
DEAD_LETTERS = Counter(
    "carepath_dead_letters_total",
    "Records sent to a dead-letter topic, by cause kind.",
    ["service", "group", "kind"],
    registry=REGISTRY,
)
CONSUMER_LAG_MESSAGES = Gauge(
    "carepath_consumer_lag_messages",
    "Records on the partition after the group's committed offset.",
    ["service", "group", "topic", "partition"],
    registry=REGISTRY,
)
CONSUMER_LAG_SECONDS = Gauge(
    "carepath_consumer_lag_seconds",
    "Age of the oldest record the group has not committed yet (0 when caught up).",
    ["service", "group", "topic", "partition"],
    registry=REGISTRY,
)
OUTBOX_PENDING = Gauge(
    "carepath_outbox_depth",
    "Outbox depth: events written with a state change in this process and not yet "
    "marked published on Kafka.",
    ["service", "store"],
    registry=REGISTRY,
)
HTTP_REQUESTS = Counter(
    "carepath_http_requests_total",
    "HTTP requests answered, by route template and status class.",
    ["service", "method", "route", "status_class"],
    registry=REGISTRY,
)
HTTP_SECONDS = Histogram(
    "carepath_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template.",
    ["service", "method", "route"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
WEBHOOK_DELIVERIES = Counter(
    "carepath_webhook_deliveries_total",
    "Webhook delivery attempts by outcome: the HTTP status class (2xx..5xx), or "
    "timeout, connect_error, refused_destination.",
    ["status_class"],
    registry=REGISTRY,
)
NOTIFICATION_DEAD_JOBS = Gauge(
    "carepath_notification_dead_jobs",
    "Delivery jobs in the dead set (attempts exhausted or refused), waiting for a redrive.",
    registry=REGISTRY,
)
NOTIFICATION_JOBS = Counter(
    "carepath_notification_jobs_total",
    "Notification jobs finished, by channel and outcome (delivered, retried, dead).",
    ["channel", "outcome"],
    registry=REGISTRY,
)


def status_class(status: int) -> str:
    """``2xx`` for 200..299 and so on: a bounded label for any status code."""
    return f"{max(1, min(5, status // 100))}xx"


def exposition() -> tuple[bytes, str]:
    """The registry's text exposition and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
