"""The live stream for dashboards: Server-Sent Events of pathway status and care-plan changes.

``GET /stream[?episode_id=...]`` with a coordinator, admin or dashboard bearer token.

Each connection reads the two compacted topics (``pathway.status``, ``careplans``, keyed by
episode) with its own Kafka consumer, outside any consumer group. A new client (no
``Last-Event-ID``) first gets a snapshot: the latest record of every episode (or of the one
asked for) as of connecting, as events *without* an id, then an ``event: snapshot`` whose id
is the position at the end of the snapshot. Deltas follow, each with an id that encodes the
position after it (:mod:`.domain.stream_position`). A client that reconnects with
``Last-Event-ID`` gets no snapshot: every partition is read on from its position, so nothing
is skipped and nothing is sent twice. A disconnect during the snapshot leaves the client
without an id, and it simply gets a fresh snapshot.

With ``episode_id`` only the partition that holds the episode's key is read. Resume with the
same query you connected with.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.partitioner import DefaultPartitioner
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import StreamingResponse

from carepath_contracts.episode_id import EPISODE_ID_MAX, EPISODE_ID_PATTERN
from carepath_contracts.events import CARE_PLAN_UPDATED, PATHWAY_STATUS
from carepath_contracts.topics import Topics
from carepath_notifications.domain.snapshot import LatestPerKey
from carepath_notifications.domain.stream_position import (
    InvalidPosition,
    Partition,
    decode,
    encode,
    start_offsets,
)
from carepath_runtime.auth import Authenticator
from carepath_runtime.log import get_logger
from carepath_runtime.settings import Settings
from carepath_runtime.transport_security import kafka_client_options

log = get_logger(__name__)

STREAM_ROLES = frozenset({"coordinator", "admin", "dashboard"})
EVENT_NAMES = {PATHWAY_STATUS: "pathway.status", CARE_PLAN_UPDATED: "careplan.updated"}
DEFAULT_EVENT = {"status": "pathway.status", "careplans": "careplan.updated"}
IDLE_ROUNDS = 6
_partitioner = DefaultPartitioner()


def sse(event: str, data: bytes, event_id: str | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\n".encode() + b"data: " + data + b"\n\n"


def _header(record: ConsumerRecord[Any, Any], name: str) -> str | None:
    for key, value in record.headers or ():
        if key == name:
            return value.decode() if isinstance(value, bytes) else str(value)
    return None


class StreamReader:
    """One client's view of the status topics, from a snapshot or a position."""

    def __init__(self, settings: Settings, topics: Topics, episode_id: str | None) -> None:
        self.settings = settings
        self.names = {"status": topics.pathway_status, "careplans": topics.care_plans}
        self.by_topic = {topic: name for name, topic in self.names.items()}
        self.episode_key = episode_id.encode() if episode_id is not None else None
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id="carepath-notifications-stream",
            **kafka_client_options(settings),
        )
        self.partitions: dict[TopicPartition, Partition] = {}
        self._closed = False

    async def open(self) -> None:
        await self.consumer.start()
        try:
            # What ``consumer.topics()`` does, keeping the partitions it learns (that public
            # call returns only the topic names).
            cluster = await self.consumer._client.fetch_all_metadata()
            for name, topic in self.names.items():
                found = sorted(cluster.partitions_for_topic(topic) or [])
                if not found:
                    raise RuntimeError(f"topic {topic} not found")
                if self.episode_key is not None:
                    found = [_partitioner(self.episode_key, found, found)]
                for p in found:
                    self.partitions[TopicPartition(topic, p)] = (name, p)
            self.consumer.assign(list(self.partitions))
        except BaseException:
            await self.consumer.stop()
            raise

    def _wanted(self, record: ConsumerRecord[Any, Any]) -> bool:
        return self.episode_key is None or record.key == self.episode_key

    def _frame(self, record: ConsumerRecord[Any, Any], event_id: str | None) -> bytes:
        name = self.by_topic[record.topic]
        ce_type = _header(record, "ce_type")
        episode = record.key.decode() if record.key else None
        if record.value is None:
            return sse("removed", orjson.dumps({"episode_id": episode, "topic": name}), event_id)
        data = orjson.dumps({
            "id": _header(record, "ce_id"),
            "type": ce_type,
            "episode_id": episode,
            "time": _header(record, "ce_time"),
            "data": orjson.loads(record.value),
        })
        event = EVENT_NAMES.get(ce_type or "", DEFAULT_EVENT[name])
        return sse(event, data, event_id)

    async def events(self, position: dict[Partition, int] | None) -> AsyncIterator[bytes]:
        try:
            yield b"retry: 2000\n\n"
            pos: dict[TopicPartition, int] = {}
            held: list[ConsumerRecord[Any, Any]] = []
            if position is None:
                async for chunk in self._snapshot(pos, held):
                    yield chunk
            else:
                starts = start_offsets(position, self.partitions.values())
                for tp, part in self.partitions.items():
                    self.consumer.seek(tp, starts[part])
                    pos[tp] = starts[part]
            for record in held:
                first = self._delta(record, pos)
                if first is not None:
                    yield first
            last = time.monotonic()
            while True:
                batch = await self.consumer.getmany(timeout_ms=1000, max_records=500)
                for records in batch.values():
                    for record in records:
                        delta = self._delta(record, pos)
                        if delta is not None:
                            last = time.monotonic()
                            yield delta
                if time.monotonic() - last >= self.settings.carepath_stream_keepalive_s:
                    last = time.monotonic()
                    yield b": keepalive\n\n"
        finally:
            await self.close()

    async def close(self) -> None:
        """Stop the consumer (idempotent)."""
        if self._closed:
            return
        self._closed = True
        # Shielded: this runs while the response's cancel scope is being cancelled (the client
        # went away), where any unshielded await would be cancelled again at once.
        with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
            await self.consumer.stop()
        log.info("stream_closed")

    def _delta(self, record: ConsumerRecord[Any, Any], pos: dict[TopicPartition, int]
               ) -> bytes | None:
        tp = TopicPartition(record.topic, record.partition)
        pos[tp] = record.offset + 1
        if not self._wanted(record):
            return None
        return self._frame(record, encode({self.partitions[t]: o for t, o in pos.items()}))

    async def _snapshot(
        self, pos: dict[TopicPartition, int], held: list[ConsumerRecord[Any, Any]]
    ) -> AsyncIterator[bytes]:
        tps = list(self.partitions)
        begins = await self.consumer.beginning_offsets(tps)
        ends = await self.consumer.end_offsets(tps)
        for tp in tps:
            self.consumer.seek(tp, begins[tp])
        pending = {tp for tp in tps if ends[tp] > begins[tp]}
        latest: LatestPerKey[ConsumerRecord[Any, Any]] = LatestPerKey()
        idle = dict.fromkeys(pending, 0)
        while pending:
            batch = await self.consumer.getmany(*pending, timeout_ms=500, max_records=1000)
            for tp in pending:
                idle[tp] = 0 if batch.get(tp) else idle[tp] + 1
            for tp, records in batch.items():
                for record in records:
                    if record.offset >= ends[tp]:
                        held.append(record)
                    elif self._wanted(record):
                        key = record.key.decode() if record.key else ""
                        latest.add(self.by_topic[tp.topic], key,
                                   record if record.value is not None else None)
            for tp in list(pending):
                # Compaction may have removed the partition's last records (old tombstones):
                # a partition that stays silent below its end offset has nothing more to give.
                if await self.consumer.position(tp) >= ends[tp] or idle[tp] >= IDLE_ROUNDS:
                    pending.discard(tp)
        for record in latest.items():
            yield self._frame(record, None)
        for tp in tps:
            pos[tp] = ends[tp]
        marker = orjson.dumps({"episodes": len(latest)})
        yield sse("snapshot", marker, encode({self.partitions[t]: o for t, o in pos.items()}))


class _ClosingStream(StreamingResponse):
    """A streaming response that closes its reader however the response ends (finished,
    client gone, server shutting down), even if the body iterator never started."""

    def __init__(self, reader: StreamReader, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reader = reader

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._reader.close()


def register_stream(app: FastAPI, settings: Settings, topics: Topics,
                    tokens: Authenticator) -> None:
    @app.get("/stream", response_class=StreamingResponse, responses={
        200: {"description": "Server-Sent Events", "content": {"text/event-stream": {}}}})
    async def stream(
        request: Request,
        episode_id: str | None = Query(default=None, pattern=EPISODE_ID_PATTERN,
                                       max_length=EPISODE_ID_MAX),
    ) -> StreamingResponse:
        await tokens.require(request, STREAM_ROLES)
        last_id = request.headers.get("last-event-id")
        position: dict[Partition, int] | None = None
        if last_id:
            try:
                position = decode(last_id)
            except InvalidPosition as exc:
                raise HTTPException(
                    400, "Last-Event-ID is not a position this stream gave") from exc
        reader = StreamReader(settings, topics, episode_id)
        try:
            await reader.open()
        except Exception as exc:
            log.warning("stream_open_failed", error=f"{type(exc).__name__}: {exc}")
            raise HTTPException(503, "stream unavailable") from exc
        log.info("stream_opened", resumed=position is not None,
                 filtered=episode_id is not None)
        return _ClosingStream(
            reader,
            reader.events(position),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
