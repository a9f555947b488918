"""How long a record takes from one producer's send to a consumer's hands, at low load.

``python -m benchmarks.transport_floor [--messages 200] [--gap-ms 50]``

One record every ``gap`` ms, sent with Carepath's producer settings
(``benchmarks.kafka_io.make_producer``: idempotent, ``acks=all``, no linger) and awaited,
to a 12-partition topic on the broker of ``KAFKA_BOOTSTRAP_SERVERS``.
The *age* of a record when it arrives is the arrival's clock time minus the record's
timestamp (the producer stamps it at the send; one machine, one clock). Measured:

* **producer round trip**: ``send_and_wait`` alone;
* **raw getmany**: an aiokafka consumer's ``getmany`` returning it;
* **FastStream, plain argument**: the handler of a FastStream batch subscriber shaped like
  Carepath's (``carepath_runtime.consumer``: its no-linger subclass, its decoder handing
  over the whole message, the handler taking it as a plain argument);
* **FastStream, KafkaMessage annotation**: the same handler asking for the message by
  FastStream's ``KafkaMessage`` annotation, which FastDepends resolves in a worker thread.

The last two differ only in that thread hop, which is what Carepath's consumers stopped
paying (docs/benchmarks.md, "Latency at low load"). The topic is deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from benchmarks.kafka_io import create_plain_topics, delete_topics, make_producer
from benchmarks.stats import latency_summary
from carepath_runtime.consumer import POLL_TIMEOUT_MS, _NoLingerBatchSubscriber, message_decoder
from carepath_runtime.kafka_admin import wait_for_kafka

PARTITIONS = 12


async def _produce(bootstrap: str, topic: str, n: int, gap_s: float,
                   round_trips: list[float] | None = None) -> None:
    producer = make_producer(bootstrap)
    await producer.start()
    try:
        await asyncio.sleep(1.0)  # the consumer has joined and polls
        for i in range(n):
            started = time.perf_counter()
            await producer.send_and_wait(topic, b"x" * 2000, key=str(i).encode())
            if round_trips is not None:
                round_trips.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(gap_s)
    finally:
        await producer.stop()


async def raw_getmany(bootstrap: str, topic: str, n: int, gap_s: float
                      ) -> tuple[list[float], list[float]]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"{topic}-raw",
                                auto_offset_reset="latest", enable_auto_commit=False)
    await consumer.start()
    ages: list[float] = []
    round_trips: list[float] = []
    feeder = asyncio.create_task(_produce(bootstrap, topic, n, gap_s, round_trips))
    try:
        while len(ages) < n:
            batches = await consumer.getmany(timeout_ms=POLL_TIMEOUT_MS, max_records=200)
            now_ms = time.time() * 1000
            ages.extend(now_ms - r.timestamp for records in batches.values() for r in records)
        await feeder
    finally:
        await consumer.stop()
    return ages, round_trips


async def faststream_batch(bootstrap: str, topic: str, n: int, gap_s: float, *,
                           annotated: bool) -> list[float]:
    broker = KafkaBroker(bootstrap, enable_idempotence=True, acks="all", linger_ms=0,
                         ack_policy=AckPolicy.MANUAL, logger=None)
    ages: list[float] = []
    done = asyncio.Event()
    subscriber = broker.subscriber(
        topic, group_id=f"{topic}-{'annotated' if annotated else 'plain'}", batch=True,
        max_records=200, batch_timeout_ms=POLL_TIMEOUT_MS, auto_offset_reset="latest",
        ack_policy=AckPolicy.MANUAL, decoder=None if annotated else message_decoder)
    subscriber.__class__ = _NoLingerBatchSubscriber

    def arrived(msg: Any) -> None:
        now_ms = time.time() * 1000
        ages.extend(now_ms - r.timestamp for r in msg.raw_message)
        if len(ages) >= n:
            done.set()

    handler: Callable[..., Awaitable[None]]
    if annotated:
        async def by_annotation(msg: KafkaMessage) -> None:
            arrived(msg)
        handler = by_annotation
    else:
        async def by_argument(msg: Any) -> None:
            arrived(msg)
        handler = by_argument
    subscriber(handler)
    await broker.start()
    try:
        await _produce(bootstrap, topic, n, gap_s)
        await asyncio.wait_for(done.wait(), timeout=30)
    finally:
        await broker.stop()
    return ages


async def main_async(args: argparse.Namespace) -> None:
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    await wait_for_kafka(bootstrap, timeout=60)
    gap_s = args.gap_ms / 1000
    rows: list[tuple[str, dict[str, Any]]] = []
    topics = []
    try:
        for label in ("raw", "plain", "annotated"):
            topic = f"benchfloor{uuid.uuid4().hex[:8]}"
            topics.append(topic)
            await create_plain_topics(bootstrap, [topic], PARTITIONS)
            if label == "raw":
                ages, round_trips = await raw_getmany(bootstrap, topic, args.messages, gap_s)
                rows.append(("producer round trip (send_and_wait)", latency_summary(round_trips)))
                rows.append(("age at raw getmany", latency_summary(ages)))
            else:
                ages = await faststream_batch(bootstrap, topic, args.messages, gap_s,
                                              annotated=label == "annotated")
                name = ("age at FastStream handler, KafkaMessage annotation"
                        if label == "annotated" else "age at FastStream handler, plain argument")
                rows.append((name, latency_summary(ages)))
    finally:
        await delete_topics(bootstrap, topics)
    print(f"{args.messages} records, one every {args.gap_ms:g} ms (ms: p50 / p95 / p99 / max)")
    for name, s in rows:
        print(f"  {name:52s} {s['p50_ms']:6.2f} / {s['p95_ms']:6.2f} / {s['p99_ms']:6.2f} "
              f"/ {s['max_ms']:6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--gap-ms", type=float, default=50.0)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
