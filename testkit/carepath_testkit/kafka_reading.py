"""Reading topics back without a consumer group: partitions, end offsets, records, lag.

Nothing here commits an offset; :func:`committed_lag` only reads a group's commits.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient


async def topic_partitions(bootstrap: str, *topics: str, timeout: float = 10.0
                           ) -> list[TopicPartition]:
    """Every partition of ``topics``, sorted, from the cluster's own description.

    Waits up to ``timeout`` seconds for a topic's metadata to show partitions (a topic just
    created may not have them yet); raises RuntimeError otherwise.
    """
    deadline = time.monotonic() + timeout
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        while True:
            described = await admin.describe_topics(list(topics))
            found = {d["topic"]: [p["partition"] for p in d["partitions"]] for d in described}
            missing = [t for t in topics if not found.get(t)]
            if not missing:
                return sorted(TopicPartition(t, p) for t in topics for p in found[t])
            if time.monotonic() > deadline:
                raise RuntimeError(f"no partitions for {missing}")
            await asyncio.sleep(0.1)
    finally:
        await admin.close()


async def end_offsets(bootstrap: str, topics: list[str]) -> dict[TopicPartition, int]:
    """The current end offset of every partition of ``topics``."""
    parts = await topic_partitions(bootstrap, *topics)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        offsets: dict[TopicPartition, int] = await consumer.end_offsets(parts)
        return offsets
    finally:
        await consumer.stop()


async def read_range(
    bootstrap: str,
    end: Mapping[TopicPartition, int],
    start: Mapping[TopicPartition, int] | None = None,
) -> list[Any]:
    """Every record in [start, end) of each partition of ``end``, in order per partition.

    A partition missing from ``start`` is read from its beginning. Returns aiokafka
    ``ConsumerRecord`` objects (bytes keys, values and header values).
    """
    start = start or {}
    out: list[Any] = []
    wanted = {tp: e for tp, e in end.items() if e > start.get(tp, 0)}
    if not wanted:  # (a consumer stopped right after its start can raise CancelledError)
        return out
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False,
                                max_partition_fetch_bytes=4 * 1024 * 1024)
    await consumer.start()
    try:
        consumer.assign(list(wanted))
        for tp in wanted:
            if tp in start:
                consumer.seek(tp, start[tp])
        if from_beginning := [tp for tp in wanted if tp not in start]:
            await consumer.seek_to_beginning(*from_beginning)
        remaining = set(wanted)
        while remaining:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            for tp, records in batch.items():
                out.extend(r for r in records if r.offset < wanted[tp])
            for tp in list(remaining):
                if await consumer.position(tp) >= wanted[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    return out


async def read_topic(bootstrap: str, topic: str) -> list[Any]:
    """Every record of ``topic``, from its beginning to its current end (all partitions)."""
    return await read_range(bootstrap, await end_offsets(bootstrap, [topic]))


async def committed_lag(bootstrap: str, topic: str, group: str) -> int:
    """How many records of ``topic`` lie past ``group``'s committed offsets (none committed: 0)."""
    parts = await topic_partitions(bootstrap, topic)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(parts)
        return sum([ends[tp] - (await consumer.committed(tp) or 0) for tp in parts])
    finally:
        await consumer.stop()
