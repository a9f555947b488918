"""`carepath tail` and `carepath replay`: read Carepath's topics as JSON lines.

``carepath tail TOPIC`` follows one topic (a Carepath suffix such as ``referrals``, or a full
topic name) from the end (default), from a time (``--from-time``, by Kafka record timestamp),
from an offset in every partition (``--from-offset``) or from the beginning, optionally only
one episode's records (``--episode``, the record key). It stops after ``--max`` records or
``--timeout`` seconds without a new one; otherwise it follows until interrupted.

``carepath replay EPISODE_ID`` prints an episode's whole history: every record keyed by the
episode on every topic of the namespace, in time order (record timestamp), then exits. By
default it reads only the partition the key hashes to (Kafka's default partitioner, as the
producers use); ``--all-partitions`` scans everything (needed only if partitions were added
after the records were written).

Each line is one JSON object: ``topic``, ``partition``, ``offset``, ``timestamp`` (ISO 8601),
``key``, ``headers`` (the CloudEvents ``ce_*`` attributes, ``content-type``, ``dlq_*``) and
``body`` (the decoded JSON value; ``{"raw": text}`` if it is not JSON). Reading uses no
consumer group and commits nothing: it never disturbs the services' consumers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from carepath_contracts.topics import ALL_TOPICS, Topics
from carepath_runtime.settings import get_settings
from carepath_runtime.transport_security import kafka_client_options

Emit = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class StartAt:
    """Where to start reading: the end (default), a time, an offset or the beginning."""

    time: datetime | None = None
    offset: int | None = None
    beginning: bool = False


class UnknownTopic(LookupError):
    pass


def resolve_topic(topic: str, namespace: str) -> str:
    """A Carepath topic suffix (``referrals``) becomes ``<namespace>.referrals``."""
    suffixes = {spec.suffix for spec in ALL_TOPICS}
    return f"{namespace}.{topic}" if topic in suffixes else topic


def parse_time(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def record_json(record: Any) -> dict[str, Any]:
    """One consumed record as the JSON object the commands print."""
    headers = {k: (v.decode(errors="replace") if isinstance(v, bytes) else str(v))
               for k, v in (record.headers or [])}
    raw = record.value or b""
    try:
        body: Any = json.loads(raw) if raw else None
    except ValueError:
        body = {"raw": raw.decode(errors="replace")}
    return {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": datetime.fromtimestamp(record.timestamp / 1000, UTC).isoformat(
            timespec="milliseconds"),
        "key": record.key.decode(errors="replace") if record.key is not None else None,
        "headers": headers,
        "body": body,
    }


def _consumer(bootstrap: str, reset: str = "earliest") -> Any:
    """A group-less consumer. ``reset`` must agree with the seeks that follow: assigning
    partitions starts a reset with it, and a reset of another kind could land after ours."""
    from aiokafka import AIOKafkaConsumer

    return AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                            enable_auto_commit=False, auto_offset_reset=reset,
                            **kafka_client_options(get_settings()))


async def partition_map(bootstrap: str, topics: Sequence[str]) -> dict[str, list[int]]:
    """The partitions of each existing topic among ``topics`` (missing ones are left out)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap,
                                **kafka_client_options(get_settings()))
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics))
    finally:
        await admin.close()
    return {str(t["topic"]): sorted(int(p["partition"]) for p in t["partitions"])
            for t in described if t.get("error_code") == 0 and t.get("partitions")}


async def _seek(consumer: Any, tps: list[Any], start: StartAt) -> None:
    if start.beginning:
        await consumer.seek_to_beginning(*tps)
    elif start.offset is not None:
        for tp in tps:
            consumer.seek(tp, start.offset)
    elif start.time is not None:
        found = await consumer.offsets_for_times(
            {tp: int(start.time.timestamp() * 1000) for tp in tps})
        for tp in tps:
            at = found.get(tp)
            if at is None:  # nothing at or after that time yet: follow new records
                await consumer.seek_to_end(tp)
            else:
                consumer.seek(tp, at.offset)
    else:
        await consumer.seek_to_end(*tps)


async def tail_events(
    bootstrap: str,
    topic: str,
    start: StartAt,
    emit: Emit,
    *,
    episode: str | None = None,
    max_events: int | None = None,
    idle_timeout: float | None = None,
) -> int:
    """Follow ``topic``, emitting each (matching) record. Returns how many were emitted."""
    from aiokafka import TopicPartition

    parts = (await partition_map(bootstrap, [topic])).get(topic)
    if not parts:
        raise UnknownTopic(topic)
    tps = [TopicPartition(topic, p) for p in parts]
    from_end = not start.beginning and start.offset is None
    consumer = _consumer(bootstrap, "latest" if from_end else "earliest")
    await consumer.start()
    emitted = 0
    try:
        consumer.assign(tps)
        await _seek(consumer, tps, start)
        last = time.monotonic()
        while max_events is None or emitted < max_events:
            wait_ms = 500
            if idle_timeout is not None:
                left = idle_timeout - (time.monotonic() - last)
                if left <= 0:
                    break
                wait_ms = max(1, min(wait_ms, int(left * 1000)))
            batch = await consumer.getmany(timeout_ms=wait_ms, max_records=500)
            records = sorted((r for rs in batch.values() for r in rs),
                             key=lambda r: (r.timestamp, r.partition, r.offset))
            for record in records:
                key = record.key.decode(errors="replace") if record.key is not None else None
                if episode is not None and key != episode:
                    continue
                emit(record_json(record))
                emitted += 1
                last = time.monotonic()
                if max_events is not None and emitted >= max_events:
                    break
    finally:
        await consumer.stop()
    return emitted


def key_partition(key: str, partitions: Sequence[int]) -> int:
    """The partition Kafka's default partitioner (murmur2) gives ``key``."""
    from aiokafka.partitioner import DefaultPartitioner

    ordered = sorted(partitions)
    chosen: int = DefaultPartitioner()(key.encode(), ordered, ordered)
    return chosen


async def episode_history(
    bootstrap: str, namespace: str, episode_id: str, *, all_partitions: bool = False
) -> list[dict[str, Any]]:
    """Every record keyed by ``episode_id`` on the namespace's topics, in time order."""
    from aiokafka import TopicPartition

    existing = await partition_map(bootstrap, [name for name, _ in Topics(namespace).all()])
    tps: list[TopicPartition] = []
    for name, parts in existing.items():
        chosen = parts if all_partitions else [key_partition(episode_id, parts)]
        tps.extend(TopicPartition(name, p) for p in chosen)
    if not tps:
        return []
    consumer = _consumer(bootstrap)
    await consumer.start()
    found: list[dict[str, Any]] = []
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        pending = {tp for tp in tps if ends[tp] > await consumer.position(tp)}
        while pending:
            batch = await consumer.getmany(*pending, timeout_ms=1000, max_records=1000)
            for records in batch.values():
                for record in records:
                    key = record.key.decode(errors="replace") if record.key is not None else None
                    if key == episode_id:
                        found.append(record_json(record))
            for tp in list(pending):
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
    finally:
        await consumer.stop()
    found.sort(key=lambda r: (r["timestamp"], r["headers"].get("ce_time", ""), r["topic"],
                              r["partition"], r["offset"]))
    return found


def _print(record: dict[str, Any]) -> None:
    print(json.dumps(record, ensure_ascii=False), flush=True)


# -- command line -----------------------------------------------------------------------------


def add_tail_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("topic", metavar="TOPIC",
                   help="topic suffix (episodes, referrals, careplans, audit, dlq.pathway, ...) "
                        "or a full topic name")
    start = p.add_mutually_exclusive_group()
    start.add_argument("--from-time", metavar="ISO", type=parse_time, default=None,
                       help="start at the first record at or after this time (ISO 8601; "
                            "without a zone: UTC)")
    start.add_argument("--from-offset", metavar="N", type=int, default=None,
                       help="start at offset N of every partition")
    start.add_argument("--from-beginning", action="store_true",
                       help="start at the oldest record")
    p.add_argument("--episode", metavar="ID", default=None,
                   help="only records keyed by this episode id")
    p.add_argument("--max", metavar="N", type=int, default=None, dest="max_events",
                   help="stop after N records")
    p.add_argument("--timeout", metavar="S", type=float, default=None,
                   help="stop after S seconds without a new record")
    p.add_argument("--namespace", default=None, help="topic namespace ($CAREPATH_NAMESPACE)")
    p.add_argument("--bootstrap", default=None, help="Kafka ($KAFKA_BOOTSTRAP_SERVERS)")


def add_replay_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("episode_id", metavar="EPISODE_ID")
    p.add_argument("--all-partitions", action="store_true",
                   help="scan every partition, not only the one the episode id hashes to")
    p.add_argument("--namespace", default=None, help="topic namespace ($CAREPATH_NAMESPACE)")
    p.add_argument("--bootstrap", default=None, help="Kafka ($KAFKA_BOOTSTRAP_SERVERS)")


def tail_command(args: argparse.Namespace, emit: Emit = _print) -> int:
    settings = get_settings()
    namespace = args.namespace or settings.namespace
    bootstrap = args.bootstrap or settings.kafka_bootstrap_servers
    topic = resolve_topic(args.topic, namespace)
    start = StartAt(time=args.from_time, offset=args.from_offset,
                    beginning=bool(args.from_beginning))
    try:
        asyncio.run(tail_events(bootstrap, topic, start, emit, episode=args.episode,
                                max_events=args.max_events, idle_timeout=args.timeout))
    except UnknownTopic:
        print(f"unknown topic {topic!r} (see `carepath topics list`)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0


def replay_command(args: argparse.Namespace, emit: Emit = _print) -> int:
    settings = get_settings()
    namespace = args.namespace or settings.namespace
    bootstrap = args.bootstrap or settings.kafka_bootstrap_servers
    history = asyncio.run(episode_history(bootstrap, namespace, args.episode_id,
                                          all_partitions=bool(args.all_partitions)))
    for record in history:
        emit(record)
    if not history:
        print(f"no records keyed by {args.episode_id!r} in namespace {namespace!r}",
              file=sys.stderr)
        return 1
    return 0
