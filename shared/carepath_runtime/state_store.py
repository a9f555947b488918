"""Per-key state in Redis with exactly-once *effects* under at-least-once delivery.

A consumer folds each input event into the state of its key (an episode) and derives the
events to publish. The fold, the new state and the outbound events are written in one Redis
transaction (WATCH/MULTI), together with the input's id. Then the events are published and
the input is committed. The outbound events wait in an *outbox* key of their own
(``<ns>:<name>:outbox:<key>:<input id>``, the records' bytes as they go to Kafka, never
re-encoded: :mod:`carepath_runtime.outbox`) until :meth:`StateStore.mark_published` deletes
it with the published marker, so a published episode's state holds no copy of its events.
On redelivery:

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
that could never be published leaves no state and no outbox behind. Every key of one state
carries the key's hash tag (one Redis Cluster slot), projections included.

**The typed unit of work.** A store is generic over its state: ``StateStore[EpisodeState]``
(any pydantic model; a plain ``dict`` by default). One input's change to one key is a
:class:`Change`: the key, the input id and a pure *fold*
``fold(state: S | None) -> (new state, events to publish)``. A fold rather than an
``async with uow(key, input_id) as tx:`` block because WATCH/MULTI is optimistic: when
another writer (an API call, a re-evaluation, another replica) changes the key between our
read and our EXEC, the transaction aborts and the change must be computed again on the new
state. The store can call a fold again; the body of an ``async with`` block runs once, and
would have to be written as a retry loop by every caller. The fold is also what lets a
batch of inputs be folded in order in memory and written in one round trip.

Models cross the hot path once: the stored bytes are validated into ``StoredState[S]`` by
pydantic in one pass (``model_validate_json``, no intermediate ``dict``), the fold works on
models and returns models, and the new state is serialized once (``dump_json``), straight
into the transaction.

**Projections** are declared with the store, as functions of the change
``(writes, key, before, after)``:

* ``projections`` are written inside the state's transaction (same hash tag, same slot):
  the referrals' documents and their per-episode index, never out of step with the plan;
* ``indexes`` are keys of other slots, written after the transaction by idempotent commands
  (SADD, HSET, ZADD), before the events are published, and again (with ``before=None``:
  everything) when a redelivery finds the events unpublished, so a crash in between loses
  none of them;
* ``observers`` are told ``(key, before, after)`` once a folded change's events are out
  (the referrals' service-level histograms).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, cast, get_origin, overload

import redis.asyncio as aioredis
from pydantic import BaseModel, TypeAdapter
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import WatchError

from carepath_runtime.kafka_broker import OutboundEvent, check_size
from carepath_runtime.observability.metrics import OUTBOX_PENDING, service_name
from carepath_runtime.outbox import decode_outbox, encode_outbox
from carepath_runtime.redis_client import key as redis_key
from carepath_runtime.redis_client import tag

__all__ = [
    "SEEN_LIMIT", "Applied", "Change", "ConcurrentUpdate", "Fold", "Observer", "Projection",
    "StateStore",
    "StoredState", "Writes", "apply_and_publish", "decode_outbox", "encode_outbox",
    "run_and_publish",
]

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


S = TypeVar("S")

JsonObject = dict[str, Any]


class StoredState(BaseModel, Generic[S]):
    """A key's state as stored: the data, how many inputs made it, the last input, and the
    ids of the most recent inputs (:data:`SEEN_LIMIT`). ``last_outputs`` is only read from
    states written before the outbox had its own key (their unpublished events)."""

    data: S | None = None
    version: int = 0
    last_input: str | None = None
    last_outputs: list[dict[str, Any]] = []
    seen: list[str] = []

    def to_bytes(self, *, exclude_none: bool = False) -> bytes:
        exclude = None if self.last_outputs else {"last_outputs"}
        return self.model_dump_json(exclude=exclude, exclude_none=exclude_none).encode()


Fold = Callable[[S | None], tuple[S | None, list[OutboundEvent]]]
"""One input's pure change to a key's state: the new state and the events to publish."""


class Writes(Protocol):
    """The Redis commands a projection may queue (on the store's pipeline)."""

    def set(self, name: str, value: bytes) -> Any: ...
    def delete(self, *names: str) -> Any: ...
    def sadd(self, name: str, *values: str) -> Any: ...
    def srem(self, name: str, *values: str) -> Any: ...
    def hset(self, name: str, key: str, value: str | bytes) -> Any: ...
    def hdel(self, name: str, *keys: str) -> Any: ...
    def zadd(self, name: str, mapping: Mapping[str, float]) -> Any: ...
    def zrem(self, name: str, *values: str) -> Any: ...


Projection = Callable[[Writes, str, S | None, S], None]
"""Writes derived from a change of ``key`` from ``before`` to ``after``."""

Observer = Callable[[str, S | None, S], None]


# KEYS[1] the input's outbox, KEYS[2] the published marker; ARGV[1] the input id.
_MARK_PUBLISHED = "redis.call('DEL', KEYS[1]); redis.call('SET', KEYS[2], ARGV[1]); return 1"


class ConcurrentUpdate(RuntimeError):
    """The state changed under us too many times in a row."""


@dataclass(frozen=True)
class Change(Generic[S]):
    """What one input does to one key of one store: fold ``input_id`` into ``key`` once."""

    store: StateStore[S]
    key: str
    input_id: str
    fold: Fold[S]


@dataclass(frozen=True)
class Applied(Generic[S]):
    """The result of :meth:`StateStore.apply`.

    ``outputs``: the events to publish now (none if the input was seen and its events are
    out). ``folded``: whether this call folded the input in; then ``before`` is the state it
    was folded into and ``after`` the new state. Otherwise ``after`` is the stored state."""

    outputs: list[OutboundEvent]
    folded: bool
    before: S | None
    after: S | None


class StateStore(Generic[S]):
    """Per-key states of one kind (``name``), each a ``StoredState[S]`` under its hash tag."""

    @overload
    def __init__(self: StateStore[JsonObject], redis: aioredis.Redis, namespace: str,
                 name: str) -> None: ...

    @overload
    def __init__(self, redis: aioredis.Redis, namespace: str, name: str, state_type: type[S],
                 *, exclude_none: bool = False, projections: Sequence[Projection[S]] = (),
                 indexes: Sequence[Projection[S]] = (),
                 observers: Sequence[Observer[S]] = ()) -> None: ...

    def __init__(self, redis: aioredis.Redis, namespace: str, name: str,
                 state_type: Any = JsonObject, *, exclude_none: bool = False,
                 projections: Sequence[Projection[S]] = (),
                 indexes: Sequence[Projection[S]] = (),
                 observers: Sequence[Observer[S]] = ()) -> None:
        self._redis = redis
        self._ns = namespace
        self._name = name
        self._mark_published_script: Any = None  # registered on first use
        self._cluster = isinstance(redis, RedisCluster)
        self._state_type: type[Any] = get_origin(state_type) or state_type
        self._state_adapter: TypeAdapter[S] = TypeAdapter(state_type)
        self._stored_adapter: TypeAdapter[StoredState[S]] = TypeAdapter(StoredState[state_type])
        self._stored_class: type[StoredState[S]] = StoredState[state_type]
        self._exclude_none = exclude_none
        self.projections = tuple(projections)
        self.indexes = tuple(indexes)
        self.observers = tuple(observers)

    @property
    def name(self) -> str:
        return self._name

    @property
    def redis(self) -> aioredis.Redis:
        return self._redis

    def change(self, key: str, input_id: str, fold: Fold[S]) -> Change[S]:
        return Change(self, key, input_id, fold)

    # Every key of one state (state, published marker, outbox) carries its hash tag: the
    # WATCH/MULTI, the reads below and the mark_published script stay in one Redis Cluster
    # slot; ``projections`` must use the same tag (:meth:`slot_tag`).
    def slot_tag(self, key: str) -> str:
        return tag(key)

    def state_key(self, key: str) -> str:
        return redis_key(self._ns, self._name, "state", tag(key))

    def state_key_pattern(self) -> str:
        """A SCAN pattern matching every state key of this store."""
        return redis_key(self._ns, self._name, "state", "{*}")

    def key_of(self, state_key: str) -> str:
        """The key a state key was made for (the inverse of :meth:`state_key`)."""
        prefix = redis_key(self._ns, self._name, "state", "")
        return state_key.removeprefix(prefix).removeprefix("{").removesuffix("}")

    def published_key(self, key: str) -> str:
        return redis_key(self._ns, self._name, "published", tag(key))

    def outbox_key(self, key: str, input_id: str) -> str:
        return redis_key(self._ns, self._name, "outbox", tag(key), input_id)

    def decode(self, raw: bytes | None) -> StoredState[S]:
        """A stored state from its bytes, validated in one pass (none: the empty state)."""
        if not raw:
            return self._stored_class()
        return self._stored_adapter.validate_json(raw)

    def encode(self, stored: StoredState[S]) -> bytes:
        exclude = None if stored.last_outputs else {"last_outputs"}
        return self._stored_adapter.dump_json(stored, exclude=exclude,
                                              exclude_none=self._exclude_none)

    def _checked(self, data: Any) -> S | None:
        """A fold's new state, as the state type (validated only if it is not one already)."""
        if data is None or isinstance(data, self._state_type):
            return cast("S | None", data)
        return self._state_adapter.validate_python(data)

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

    async def get(self, key: str) -> StoredState[S]:
        raw: Any = await self._redis.get(self.state_key(key))
        return self.decode(raw)

    async def _unpublished(self, pipe: Any, key: str, state: StoredState[S]
                           ) -> list[OutboundEvent]:
        """The last input's events, not yet marked published (its outbox, or a legacy state's
        embedded copy). Empty once published: mark_published deletes the outbox."""
        if state.last_outputs:
            return [OutboundEvent.from_json(o) for o in state.last_outputs]
        assert state.last_input is not None
        raw: Any = await pipe.get(self.outbox_key(key, state.last_input))
        return decode_outbox(raw) if raw else []

    async def process(self, key: str, input_id: str, fold: Fold[S],
                      max_retries: int = 50) -> list[OutboundEvent]:
        """Fold ``input_id`` into the state of ``key`` once; return the events to publish."""
        return (await self.apply(key, input_id, fold, max_retries)).outputs

    async def apply(self, key: str, input_id: str, fold: Fold[S],
                    max_retries: int = 50) -> Applied[S]:
        """Fold ``input_id`` into the state of ``key`` once (state, outbox and projections
        in one transaction); what it did and the events to publish."""
        state_key = self.state_key(key)
        published_key = self.published_key(key)
        for _ in range(max_retries):
            async with self._redis.pipeline(transaction=True) as pipe:
                try:
                    # A mark_published landing between our reads needs no abort: it deletes
                    # the outbox only after the publish, so reading it gone means published,
                    # and reading it still there republishes events with the same ids.
                    await pipe.watch(state_key)
                    current: Any
                    published: Any
                    if self._cluster:  # redis-py refuses MGET in a cluster pipeline
                        current = await pipe.get(state_key)
                        published = await pipe.get(published_key)
                    else:
                        values: Any = await pipe.mget(state_key, published_key)
                        current, published = values
                    state = self.decode(current)
                    last_published = (
                        state.last_input is None
                        or (published is not None and published.decode() == state.last_input)
                    )
                    if state.last_input == input_id or input_id in state.seen:
                        # Folded before: its events again if they are still unpublished and
                        # it was the last input; nothing otherwise.
                        unpublished = (state.last_input == input_id and not last_published)
                        outputs = await self._unpublished(pipe, key, state) if unpublished else []
                        await pipe.unwatch()  # type: ignore[no-untyped-call]
                        return Applied(outputs, False, state.data, state.data)
                    # The previous input's events never made it out (e.g. the publish failed
                    # after the write): they go out first, ahead of this input's.
                    pending = [] if last_published else await self._unpublished(pipe, key, state)
                    new_data, events = fold(state.data)
                    new_data = self._checked(new_data)
                    for event in events:  # a change Kafka would refuse is never written
                        check_size(event)
                    outputs = [*pending, *events]
                    new_state = self._stored_class.model_construct(
                        data=new_data,
                        version=state.version + 1,
                        last_input=input_id,
                        last_outputs=[],
                        seen=[*state.seen, input_id][-SEEN_LIMIT:],
                    )
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.set(state_key, self.encode(new_state))
                    if outputs:
                        pipe.set(self.outbox_key(key, input_id), encode_outbox(outputs))
                    if pending and state.last_input is not None:
                        pipe.delete(self.outbox_key(key, state.last_input))  # carried over
                    if new_data is not None:
                        for project in self.projections:
                            project(cast(Writes, pipe), key, state.data, new_data)
                    await pipe.execute()
                    return Applied(outputs, True, state.data, new_data)
                except WatchError:
                    continue
        raise ConcurrentUpdate(f"{self._name}: gave up after {max_retries} concurrent updates")

    async def write_indexes(self, key: str, before: S | None, after: S) -> None:
        """The store's cross-slot ``indexes`` of a change (idempotent, one round trip)."""
        if not self.indexes:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for index in self.indexes:
                index(cast(Writes, pipe), key, before, after)
            if len(pipe):
                await pipe.execute()


async def run_and_publish(
    store: StateStore[S],
    key: str,
    input_id: str,
    fold: Fold[S],
    publish_all: Callable[[list[OutboundEvent]], Awaitable[None]],
) -> list[OutboundEvent]:
    """Fold once, write the indexes, publish what the fold produced, then mark it published."""
    applied = await store.apply(key, input_id, fold)
    outputs = applied.outputs
    if applied.after is not None and (applied.folded or outputs):
        # A redelivery whose events never went out: its indexes may be missing too.
        await store.write_indexes(key, applied.before if applied.folded else None,
                                  applied.after)
    if outputs:
        pending = OUTBOX_PENDING.labels(service_name(), store.name)
        pending.inc(len(outputs))
        try:
            await publish_all(outputs)
            await store.mark_published(key, input_id)
        finally:
            pending.dec(len(outputs))
        if applied.folded and applied.after is not None:
            for observe in store.observers:
                observe(key, applied.before, applied.after)
    return outputs


async def apply_and_publish(
    change: Change[S], publish_all: Callable[[list[OutboundEvent]], Awaitable[None]]
) -> list[OutboundEvent]:
    """:func:`run_and_publish` of one :class:`Change`."""
    return await run_and_publish(change.store, change.key, change.input_id, change.fold,
                                 publish_all)
