"""The care plan in Redis: one versioned plan per episode, plus a read model of referrals.

Every change to a plan goes through :class:`carepath_shared.state_store.StateStore`
(WATCH/MULTI on the episode's key): two teams changing one plan at once both land, in some
order, and neither is lost. The same transaction mirrors each referral to its own key and to
team and episode indexes, which the coordinator API reads.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any

import orjson

from carepath_referrals.domain import CarePlan, Referral
from carepath_shared.kafka_broker import OutboundEvent, publish_all
from carepath_shared.redis_client import key as rkey
from carepath_shared.service import Runtime
from carepath_shared.state_store import StateStore, run_and_publish

PlanFold = Callable[[CarePlan | None], tuple[CarePlan, list[OutboundEvent]]]
# Told, after a change is durable and published, which referrals it changed (before, after).
ChangesObserver = Callable[[list[tuple[Referral | None, Referral]]], None]


class PlanStore:
    def __init__(self, rt: Runtime, on_changes: ChangesObserver | None = None) -> None:
        self._rt = rt
        self._ns = rt.settings.namespace
        self._store = StateStore(rt.redis, self._ns, "careplan")
        self._on_changes = on_changes

    def referral_key(self, referral_id: str) -> str:
        return rkey(self._ns, "referral", referral_id)

    def team_index(self, team: str) -> str:
        return rkey(self._ns, "referrals", "team", team)

    def episode_index(self, episode_id: str) -> str:
        return rkey(self._ns, "referrals", "episode", episode_id)

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
            new_referrals.clear()
            new_referrals.update(new_plan.referrals)
            transitions[:] = [(before.get(rid), new_plan.referrals[rid]) for rid in changed]
            return new_plan.model_dump(mode="json"), events

        def mirror(pipe: Any, data: dict[str, Any] | None) -> None:
            if data is None:
                return
            # Only the referrals this change touched: the rest are already mirrored.
            for rid in changed:
                ref = data["referrals"][rid]
                pipe.set(self.referral_key(rid), orjson.dumps(ref))
                pipe.sadd(self.team_index(ref["team"]), rid)
                pipe.sadd(self.episode_index(episode_id), rid)
                pipe.sadd(self.all_index, rid)
                referral = new_referrals[rid]
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

        outputs = await run_and_publish(
            self._store, episode_id, input_id, raw_fold, partial(publish_all, broker), mirror
        )
        if outputs and self._on_changes is not None:
            self._on_changes(transitions)
        return outputs

    async def plan(self, episode_id: str) -> CarePlan | None:
        stored = await self._store.get(episode_id)
        return None if stored.data is None else CarePlan.model_validate(stored.data)

    async def referral(self, referral_id: str) -> Referral | None:
        raw = await self._rt.redis.get(self.referral_key(referral_id))
        return None if raw is None else Referral.model_validate_json(raw)

    async def referrals(self, ids: list[str]) -> list[Referral]:
        if not ids:
            return []
        raws = await self._rt.redis.mget([self.referral_key(i) for i in ids])
        return [Referral.model_validate_json(r) for r in raws if r is not None]

    async def _members(self, index: str) -> list[str]:
        members: Any = await self._rt.redis.smembers(index)
        return sorted(m.decode() for m in members)

    async def team_referrals(self, team: str) -> list[Referral]:
        refs = await self.referrals(await self._members(self.team_index(team)))
        return [r for r in refs if r.team == team]

    async def episode_referrals(self, episode_id: str) -> list[Referral]:
        return await self.referrals(await self._members(self.episode_index(episode_id)))

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
        return await self.referrals([i.decode() for i in ids])
