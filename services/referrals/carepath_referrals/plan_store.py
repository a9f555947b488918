"""The care plan in Redis: one versioned plan per episode, plus a read model of referrals.

Every change to a plan goes through a typed :class:`carepath_runtime.state_store.StateStore`
of :class:`CarePlan` (WATCH/MULTI on the episode's key): two teams changing one plan at once
both land, in some order, and neither is lost. The store declares the plan's projections:
each referral the change touched is written to its own key and to the episode's index in
the plan's transaction (one hash tag per episode: one Redis Cluster slot); the cross-episode
indexes the coordinator API and the deadline sweep read follow right after (see PlanStore).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime
from functools import partial
from typing import Any

from carepath_referrals.domain import CarePlan, Referral
from carepath_referrals.domain.deadlines import can_become_overdue
from carepath_referrals.referral_facts import facts_of
from carepath_runtime.kafka_broker import OutboundEvent, publish_all
from carepath_runtime.observability.clinical_metrics import ReferralFacts
from carepath_runtime.redis_client import key as redis_key
from carepath_runtime.redis_client import tag
from carepath_runtime.service import Runtime
from carepath_runtime.state_store import (
    Change,
    Observer,
    StateStore,
    Writes,
    apply_and_publish,
)

PlanFold = Callable[[CarePlan | None], tuple[CarePlan, list[OutboundEvent]]]
# Told, after a change is durable and published, which referrals it changed (before, after).
ChangesObserver = Callable[[list[tuple[Referral | None, Referral]]], None]


def referral_key(namespace: str, episode_id: str, referral_id: str) -> str:
    """A referral's document, under its episode's hash tag (the plan's Redis Cluster slot)."""
    return redis_key(namespace, "referral", tag(episode_id), referral_id)


def episode_index_key(namespace: str, episode_id: str) -> str:
    """Set: the ids of an episode's referrals, under the episode's hash tag."""
    return redis_key(namespace, "referrals", "episode", tag(episode_id))


def changed_referrals(before: CarePlan | None, after: CarePlan) -> list[Referral]:
    """The referrals of ``after`` that are new or have a new revision since ``before``."""
    old = before.referrals if before is not None else {}
    return [ref for rid, ref in after.referrals.items()
            if rid not in old or old[rid].revision != ref.revision]


class PlanStore:
    """Keys: the plan state and, under the episode's hash tag (same Redis Cluster slot, so in
    the plan's transaction), each referral's document and the episode's referral index.
    Cross-episode indexes (referral -> episode, team, all, due times) live in other slots;
    they are written after the transaction by idempotent commands (SADD/HSET/ZADD), before
    the events are published, and again on a redelivery: a crash in between loses none.
    Readers treat them as hints (a team index may hold a referral rerouted away; the deadline
    index an entry no longer due) and check the referral document itself."""

    def __init__(self, runtime: Runtime, on_changes: ChangesObserver | None = None) -> None:
        self._runtime = runtime
        self._ns = runtime.settings.namespace
        observers: list[Observer[CarePlan]] = []
        if on_changes is not None:
            def observe(_episode_id: str, before: CarePlan | None, after: CarePlan) -> None:
                old = before.referrals if before is not None else {}
                on_changes([(old.get(ref.referral_id), ref)
                            for ref in changed_referrals(before, after)])

            observers.append(observe)
        self.states: StateStore[CarePlan] = StateStore(
            runtime.redis, self._ns, "careplan", CarePlan,
            projections=[self._mirror], indexes=[self._index], observers=observers,
        )

    @property
    def _redis(self) -> Any:
        return self._runtime.redis

    def referral_key(self, episode_id: str, referral_id: str) -> str:
        return referral_key(self._ns, episode_id, referral_id)

    def episode_index(self, episode_id: str) -> str:
        return episode_index_key(self._ns, episode_id)

    @property
    def episode_of(self) -> str:
        """Hash: referral id -> episode id (never changes once written)."""
        return redis_key(self._ns, "referrals", "episode-of")

    def team_index(self, team: str) -> str:
        return redis_key(self._ns, "referrals", "team", team)

    @property
    def all_index(self) -> str:
        return redis_key(self._ns, "referrals", "all")

    @property
    def open_index(self) -> str:
        """Hash: referral id -> its compact service-level facts, for the referrals not yet
        completed or cancelled (the gauges read it without loading any referral)."""
        return redis_key(self._ns, "referrals", "open-facts")

    @property
    def deadline_index(self) -> str:
        """Referrals that can still become overdue, scored by their due time (epoch s)."""
        return redis_key(self._ns, "referrals", "deadlines")

    def change(self, episode_id: str, input_id: str, fold: PlanFold) -> Change[CarePlan]:
        """One input's change to the episode's plan, for the consumer (or
        :meth:`change_and_publish`) to apply once."""
        return self.states.change(episode_id, input_id, fold)

    async def change_and_publish(
        self, episode_id: str, input_id: str, fold: PlanFold, broker: Any
    ) -> list[OutboundEvent]:
        """Fold one input into the episode's plan once, mirror the referrals it touched, then
        publish its events (acks=all) and mark them published."""
        return await apply_and_publish(self.change(episode_id, input_id, fold),
                                       partial(publish_all, broker))

    def _mirror(self, writes: Writes, episode_id: str, before: CarePlan | None,
                after: CarePlan) -> None:
        """In the plan's transaction: the referrals this change touched (the rest are
        mirrored already), each as its own document, and the episode's index."""
        refs = changed_referrals(before, after)
        for ref in refs:
            writes.set(self.referral_key(episode_id, ref.referral_id),
                       ref.model_dump_json().encode())
        if refs:
            writes.sadd(self.episode_index(episode_id), *[r.referral_id for r in refs])

    def _index(self, writes: Writes, episode_id: str, before: CarePlan | None,
               after: CarePlan) -> None:
        """After the transaction (other slots, idempotent): the cross-episode indexes of the
        referrals the change touched (all of them when ``before`` is None)."""
        refs = changed_referrals(before, after)
        if not refs:
            return
        # One command per index, each naming every referral of the change (a plan change
        # touches several: a command each would be most of the change's Redis work).
        ids = [r.referral_id for r in refs]
        writes.hset(self.episode_of, mapping=dict.fromkeys(ids, episode_id))
        by_team: dict[str, list[str]] = {}
        for referral in refs:
            by_team.setdefault(referral.team.value, []).append(referral.referral_id)
        for team, team_ids in by_team.items():
            writes.sadd(self.team_index(team), *team_ids)
        writes.sadd(self.all_index, *ids)
        open_facts = {r.referral_id: facts_of(r).encode() for r in refs if r.is_open}
        closed = [r.referral_id for r in refs if not r.is_open]
        if open_facts:
            writes.hset(self.open_index, mapping=open_facts)
        if closed:
            writes.hdel(self.open_index, *closed)
        due = {r.referral_id: r.due_at.timestamp() for r in refs if can_become_overdue(r)}
        not_due = [rid for rid in ids if rid not in due]
        if due:
            writes.zadd(self.deadline_index, due)
        if not_due:
            writes.zrem(self.deadline_index, *not_due)

    async def plan(self, episode_id: str) -> CarePlan | None:
        return (await self.states.get(episode_id)).data

    async def referral(self, referral_id: str) -> Referral | None:
        found = await self.referrals([referral_id])
        return found[0] if found else None

    async def referrals(self, ids: list[str]) -> list[Referral]:
        if not ids:
            return []
        episodes: Any = await self._redis.hmget(self.episode_of, ids)
        keys = [
            self.referral_key(ep.decode(), rid)
            for rid, ep in zip(ids, episodes, strict=True) if ep is not None
        ]
        if not keys:
            return []
        # One GET per referral in a pipeline: Redis Cluster splits it per node (an MGET
        # across episodes would be a cross-slot command).
        async with self._redis.pipeline(transaction=False) as pipe:
            for k in keys:
                pipe.get(k)
            raws = await pipe.execute()
        return [Referral.model_validate_json(r) for r in raws if r is not None]

    async def _members(self, index: str) -> list[str]:
        members: Any = await self._redis.smembers(index)
        return sorted(m.decode() for m in members)

    async def team_referrals(self, team: str) -> list[Referral]:
        refs = await self.referrals(await self._members(self.team_index(team)))
        return [r for r in refs if r.team == team]

    async def episode_referrals(self, episode_id: str) -> list[Referral]:
        ids = await self._members(self.episode_index(episode_id))
        if not ids:
            return []
        raws: Any = await self._redis.mget([self.referral_key(episode_id, i) for i in ids])
        return [Referral.model_validate_json(r) for r in raws if r is not None]

    async def open_referral_facts(self, chunk: int = 1000) -> AsyncIterator[ReferralFacts]:
        """The service-level facts of every open referral, read ``chunk`` at a time."""
        async for _rid, raw in self._redis.hscan_iter(self.open_index, count=chunk):
            yield ReferralFacts.decode(raw)

    async def all_referrals(self) -> list[Referral]:
        return await self.referrals(await self._members(self.all_index))

    async def due_before(self, when: datetime, limit: int = 500) -> list[Referral]:
        """Referrals due before ``when`` that may need escalating, at most ``limit``.

        Reads only the deadline index's head, so a sweep costs what is overdue, not what is
        open.
        """
        ids: Any = await self._redis.zrangebyscore(
            self.deadline_index, "-inf", when.timestamp(), start=0, num=limit
        )
        refs = await self.referrals([i.decode() for i in ids])
        # The index is written outside the plan's transaction: an entry of a referral closed
        # since (a late write of an older change) is dropped here, as it can never be due.
        closed = [r.referral_id for r in refs if not r.is_open]
        if closed:
            await self._redis.zrem(self.deadline_index, *closed)
        return refs
