"""The care plan in Redis: one versioned plan per episode, plus a read model of referrals.

Every change to a plan goes through :class:`carepath_runtime.state_store.StateStore`
(WATCH/MULTI on the episode's key): two teams changing one plan at once both land, in some
order, and neither is lost. The same transaction mirrors each referral to its own key and to
the episode's index (one hash tag per episode: one Redis Cluster slot); the cross-episode
indexes the coordinator API and the deadline sweep read follow right after (see PlanStore).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson

from carepath_referrals.domain import CarePlan, Referral
from carepath_runtime.kafka_broker import OutboundEvent, publish_all
from carepath_runtime.redis_client import key as rkey
from carepath_runtime.redis_client import tag
from carepath_runtime.service import Runtime
from carepath_runtime.state_store import StateStore, run_and_publish

PlanFold = Callable[[CarePlan | None], tuple[CarePlan, list[OutboundEvent]]]
# Told, after a change is durable and published, which referrals it changed (before, after).
ChangesObserver = Callable[[list[tuple[Referral | None, Referral]]], None]


class PlanStore:
    """Keys: the plan state and, under the episode's hash tag (same Redis Cluster slot, so in
    the plan's transaction), each referral's document and the episode's referral index.
    Cross-episode indexes (referral -> episode, team, all, due times) live in other slots;
    they are written after the transaction by idempotent commands (SADD/HSET/ZADD), before
    the events are published, and again on a redelivery: a crash in between loses none.
    Readers treat them as hints (a team index may hold a referral rerouted away; the deadline
    index an entry no longer due) and check the referral document itself."""

    def __init__(self, rt: Runtime, on_changes: ChangesObserver | None = None) -> None:
        self._rt = rt
        self._ns = rt.settings.namespace
        self._store = StateStore(rt.redis, self._ns, "careplan")
        self._on_changes = on_changes

    def referral_key(self, episode_id: str, referral_id: str) -> str:
        return rkey(self._ns, "referral", tag(episode_id), referral_id)

    def episode_index(self, episode_id: str) -> str:
        return rkey(self._ns, "referrals", "episode", tag(episode_id))

    @property
    def episode_of(self) -> str:
        """Hash: referral id -> episode id (never changes once written)."""
        return rkey(self._ns, "referrals", "episode-of")

    def team_index(self, team: str) -> str:
        return rkey(self._ns, "referrals", "team", team)

    @property
    def all_index(self) -> str:
        return rkey(self._ns, "referrals", "all")

    @property
    def open_index(self) -> str:
        """Referrals not yet completed or cancelled (the service-level gauges read it)."""
        return rkey(self._ns, "referrals", "open")

    @property
    def deadline_index(self) -> str:
        """Referrals that can still become overdue, scored by their due time (epoch s)."""
        return rkey(self._ns, "referrals", "deadlines")

    async def change_and_publish(
        self, episode_id: str, input_id: str, fold: PlanFold, broker: Any
    ) -> list[OutboundEvent]:
        """Fold one input into the episode's plan once, mirror the referrals it touched, then
        publish its events (acks=all) and mark them published."""
        changed: list[str] = []
        folded: list[bool] = []
        new_referrals: dict[str, Referral] = {}
        transitions: list[tuple[Referral | None, Referral]] = []

        def raw_fold(data: dict[str, Any] | None) -> tuple[dict[str, Any], list[OutboundEvent]]:
            plan = None if data is None else CarePlan.model_validate(data)
            new_plan, events = fold(plan)
            before = plan.referrals if plan is not None else {}
            changed[:] = [
                rid for rid, ref in new_plan.referrals.items()
                if rid not in before or before[rid].revision != ref.revision
            ]
            folded[:] = [True]
            new_referrals.clear()
            new_referrals.update(new_plan.referrals)
            transitions[:] = [(before.get(rid), new_plan.referrals[rid]) for rid in changed]
            return new_plan.model_dump(mode="json"), events

        def mirror(pipe: Any, data: dict[str, Any] | None) -> None:
            if data is None:
                return
            # Only the referrals this change touched: the rest are already mirrored.
            for rid in changed:
                pipe.set(self.referral_key(episode_id, rid), orjson.dumps(data["referrals"][rid]))
                pipe.sadd(self.episode_index(episode_id), rid)

        async def indexes_then_publish(outputs: list[OutboundEvent]) -> None:
            if folded:
                await self._index(episode_id, [new_referrals[rid] for rid in changed])
            else:  # a redelivery whose events never went out: the indexes may be missing too
                plan = await self.plan(episode_id)
                await self._index(episode_id, list(plan.referrals.values()) if plan else [])
            await publish_all(broker, outputs)

        outputs = await run_and_publish(
            self._store, episode_id, input_id, raw_fold, indexes_then_publish, mirror
        )
        if not outputs and folded and changed:  # a change without events: index it anyway
            await self._index(episode_id, [new_referrals[rid] for rid in changed])
        if outputs and folded and self._on_changes is not None:
            self._on_changes(transitions)
        return outputs

    async def _index(self, episode_id: str, refs: list[Referral]) -> None:
        if not refs:
            return
        async with self._rt.redis.pipeline(transaction=False) as pipe:
            for referral in refs:
                rid = referral.referral_id
                pipe.hset(self.episode_of, rid, episode_id)
                pipe.sadd(self.team_index(referral.team.value), rid)
                pipe.sadd(self.all_index, rid)
                if referral.is_open:
                    pipe.sadd(self.open_index, rid)
                else:
                    pipe.srem(self.open_index, rid)
                if referral.is_open and referral.started_at is None and (
                    referral.escalated_at is None
                ):
                    pipe.zadd(self.deadline_index, {rid: referral.due_at.timestamp()})
                else:
                    pipe.zrem(self.deadline_index, rid)
            await pipe.execute()

    async def plan(self, episode_id: str) -> CarePlan | None:
        stored = await self._store.get(episode_id)
        return None if stored.data is None else CarePlan.model_validate(stored.data)

    async def referral(self, referral_id: str) -> Referral | None:
        found = await self.referrals([referral_id])
        return found[0] if found else None

    async def referrals(self, ids: list[str]) -> list[Referral]:
        if not ids:
            return []
        episodes: Any = await self._rt.redis.hmget(self.episode_of, ids)
        keys = [
            self.referral_key(ep.decode(), rid)
            for rid, ep in zip(ids, episodes, strict=True) if ep is not None
        ]
        if not keys:
            return []
        # One GET per referral in a pipeline: Redis Cluster splits it per node (an MGET
        # across episodes would be a cross-slot command).
        async with self._rt.redis.pipeline(transaction=False) as pipe:
            for k in keys:
                pipe.get(k)
            raws = await pipe.execute()
        return [Referral.model_validate_json(r) for r in raws if r is not None]

    async def _members(self, index: str) -> list[str]:
        members: Any = await self._rt.redis.smembers(index)
        return sorted(m.decode() for m in members)

    async def team_referrals(self, team: str) -> list[Referral]:
        refs = await self.referrals(await self._members(self.team_index(team)))
        return [r for r in refs if r.team == team]

    async def episode_referrals(self, episode_id: str) -> list[Referral]:
        ids = await self._members(self.episode_index(episode_id))
        if not ids:
            return []
        raws: Any = await self._rt.redis.mget([self.referral_key(episode_id, i) for i in ids])
        return [Referral.model_validate_json(r) for r in raws if r is not None]

    async def open_referrals(self) -> list[Referral]:
        return [r for r in await self.referrals(await self._members(self.open_index))
                if r.is_open]

    async def all_referrals(self) -> list[Referral]:
        return await self.referrals(await self._members(self.all_index))

    async def due_before(self, when: datetime, limit: int = 500) -> list[Referral]:
        """Referrals due before ``when`` that may need escalating, at most ``limit``.

        Reads only the deadline index's head, so a sweep costs what is overdue, not what is
        open.
        """
        ids: Any = await self._rt.redis.zrangebyscore(
            self.deadline_index, "-inf", when.timestamp(), start=0, num=limit
        )
        refs = await self.referrals([i.decode() for i in ids])
        # The index is written outside the plan's transaction: an entry of a referral closed
        # since (a late write of an older change) is dropped here, as it can never be due.
        closed = [r.referral_id for r in refs if not r.is_open]
        if closed:
            await self._rt.redis.zrem(self.deadline_index, *closed)
        return refs
