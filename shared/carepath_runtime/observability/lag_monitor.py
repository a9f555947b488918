"""Consumer lag per group and partition, in records and in seconds, sampled in the background.

Lag is measured against what the group *committed*, the offset a restarted consumer resumes
from: records = log end offset - committed offset; seconds = now - timestamp of the first
uncommitted record (0 when caught up). Any replica of a service reports the same values for
its groups, so dashboards aggregate them with ``max``.

The monitor uses its own admin client and a group-less consumer, never the service's
consumers, so sampling cannot disturb consumption or its commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from carepath_runtime.log import get_logger
from carepath_runtime.observability.metrics import (
    CONSUMER_LAG_MESSAGES,
    CONSUMER_LAG_SECONDS,
    service_name,
)

log = get_logger(__name__)


class LagMonitor:
    def __init__(self, bootstrap: str,
                 subscriptions: Callable[[], Sequence[tuple[str, str]]],
                 interval_s: float = 15.0, client_kwargs: dict[str, Any] | None = None) -> None:
        """``subscriptions``: the (group, topic) pairs, asked for when starting and when
        sampling, so subscribers registered after the monitor was made are included."""
        self._bootstrap = bootstrap
        self._subscriptions = subscriptions
        self._interval = interval_s
        self._kwargs = client_kwargs or {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._subscriptions() and self._task is None:
            self._task = asyncio.create_task(self._run(), name="lag-monitor")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.sample_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Kafka away: keep the last values, try again later
                log.debug("lag_sample_failed", error=type(exc).__name__)
            await asyncio.sleep(self._interval)

    async def sample_once(self) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap,
                                    request_timeout_ms=5000, **self._kwargs)
        consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, group_id=None,
                                    enable_auto_commit=False, request_timeout_ms=5000,
                                    max_partition_fetch_bytes=65536, **self._kwargs)
        await admin.start()
        await consumer.start()
        try:
            groups: dict[str, list[str]] = {}
            for group, topic in self._subscriptions():
                groups.setdefault(group, []).append(topic)
            for group, topics in groups.items():
                await self._sample_group(admin, consumer, group, topics)
        finally:
            await consumer.stop()
            await admin.close()

    async def _sample_group(self, admin: AIOKafkaAdminClient, consumer: AIOKafkaConsumer,
                            group: str, topics: list[str]) -> None:
        committed_meta = await admin.list_consumer_group_offsets(group)
        committed = {tp: meta.offset for tp, meta in committed_meta.items()}
        partitions: list[TopicPartition] = []
        for topic in topics:
            ids = consumer.partitions_for_topic(topic) or await _partitions(consumer, topic)
            partitions.extend(TopicPartition(topic, p) for p in sorted(ids))
        if not partitions:
            return
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
        behind: dict[TopicPartition, int] = {}
        me = service_name()
        for tp in partitions:
            start_at = committed.get(tp)
            if start_at is None or start_at < 0:
                start_at = starts[tp]
            lag = max(0, ends[tp] - start_at)
            CONSUMER_LAG_MESSAGES.labels(me, group, tp.topic, str(tp.partition)).set(lag)
            if lag == 0:
                CONSUMER_LAG_SECONDS.labels(me, group, tp.topic, str(tp.partition)).set(0)
            else:
                behind[tp] = start_at
        if behind:
            ages = await _first_record_ages(consumer, behind)
            for tp, age in ages.items():
                CONSUMER_LAG_SECONDS.labels(me, group, tp.topic, str(tp.partition)).set(age)


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()  # (no public call in aiokafka)
    return consumer.partitions_for_topic(topic) or set()


async def _first_record_ages(consumer: AIOKafkaConsumer,
                             behind: dict[TopicPartition, int]) -> dict[TopicPartition, float]:
    """Seconds since the first uncommitted record of each partition was written."""
    consumer.assign(list(behind))
    for tp, offset in behind.items():
        consumer.seek(tp, offset)
    ages: dict[TopicPartition, float] = {}
    deadline = time.monotonic() + 2.0
    while len(ages) < len(behind) and time.monotonic() < deadline:
        batch = await consumer.getmany(timeout_ms=500, max_records=len(behind) * 4)
        now_ms = time.time() * 1000
        for tp, records in batch.items():
            if tp not in ages and records:
                ages[tp] = max(0.0, (now_ms - records[0].timestamp) / 1000)
                consumer.pause(tp)
    consumer.unsubscribe()
    return ages
