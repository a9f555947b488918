"""Kafka plumbing shared by the pipeline and the baseline: producer, paced sending, reading back.

Reading back is :mod:`carepath_testkit.kafka_reading`, turned into :class:`Record` here.

The producer runs with the settings of Carepath's own (``carepath_runtime.kafka_broker``
``make_broker``): idempotent, ``acks=all``, and the same ``linger_ms``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from benchmarks.workload import PreparedEpisode
from carepath_testkit import kafka_reading

# The development token of the integration client (deploy/tokens.dev.json), which intake takes.
INTAKE_TOKEN = "dev-ehr-token"

def carepath_producer_settings() -> dict[str, object]:
    """The producer settings ``make_broker`` passes to FastStream, read from its source.

    FastStream keeps them inside its producer, so they are read from the code; whatever
    ``make_broker`` says, the benchmark's producers and relays use too.
    """
    import inspect
    import re

    from carepath_runtime.kafka_broker import make_broker

    source = inspect.getsource(make_broker)
    settings: dict[str, object] = {"enable_idempotence": True, "acks": "all", "linger_ms": 0}
    if m := re.search(r"enable_idempotence=(True|False)", source):
        settings["enable_idempotence"] = m.group(1) == "True"
    if m := re.search(r"acks=\"?([a-z0-9-]+)\"?", source):
        settings["acks"] = m.group(1) if not m.group(1).lstrip("-").isdigit() else int(m.group(1))
    if m := re.search(r"linger_ms=(\d+)", source):
        settings["linger_ms"] = int(m.group(1))
    return settings


PRODUCER_SETTINGS: dict[str, object] = carepath_producer_settings()


def make_producer(bootstrap: str, **overrides: object) -> AIOKafkaProducer:
    return AIOKafkaProducer(bootstrap_servers=bootstrap, **{**PRODUCER_SETTINGS, **overrides})


async def create_plain_topics(bootstrap: str, names: Sequence[str], partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        for name in names:
            if name in existing:
                continue
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics([NewTopic(
                    name=name, num_partitions=partitions, replication_factor=1,
                    topic_configs={"min.insync.replicas": "1"},
                )])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if set(names) <= set(await admin.list_topics()):
                return
            await asyncio.sleep(0.2)
        raise TimeoutError(f"topics not visible: {names}")
    finally:
        await admin.close()


async def delete_topics(bootstrap: str, names: Sequence[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        doomed = [n for n in names if n in existing]
        if doomed:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()


@dataclass
class SendResult:
    sent_at: dict[str, float]  # episode id -> unix time stamped into ce_time
    first: float
    last: float
    acked: float  # unix time when the last record was acknowledged
    http_latency_ms: list[float] = field(default_factory=list)
    http_errors: int = 0

    @property
    def offered_rate(self) -> float:
        span = self.last - self.first
        return round(len(self.sent_at) / span, 1) if span > 0 else 0.0


async def send_episodes(
    producer: AIOKafkaProducer,
    topic: str,
    episodes: Sequence[PreparedEpisode],
    rate: float | None,
    on_sent: Callable[[int], None] | None = None,
) -> SendResult:
    """Send each episode, stamping ``ce_time`` just before the send.

    ``rate=None`` sends as fast as the producer accepts (``send`` waits when its buffer is
    full); otherwise sends are paced to ``rate`` per second on a 5 ms tick.
    """
    sent_at: dict[str, float] = {}
    futures: list[asyncio.Future[object]] = []
    start = time.monotonic()
    first = time.time()
    i = 0
    while i < len(episodes):
        if rate is None:
            due = len(episodes)
        else:
            due = min(len(episodes), int((time.monotonic() - start) * rate) + 1)
        while i < due:
            ep = episodes[i]
            now = datetime.now(UTC)
            sent_at[ep.episode_id] = now.timestamp()
            fut = await producer.send(topic, ep.value, key=ep.key, headers=ep.headers(now))
            futures.append(fut)
            i += 1
            if on_sent is not None and i % 200 == 0:
                on_sent(i)
        if rate is not None and i < len(episodes):
            await asyncio.sleep(0.005)
        elif rate is None:
            await asyncio.sleep(0)
    last = time.time()
    await asyncio.gather(*futures)
    if on_sent is not None:
        on_sent(i)
    return SendResult(sent_at=sent_at, first=first, last=last, acked=time.time())


async def post_episodes(
    intake_url: str,
    episodes: Sequence[dict[str, Any]],
    concurrency: int,
    on_sent: Callable[[int], None] | None = None,
) -> SendResult:
    """POST each episode to intake (``Idempotency-Key`` = episode id), ``concurrency`` at once.

    ``sent_at`` is when each request was sent; intake stamps its own ``ce_time`` a little later.
    """
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for ep in episodes:
        queue.put_nowait(ep)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=intake_url, limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal errors
            while not queue.empty():
                ep = queue.get_nowait()
                start = time.time()
                t0 = time.perf_counter()
                r = await client.post("/episodes", json=ep,
                                      headers={"Idempotency-Key": str(ep["episode_id"]),
                                               "Authorization": f"Bearer {INTAKE_TOKEN}"})
                if r.status_code == 202:
                    latencies.append((time.perf_counter() - t0) * 1000)
                    sent_at[str(ep["episode_id"])] = start
                    if on_sent is not None and len(sent_at) % 50 == 0:
                        on_sent(len(sent_at))
                else:
                    errors += 1

        first = time.time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        last = time.time()
    if on_sent is not None:
        on_sent(len(sent_at))
    return SendResult(sent_at=sent_at, first=first, last=last, acked=last,
                      http_latency_ms=latencies, http_errors=errors)


@dataclass(frozen=True)
class Record:
    topic: str
    key: str
    timestamp_ms: int
    headers: dict[str, str]
    value: bytes


async def read_range(
    bootstrap: str, start: dict[TopicPartition, int], end: dict[TopicPartition, int]
) -> list[Record]:
    """Every record in [start, end) of each partition (no consumer group, nothing committed)."""
    return [
        Record(
            topic=r.topic,
            key=r.key.decode() if r.key else "",
            timestamp_ms=int(r.timestamp),
            headers={k: v.decode() for k, v in r.headers},
            value=r.value or b"",
        )
        for r in await kafka_reading.read_range(bootstrap, end, start)
    ]


async def wait_for(
    count: Callable[[], Awaitable[int]],
    target: int,
    *,
    stall_timeout: float,
    on_progress: Callable[[int], None] | None = None,
    interval: float = 0.5,
    deadline: float | None = None,
) -> tuple[int, bool]:
    """Poll ``count`` until it reaches ``target``; returns (last count, reached).

    Gives up after ``stall_timeout`` seconds without progress, or at ``deadline``
    (``time.monotonic()``).
    """
    last = -1
    last_change = time.monotonic()
    while True:
        current = await count()
        if on_progress is not None:
            on_progress(current)
        if current >= target:
            return current, True
        if deadline is not None and time.monotonic() >= deadline:
            return current, False
        if current != last:
            last, last_change = current, time.monotonic()
        elif time.monotonic() - last_change > stall_timeout:
            return current, False
        await asyncio.sleep(interval)
