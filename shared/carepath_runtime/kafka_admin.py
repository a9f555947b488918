"""Topic creation and broker reachability, shared by scripts, services and tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from carepath_contracts.topics import Topics, replication_for


async def wait_for_kafka(bootstrap: str, timeout: float = 60.0, *,
                         client_options: Mapping[str, Any] | None = None) -> None:
    """Return once the broker answers a metadata request; raise TimeoutError otherwise.

    ``client_options``: TLS/SASL keyword arguments
    (:func:`carepath_runtime.transport_security.kafka_client_options`).
    """
    opts = dict(client_options or {})
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000,
                                    **opts)
        try:
            await admin.start()
            await admin.list_topics()
            return
        except (KafkaError, OSError) as exc:
            last = exc
        finally:
            await admin.close()
        await asyncio.sleep(0.5)
    raise TimeoutError(f"Kafka at {bootstrap} did not answer within {timeout}s: {last!r}")


async def broker_count(admin: AIOKafkaAdminClient) -> int:
    """How many brokers the cluster behind the bootstrap servers has (DescribeCluster)."""
    return len((await admin.describe_cluster())["brokers"])


async def create_topics(bootstrap: str, namespace: str, *,
                        client_options: Mapping[str, Any] | None = None) -> list[str]:
    """Create every topic of the namespace that does not exist yet. Returns those created.

    Replication follows the cluster the bootstrap servers reveal (:func:`replication_for`):
    RF 3 and min.insync.replicas 2 on three brokers or more, RF 1 on a single broker.
    """
    topics = Topics(namespace)
    opts = dict(client_options or {})
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000, **opts)
    await admin.start()
    created: list[str] = []
    try:
        brokers = await broker_count(admin)
        rf, _ = replication_for(brokers)
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(
                name=name,
                num_partitions=spec.partitions,
                replication_factor=rf,
                topic_configs=spec.kafka_config(brokers),
            )
            for name, spec in topics.all()
            if name not in existing
        ]
        for topic in wanted:
            try:
                await admin.create_topics([topic])
                created.append(topic.name)
            except TopicAlreadyExistsError:
                pass
    finally:
        await admin.close()
    # Topic metadata propagates asynchronously; wait until every topic is visible.
    await _wait_visible(bootstrap, [name for name, _ in topics.all()], opts)
    return created


async def _wait_visible(bootstrap: str, names: list[str], opts: dict[str, Any],
                        timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **opts)
    await admin.start()
    try:
        while time.monotonic() < deadline:
            if set(names) <= set(await admin.list_topics()):
                return
            await asyncio.sleep(0.2)
    finally:
        await admin.close()
    raise TimeoutError(f"topics not visible after {timeout}s")
