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

**Batches.** :meth:`StateStore.apply_many` applies the changes of many inputs (a consumer's
poll) at once, with the same guarantees as one at a time: the changes are grouped by key,
every key's state (and published marker) is read in one round trip (``MGET`` after
``WATCH`` of every key), each key's changes are folded in order in memory, and the new
states, outboxes and projections of every key are written in one ``MULTI``/``EXEC``. A
``WatchError`` (another writer touched one of the keys) re-reads and re-folds the whole
batch. A key's folded inputs share one outbox, under its last input, which is the one a
redelivery finds. A fold that raises stops its key there (its earlier inputs are written,
the later ones are not: order within a key holds) and is reported with the input, the other
keys go on. Projections are written once per key and batch (from the state before the batch
to the state after), indexes likewise; observers hear of every change. After the publish,
:meth:`StateStore.mark_published_many` marks every key's outbox published in one round trip.
On Redis Cluster, where one transaction cannot span slots, each key's group of changes is
its own WATCH/MULTI transaction (its keys share one slot), and the groups run concurrently.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
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
    "SEEN_LIMIT", "Applied", "BatchOutcome", "Change", "ConcurrentUpdate", "Fold",
    "KeyOutcome", "Observer", "Projection", "StateStore", "StoredState", "Writes",
    "apply_and_publish", "decode_outbox", "encode_outbox", "publish_outcomes",
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
    def hset(self, name: str, key: str | None = None, value: str | bytes | None = None,
             mapping: Mapping[str, str | bytes] | None = None) -> Any: ...
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


@dataclass
class KeyOutcome(Generic[S]):
    """What a batch did to one key.

    ``outputs`` are the events to publish now (the key's unpublished ones first) and
    ``origins`` the index, in the batch, of the change each came from (an unpublished
    event of an earlier input: the key's first change). ``mark_input`` is the input whose
    outbox holds them. ``before``/``after``: the key's state before and after the batch;
    ``folded``: (index, before, after) of every change folded in."""

    key: str
    outputs: list[OutboundEvent] = field(default_factory=list)
    origins: list[int] = field(default_factory=list)
    mark_input: str | None = None
    before: S | None = None
    after: S | None = None
    folded: list[tuple[int, S | None, S | None]] = field(default_factory=list)


@dataclass
class BatchOutcome(Generic[S]):
    """What :meth:`StateStore.apply_many` did: per key, and the changes that failed (by
    index in the batch: the first failing change of its key; its key's later changes were
    not applied)."""

    store: StateStore[S]
    keys: list[KeyOutcome[S]]
    failures: dict[int, Exception]

    @property
    def outputs(self) -> list[OutboundEvent]:
        return [event for key in self.keys for event in key.outputs]


@dataclass
class _KeyPlan(Generic[S]):
    """One key's reads, folds and writes within a batch."""

    key: str
    changes: list[tuple[int, Change[S]]]
    outcome: KeyOutcome[S]
    new_state: StoredState[S] | None = None
    carried: str | None = None  # the outbox a new input took over (deleted with the write)


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

    def _mark_script(self) -> Any:
        if self._mark_published_script is None:
            self._mark_published_script = self._redis.register_script(_MARK_PUBLISHED)
        return self._mark_published_script

    async def mark_published(self, key: str, input_id: str) -> None:
        """Record that the outputs of ``input_id`` (the key's last input) are on Kafka, and
        drop its outbox (a later input's outbox holds its own copy of anything pending)."""
        # One command (a script runs atomically), as cheap for the client as the SET alone.
        await self._mark_script()(
            keys=[self.outbox_key(key, input_id), self.published_key(key)],
            args=[input_id.encode()],
        )

    async def mark_published_many(self, outcome: BatchOutcome[S]) -> None:
        """:meth:`mark_published` of every key of a batch that published, in one round trip
        (concurrently, one per key, on Redis Cluster)."""
        marks = [(k.key, k.mark_input) for k in outcome.keys if k.outputs and k.mark_input]
        if not marks:
            return
        if len(marks) == 1 or self._cluster:
            await asyncio.gather(*(self.mark_published(key, input_id)
                                   for key, input_id in marks))
            return
        script = self._mark_script()
        async with self._redis.pipeline(transaction=False) as pipe:
            for key, input_id in marks:
                await script(keys=[self.outbox_key(key, input_id), self.published_key(key)],
                             args=[input_id.encode()], client=pipe)  # queued, not sent
            await pipe.execute()

    async def get(self, key: str) -> StoredState[S]:
        raw: Any = await self._redis.get(self.state_key(key))
        return self.decode(raw)

    async def process(self, key: str, input_id: str, fold: Fold[S],
                      max_retries: int = 50) -> list[OutboundEvent]:
        """Fold ``input_id`` into the state of ``key`` once; return the events to publish."""
        return (await self.apply(key, input_id, fold, max_retries)).outputs

    async def apply(self, key: str, input_id: str, fold: Fold[S],
                    max_retries: int = 50) -> Applied[S]:
        """Fold ``input_id`` into the state of ``key`` once (state, outbox and projections
        in one transaction); what it did and the events to publish. A fold's error is
        raised (nothing of it was written)."""
        outcome = await self.apply_many([self.change(key, input_id, fold)], max_retries)
        if outcome.failures:
            raise outcome.failures[0]
        [result] = outcome.keys
        if result.folded:
            return Applied(result.outputs, True, result.before, result.after)
        return Applied(result.outputs, False, result.after, result.after)

    async def apply_many(self, changes: Sequence[Change[S]],
                         max_retries: int = 50) -> BatchOutcome[S]:
        """Apply ``changes`` (in input order) once each: every key's reads in one round
        trip, every key's writes in one transaction (see the module doc, "Batches")."""
        groups: dict[str, list[tuple[int, Change[S]]]] = {}
        for index, change in enumerate(changes):
            if change.store is not self:
                raise ValueError(f"a change of store {change.store.name} given to {self.name}")
            groups.setdefault(change.key, []).append((index, change))
        if not groups:
            return BatchOutcome(self, [], {})
        if self._cluster:  # one transaction per slot: per key, concurrently
            plans = await asyncio.gather(*(self._apply_group(key, group, max_retries)
                                           for key, group in groups.items()))
        else:
            plans = await self._apply_groups(groups, max_retries)
        failures: dict[int, Exception] = {}
        for plan in plans:
            failures.update(plan.failures)
        return BatchOutcome(self, [plan.outcome for plan in plans], failures)

    async def _apply_groups(self, groups: dict[str, list[tuple[int, Change[S]]]],
                            max_retries: int) -> list[_Folded[S]]:
        keys = list(groups)
        state_keys = [self.state_key(k) for k in keys]
        published_keys = [self.published_key(k) for k in keys]
        for _ in range(max_retries):
            async with self._redis.pipeline(transaction=True) as pipe:
                try:
                    # A mark_published landing between our reads needs no abort: it deletes
                    # the outbox only after the publish, so reading it gone means published,
                    # and reading it still there republishes events with the same ids.
                    await pipe.watch(*state_keys)
                    values: Any = await pipe.mget(*state_keys, *published_keys)
                    stored = [self.decode(v) for v in values[:len(keys)]]
                    published = values[len(keys):]
                    unpublished = [i for i, st in enumerate(stored)
                                   if not self._is_published(st, published[i])]
                    outboxes: dict[int, Any] = {}
                    wanted = [i for i in unpublished if not stored[i].last_outputs]
                    if wanted:
                        raws: Any = await pipe.mget(*[
                            self.outbox_key(keys[i], cast(str, stored[i].last_input))
                            for i in wanted])
                        outboxes = dict(zip(wanted, raws, strict=True))
                    folded = [
                        self._fold_group(keys[i], groups[keys[i]], stored[i],
                                         self._pending(stored[i], i in unpublished,
                                                       outboxes.get(i)))
                        for i in range(len(keys))
                    ]
                    if any(f.plan.new_state is not None for f in folded):
                        pipe.multi()  # type: ignore[no-untyped-call]
                        for f in folded:
                            self._queue_writes(pipe, f.plan)
                        await pipe.execute()
                    else:
                        await pipe.unwatch()  # type: ignore[no-untyped-call]
                    return folded
                except WatchError:
                    continue
        raise ConcurrentUpdate(f"{self._name}: gave up after {max_retries} concurrent updates")

    async def _apply_group(self, key: str, group: list[tuple[int, Change[S]]],
                           max_retries: int) -> _Folded[S]:
        state_key = self.state_key(key)
        for _ in range(max_retries):
            async with self._redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(state_key)
                    # redis-py refuses MGET in a cluster pipeline
                    current: Any = await pipe.get(state_key)
                    published: Any = await pipe.get(self.published_key(key))
                    stored = self.decode(current)
                    is_published = self._is_published(stored, published)
                    outbox: Any = None
                    if not is_published and not stored.last_outputs:
                        outbox = await pipe.get(
                            self.outbox_key(key, cast(str, stored.last_input)))
                    folded = self._fold_group(key, group, stored,
                                              self._pending(stored, not is_published, outbox))
                    if folded.plan.new_state is not None:
                        pipe.multi()  # type: ignore[no-untyped-call]
                        self._queue_writes(pipe, folded.plan)
                        await pipe.execute()
                    else:
                        await pipe.unwatch()  # type: ignore[no-untyped-call]
                    return folded
                except WatchError:
                    continue
        raise ConcurrentUpdate(f"{self._name}: gave up after {max_retries} concurrent updates")

    @staticmethod
    def _is_published(stored: StoredState[S], published: Any) -> bool:
        return stored.last_input is None or (
            published is not None and published.decode() == stored.last_input)

    @staticmethod
    def _pending(stored: StoredState[S], unpublished: bool, outbox: Any
                 ) -> list[OutboundEvent]:
        """The last input's events, not yet marked published (its outbox, or a legacy state's
        embedded copy). Empty once published: mark_published deletes the outbox."""
        if not unpublished:
            return []
        if stored.last_outputs:
            return [OutboundEvent.from_json(o) for o in stored.last_outputs]
        return decode_outbox(outbox) if outbox else []

    def run_fold(self, change: Change[S], state: S | None) -> tuple[S | None,
                                                                    list[OutboundEvent]]:
        """One change's fold, its new state checked and its events sized (a change Kafka
        would refuse is never written)."""
        new_state, events = change.fold(state)
        new_state = self._checked(new_state)
        for event in events:
            check_size(event)
        return new_state, events

    def _fold_group(self, key: str, group: list[tuple[int, Change[S]]],
                    stored: StoredState[S], pending: list[OutboundEvent]) -> _Folded[S]:
        """Fold one key's changes in order into its stored state (pure: nothing written)."""
        outcome: KeyOutcome[S] = KeyOutcome(key, before=stored.data, after=stored.data)
        plan = _KeyPlan(key, group, outcome)
        failures: dict[int, Exception] = {}
        data = stored.data
        last = stored.last_input
        seen = list(stored.seen)
        seen_set = set(seen)
        events: list[OutboundEvent] = []
        origins: list[int] = []
        redelivered_last = False
        for index, change in group:
            if change.input_id == last or change.input_id in seen_set:
                # Folded before: nothing to fold. If it is the stored last input, its
                # unpublished events (if any) go out again; an older one publishes nothing.
                redelivered_last = redelivered_last or change.input_id == stored.last_input
                continue
            try:
                new_data, new_events = self.run_fold(change, data)
            except Exception as exc:
                failures[index] = exc  # this key stops here: its order holds
                break
            outcome.folded.append((index, data, new_data))
            data = new_data
            events.extend(new_events)
            origins.extend([index] * len(new_events))
            last = change.input_id
            seen.append(last)
            seen_set.add(last)
        first = group[0][0]
        if outcome.folded:
            # The previous input's events never made it out (e.g. the publish failed after
            # the write): they go out first, ahead of this batch's, from the new outbox.
            outcome.outputs = [*pending, *events]
            outcome.origins = [first] * len(pending) + origins
            outcome.mark_input = last
            outcome.after = data
            plan.new_state = self._stored_class.model_construct(
                data=data,
                version=stored.version + len(outcome.folded),
                last_input=last,
                last_outputs=[],
                seen=seen[-SEEN_LIMIT:],
            )
            if pending and stored.last_input is not None:
                plan.carried = stored.last_input
        elif redelivered_last and pending:
            outcome.outputs = list(pending)
            outcome.origins = [first] * len(pending)
            outcome.mark_input = stored.last_input
        return _Folded(plan, failures)

    def _queue_writes(self, pipe: Any, plan: _KeyPlan[S]) -> None:
        if plan.new_state is None:
            return
        key = plan.key
        outcome = plan.outcome
        pipe.set(self.state_key(key), self.encode(plan.new_state))
        if outcome.outputs and outcome.mark_input is not None:
            pipe.set(self.outbox_key(key, outcome.mark_input), encode_outbox(outcome.outputs))
        if plan.carried is not None:
            pipe.delete(self.outbox_key(key, plan.carried))  # carried over
        if outcome.after is not None:
            for project in self.projections:
                project(cast(Writes, pipe), key, outcome.before, outcome.after)

    async def write_indexes(self, key: str, before: S | None, after: S) -> None:
        """The store's cross-slot ``indexes`` of a change (idempotent, one round trip)."""
        await self._write_indexes([(key, before, after)])

    async def write_indexes_many(self, outcome: BatchOutcome[S]) -> None:
        """The indexes of every key of a batch that folded a change, or that publishes
        events of a redelivered input (then all of them: ``before=None``)."""
        await self._write_indexes([
            (k.key, k.before if k.folded else None, k.after)
            for k in outcome.keys
            if k.after is not None and (k.folded or k.outputs)
        ])

    async def _write_indexes(self, changes: list[tuple[str, S | None, S | None]]) -> None:
        if not self.indexes or not changes:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for key, before, after in changes:
                if after is None:
                    continue
                for index in self.indexes:
                    index(cast(Writes, pipe), key, before, after)
            if len(pipe):
                await pipe.execute()

    def notify_observers(self, outcome: BatchOutcome[S]) -> None:
        """Tell the observers of every change folded in, once its events are out."""
        if not self.observers:
            return
        for key in outcome.keys:
            if not key.outputs:
                continue
            for _index, before, after in key.folded:
                if after is None:
                    continue
                for observe in self.observers:
                    observe(key.key, before, after)


@dataclass
class _Folded(Generic[S]):
    plan: _KeyPlan[S]
    failures: dict[int, Exception]

    @property
    def outcome(self) -> KeyOutcome[S]:
        return self.plan.outcome


PublishAll = Callable[[list[OutboundEvent]], Awaitable[None]]


async def publish_outcomes(outcomes: Sequence[BatchOutcome[Any]],
                           publish_all: PublishAll) -> list[OutboundEvent]:
    """After :meth:`StateStore.apply_many`: write the indexes, publish every event (one
    ``publish_all``: sent together, awaited once), mark every outbox published, then tell
    the observers. Returns what was published."""
    for outcome in outcomes:
        await outcome.store.write_indexes_many(outcome)
    events = [event for outcome in outcomes for event in outcome.outputs]
    if not events:
        return events
    gauges = [(OUTBOX_PENDING.labels(service_name(), o.store.name), len(o.outputs))
              for o in outcomes if o.outputs]
    for gauge, count in gauges:
        gauge.inc(count)
    try:
        await publish_all(events)
        for outcome in outcomes:
            await outcome.store.mark_published_many(outcome)
    finally:
        for gauge, count in gauges:
            gauge.dec(count)
    for outcome in outcomes:
        outcome.store.notify_observers(outcome)
    return events


async def run_and_publish(
    store: StateStore[S],
    key: str,
    input_id: str,
    fold: Fold[S],
    publish_all: PublishAll,
) -> list[OutboundEvent]:
    """Fold once, write the indexes, publish what the fold produced, then mark it published.
    A fold's error is raised (nothing of it was written or published)."""
    return await apply_and_publish(store.change(key, input_id, fold), publish_all)


async def apply_and_publish(change: Change[S], publish_all: PublishAll) -> list[OutboundEvent]:
    """:func:`run_and_publish` of one :class:`Change`."""
    outcome = await change.store.apply_many([change])
    if outcome.failures:
        raise outcome.failures[0]
    return await publish_outcomes([outcome], publish_all)
