"""Smoke check for a running broker: admin, idempotent producer, group consumer with commits.

Usage: python deploy/kafka/smoke.py [BOOTSTRAP]
(default: $KAFKA_BOOTSTRAP_SERVERS, else 127.0.0.1:9092)

Creates two throw-away topics (6 partitions; and 1 partition compacted), produces keyed records
with enable_idempotence=True/acks="all", consumes them in a consumer group, commits, checks the
committed offsets, then deletes the topics. Exits non-zero on any failure. Needs aiokafka.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType


async def main(bootstrap: str) -> None:
    suffix = uuid.uuid4().hex[:8]
    plain, compacted = f"smoke.plain.{suffix}", f"smoke.compacted.{suffix}"
    t0 = time.monotonic()

    def lap(what: str) -> None:
        print(f"{time.monotonic() - t0:7.3f}s  {what}", flush=True)

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(plain, num_partitions=6, replication_factor=1),
                NewTopic(
                    compacted,
                    num_partitions=1,
                    replication_factor=1,
                    topic_configs={"cleanup.policy": "compact", "min.insync.replicas": "1"},
                ),
            ]
        )
        lap(f"created {plain} (6 partitions) and {compacted} (compacted)")
        described = await admin.describe_topics([plain, compacted])
        parts = {d["topic"]: len(d["partitions"]) for d in described}
        assert parts == {plain: 6, compacted: 1}, parts
        cfg = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, compacted)])
        entries = {e[0]: e[1] for r in cfg for res in r.resources for e in res[4]}
        assert entries.get("cleanup.policy") == "compact", entries.get("cleanup.policy")
        lap("described topics: partitions and cleanup.policy=compact confirmed")

        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, enable_idempotence=True, acks="all"
        )
        await producer.start()
        try:
            n = 60
            for i in range(n):
                await producer.send(plain, key=f"k{i % 12}".encode(), value=f"v{i}".encode())
            for i in range(10):
                await producer.send(compacted, key=f"k{i % 3}".encode(), value=f"v{i}".encode())
            await producer.flush()
        finally:
            await producer.stop()
        lap(f"produced {n} + 10 records (idempotent, acks=all)")

        group = f"smoke-group-{suffix}"
        consumer = AIOKafkaConsumer(
            plain,
            bootstrap_servers=bootstrap,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            seen = 0
            deadline = time.monotonic() + 60
            while seen < n and time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=1000)
                seen += sum(len(v) for v in batch.values())
            assert seen == n, f"consumed {seen} of {n}"
            lap(f"group {group} consumed {seen} records")
            await consumer.commit()
            committed = 0
            for p in range(6):
                off = await consumer.committed(TopicPartition(plain, p))
                committed += off or 0
            assert committed == n, f"committed offsets sum {committed} != {n}"
            lap("committed; committed offsets sum matches")
        finally:
            await consumer.stop()

        await admin.delete_topics([plain, compacted])
        lap("deleted smoke topics")
    finally:
        await admin.close()
    print("SMOKE OK")


if __name__ == "__main__":
    bs = (
        sys.argv[1]
        if len(sys.argv) > 1
        else os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    )
    asyncio.run(main(bs))
