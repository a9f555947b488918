"""Per-key state in Redis with exactly-once *effects* under at-least-once delivery.

A consumer folds each input event into the state of its key (an episode) and derives the
events to publish. The fold, the new state and the outbound events are written in one Redis
transaction (WATCH/MULTI), together with the input's id. Then the events are published and
the input is committed. The outbound events wait in an *outbox* key of their own
(``<ns>:<name>:outbox:<key>:<input id>``, the records' bytes as they go to Kafka, never
re-encoded) until :meth:`StateStore.mark_published` deletes it with the published marker,
so a published episode's state holds no copy of its events. On redelivery:

* an input already folded in, that was the *last* one, returns its stored outbound events
  again unless they were marked published (:meth:`StateStore.mark_published`), so a crash
  between the Redis write and the publish loses nothing, and a replay republishes nothing
  (were they republished, they keep their deterministic ids and consumers de-duplicate);
* an older input already folded in changes nothing and publishes nothing;
* a new input whose predecessor's events were never marked published carries them out first
  (a transactional outbox per key: nothing written is ever left unpublished).

Writers to one key race safely: WATCH aborts the loser, which re-reads and retries, so no
update is lost. An output larger than its topic takes raises
:class:`carepath_runtime.kafka_broker.EventTooLarge` before anything is written, so an input
that could never be published leaves no state and no outbox behind.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import WatchError

from carepath_runtime.kafka_broker import OutboundEvent, check_size
from carepath_runtime.observability.metrics import OUTBOX_PENDING, service_name
from carepath_runtime.redis_client import key as rkey
from carepath_runtime.redis_client import tag

SEEN_LIMIT = 64
"""How many of a key's most recent input ids :attr:`StoredState.seen` keeps (oldest dropped).

The list is what makes a *redelivered* input a no-op, so it must reach back as far as an
input can realistically come back, and no further (it is stored, read and re-written with
every fold of the key: 64 ids are about 2.5 KB per key at most; it was 512, up to 20 KB).
Where a redelivered input comes from, and how far back it can be among its key's inputs:

* **Kafka redelivery** (a crash, a rebalance, a failed commit) replays a partition from its
  last committed offset. Offsets are committed after the effect, every
  ``carepath_commit_every`` (100) records or ``carepath_commit_interval_ms`` (200 ms), so the
  replayed tail is at most about a poll's and a commit batch's worth of the *partition's*
  records: one key's share of it is its own inputs in those few hundred milliseconds.
* **A handler retry** redelivers the record being handled: it is the key's newest input
  (``last_input``) or not folded at all.
* **A re-run** of a command or request with the same id (a re-evaluation request, an API
  call repeated with its idempotency key, a deadline sweep's escalation id) is one input.

A key with more than 64 inputs inside one redelivery window would be an episode receiving
dozens of submissions, outcomes or team actions within a fraction of a second, which no
clinical workflow produces (an episode sees a handful of events a day, a few dozen in its
life). An input older than the window (an operator rewinding a consumer group by days)
is folded again; for that case replay into a fresh namespace, or de-duplicate by ``ce_id``
downstream, as docs/events.md asks of every consumer.
"""


@dataclass
class StoredState:
    """A key's state. ``last_outputs`` is only read from states written before the outbox
    had its own key (their unpublished events); new states keep their events in the outbox."""

    data: dict[str, Any] | None
    version: int = 0
    last_input: str | None = None
    last_outputs: list[dict[str, Any]] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)

    def to_bytes(self) -> bytes:
        obj: dict[str, Any] = {
            "data": self.data,
            "version": self.version,
            "last_input": self.last_input,
            "seen": self.seen,
        }
        if self.last_outputs:
            obj["last_outputs"] = self.last_outputs
        return orjson.dumps(obj)

    @classmethod
    def from_bytes(cls, raw: bytes | None) -> StoredState:
        if not raw:
            return cls(data=None)
        obj = orjson.loads(raw)
        return cls(
            data=obj.get("data"),
            version=int(obj.get("version", 0)),
            last_input=obj.get("last_input"),
            last_outputs=list(obj.get("last_outputs", [])),
            seen=list(obj.get("seen", [])),
        )


def encode_outbox(events: list[OutboundEvent]) -> bytes:
    """The events as stored: one JSON line of (topic, key, headers, value length), then the
    values' bytes back to back (a value is JSON already: it is not escaped into a string)."""
    meta = orjson.dumps([[e.topic, e.key, e.headers, len(e.value)] for e in events])
    return meta + b"\n" + b"".join(e.value for e in events)


def decode_outbox(raw: bytes) -> list[OutboundEvent]:
    # orjson escapes control characters inside strings, so the first newline ends the line.
    cut = raw.index(b"\n")
    pos = cut + 1
    events = []
    for topic, key, headers, size in orjson.loads(raw[:cut]):
        events.append(OutboundEvent(topic=topic, key=key, headers=dict(headers),
                                    value=raw[pos:pos + size]))
        pos += size
    return events


Fold = Callable[[dict[str, Any] | None], tuple[dict[str, Any] | None, list[OutboundEvent]]]
ExtraWrites = Callable[[Any, dict[str, Any] | None], None]


# KEYS[1] the input's outbox, KEYS[2] the published marker; ARGV[1] the input id.
_MARK_PUBLISHED = "redis.call('DEL', KEYS[1]); redis.call('SET', KEYS[2], ARGV[1]); return 1"


class ConcurrentUpdate(RuntimeError):
    """The state changed under us too many times in a row."""


class StateStore:
    def __init__(self, redis: aioredis.Redis, namespace: str, name: str) -> None:
        self._redis = redis
        self._ns = namespace
        self._name = name
        self._mark_published_script: Any = None  # registered on first use
        self._cluster = isinstance(redis, RedisCluster)

    @property
    def name(self) -> str:
        return self._name

    # Every key of one state (state, published marker, outbox) carries its hash tag: the
    # WATCH/MULTI, the reads below and the mark_published script stay in one Redis Cluster
    # slot; ``extra_writes`` must use the same tag (:meth:`slot_tag`).
    def slot_tag(self, key: str) -> str:
        return tag(key)

    def state_key(self, key: str) -> str:
        return rkey(self._ns, self._name, "state", tag(key))

    def state_key_pattern(self) -> str:
        """A SCAN pattern matching every state key of this store."""
        return rkey(self._ns, self._name, "state", "{*}")

    def key_of(self, state_key: str) -> str:
        """The key a state key was made for (the inverse of :meth:`state_key`)."""
        prefix = rkey(self._ns, self._name, "state", "")
        return state_key.removeprefix(prefix).removeprefix("{").removesuffix("}")

    def published_key(self, key: str) -> str:
        return rkey(self._ns, self._name, "published", tag(key))

    def outbox_key(self, key: str, input_id: str) -> str:
        return rkey(self._ns, self._name, "outbox", tag(key), input_id)

    async def mark_published(self, key: str, input_id: str) -> None:
        """Record that the outputs of ``input_id`` (the key's last input) are on Kafka, and
        drop its outbox (a later input's outbox holds its own copy of anything pending)."""
        # One command (a script runs atomically), as cheap for the client as the SET alone.
        if self._mark_published_script is None:
            self._mark_published_script = self._redis.register_script(_MARK_PUBLISHED)
        await self._mark_published_script(
            keys=[self.outbox_key(key, input_id), self.published_key(key)],
            args=[input_id.encode()],
        )

    async def get(self, key: str) -> StoredState:
        raw: Any = await self._redis.get(self.state_key(key))
        return StoredState.from_bytes(raw)

    async def _unpublished(self, pipe: Any, key: str, state: StoredState) -> list[OutboundEvent]:
        """The last input's events, not yet marked published (its outbox, or a legacy state's
        embedded copy). Empty once published: mark_published deletes the outbox."""
        if state.last_outputs:
            return [OutboundEvent.from_json(o) for o in state.last_outputs]
        assert state.last_input is not None
        raw: Any = await pipe.get(self.outbox_key(key, state.last_input))
        return decode_outbox(raw) if raw else []

    async def process(
        self,
        key: str,
        input_id: str,
        fold: Fold,
        extra_writes: ExtraWrites | None = None,
        max_retries: int = 50,
    ) -> list[OutboundEvent]:
        """Fold ``input_id`` into the state of ``key`` once; return the events to publish."""
        skey = self.state_key(key)
        pkey = self.published_key(key)
        for _ in range(max_retries):
            async with self._redis.pipeline(transaction=True) as pipe:
                try:
                    # A mark_published landing between our reads needs no abort: it deletes
                    # the outbox only after the publish, so reading it gone means published,
                    # and reading it still there republishes events with the same ids.
                    await pipe.watch(skey)
                    current: Any
                    published: Any
                    if self._cluster:  # redis-py refuses MGET in a cluster pipeline
                        current = await pipe.get(skey)
                        published = await pipe.get(pkey)
                    else:
                        values: Any = await pipe.mget(skey, pkey)
                        current, published = values
                    state = StoredState.from_bytes(current)
                    last_published = (
                        state.last_input is None
                        or (published is not None and published.decode() == state.last_input)
                    )
                    if state.last_input == input_id:
                        if last_published:
                            await pipe.unwatch()  # type: ignore[no-untyped-call]
                            return []
                        outputs = await self._unpublished(pipe, key, state)
                        await pipe.unwatch()  # type: ignore[no-untyped-call]
                        return outputs
                    if input_id in state.seen:
                        await pipe.unwatch()  # type: ignore[no-untyped-call]
                        return []
                    # The previous input's events never made it out (e.g. the publish failed
                    # after the write): they go out first, ahead of this input's.
                    pending = [] if last_published else await self._unpublished(pipe, key, state)
                    new_data, outputs = fold(state.data)
                    for out in outputs:  # a change Kafka would refuse is never written
                        check_size(out)
                    outputs = [*pending, *outputs]
                    seen = [*state.seen, input_id][-SEEN_LIMIT:]
                    new_state = StoredState(
                        data=new_data,
                        version=state.version + 1,
                        last_input=input_id,
                        seen=seen,
                    )
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.set(skey, new_state.to_bytes())
                    if outputs:
                        pipe.set(self.outbox_key(key, input_id), encode_outbox(outputs))
                    if pending and state.last_input is not None:
                        pipe.delete(self.outbox_key(key, state.last_input))  # carried over
                    if extra_writes is not None:
                        extra_writes(pipe, new_data)
                    await pipe.execute()
                    return outputs
                except WatchError:
                    continue
        raise ConcurrentUpdate(f"{self._name}: gave up after {max_retries} concurrent updates")


async def run_and_publish(
    store: StateStore,
    key: str,
    input_id: str,
    fold: Fold,
    publish_all: Callable[[list[OutboundEvent]], Awaitable[None]],
    extra_writes: ExtraWrites | None = None,
) -> list[OutboundEvent]:
    """Fold once, publish what the fold produced, then mark it published."""
    outputs = await store.process(key, input_id, fold, extra_writes)
    if outputs:
        pending = OUTBOX_PENDING.labels(service_name(), store.name)
        pending.inc(len(outputs))
        try:
            await publish_all(outputs)
            await store.mark_published(key, input_id)
        finally:
            pending.dec(len(outputs))
    return outputs
