"""Per-key state in Redis with exactly-once *effects* under at-least-once delivery.

A consumer folds each input event into the state of its key (an episode) and derives the
events to publish. The fold, the new state and the outbound events are written in one Redis
transaction (WATCH/MULTI), together with the input's id. Then the events are published and
the input is committed. On redelivery:

* an input already folded in, that was the *last* one, returns its stored outbound events
  again unless they were marked published (:meth:`StateStore.mark_published`), so a crash
  between the Redis write and the publish loses nothing, and a replay republishes nothing
  (were they republished, they keep their deterministic ids and consumers de-duplicate);
* an older input already folded in changes nothing and publishes nothing;
* a new input whose predecessor's events were never marked published carries them out first
  (a transactional outbox per key: nothing written is ever left unpublished).

Writers to one key race safely: WATCH aborts the loser, which re-reads and retries, so no
update is lost. An output larger than its topic takes raises
:class:`carepath_shared.kafka_broker.EventTooLarge` before anything is written, so an input
that could never be published leaves no state and no outbox behind.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import WatchError

from carepath_shared.kafka_broker import OutboundEvent, check_size
from carepath_shared.redis_client import key as rkey

SEEN_LIMIT = 512


@dataclass
class StoredState:
    data: dict[str, Any] | None
    version: int = 0
    last_input: str | None = None
    last_outputs: list[dict[str, Any]] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "data": self.data,
                "version": self.version,
                "last_input": self.last_input,
                "last_outputs": self.last_outputs,
                "seen": self.seen,
            }
        )

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


Fold = Callable[[dict[str, Any] | None], tuple[dict[str, Any] | None, list[OutboundEvent]]]
ExtraWrites = Callable[[Any, dict[str, Any] | None], None]


class ConcurrentUpdate(RuntimeError):
    """The state changed under us too many times in a row."""


class StateStore:
    def __init__(self, redis: aioredis.Redis, namespace: str, name: str) -> None:
        self._redis = redis
        self._ns = namespace
        self._name = name

    def state_key(self, key: str) -> str:
        return rkey(self._ns, self._name, "state", key)

    def published_key(self, key: str) -> str:
        return rkey(self._ns, self._name, "published", key)

    async def mark_published(self, key: str, input_id: str) -> None:
        """Record that the outputs of ``input_id`` (the key's last input) are on Kafka."""
        await self._redis.set(self.published_key(key), input_id.encode())

    async def get(self, key: str) -> StoredState:
        raw: Any = await self._redis.get(self.state_key(key))
        return StoredState.from_bytes(raw)

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
        for _ in range(max_retries):
            async with self._redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(skey)
                    values: Any = await pipe.mget(skey, self.published_key(key))
                    current, published = values
                    state = StoredState.from_bytes(current)
                    last_published = (
                        state.last_input is None
                        or (published is not None and published.decode() == state.last_input)
                    )
                    if state.last_input == input_id:
                        await pipe.unwatch()  # type: ignore[no-untyped-call]
                        if last_published:
                            return []
                        return [OutboundEvent.from_json(o) for o in state.last_outputs]
                    if input_id in state.seen:
                        await pipe.unwatch()  # type: ignore[no-untyped-call]
                        return []
                    # The previous input's events never made it out (e.g. the publish failed
                    # after the write): they go out first, ahead of this input's.
                    pending = [] if last_published else state.last_outputs
                    new_data, outputs = fold(state.data)
                    for out in outputs:  # a change Kafka would refuse is never written
                        check_size(out)
                    outputs = [*(OutboundEvent.from_json(o) for o in pending), *outputs]
                    seen = [*state.seen, input_id][-SEEN_LIMIT:]
                    new_state = StoredState(
                        data=new_data,
                        version=state.version + 1,
                        last_input=input_id,
                        last_outputs=[o.to_json() for o in outputs],
                        seen=seen,
                    )
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.set(skey, new_state.to_bytes())
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
        await publish_all(outputs)
        await store.mark_published(key, input_id)
    return outputs
