"""The plan store's cross-episode indexes: one command per index for a whole plan change,
naming every referral the change touched, with the same contents as one command each."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from test_care_plan import apply, event, plan0, rec, work

from carepath_referrals.domain import Accept, Start
from carepath_referrals.plan_store import PlanStore


class Recorder:
    """A ``Writes`` that records the commands queued on it."""

    def __init__(self) -> None:
        self.commands: list[tuple[str, str, Any]] = []

    def set(self, name: str, value: bytes) -> None:
        self.commands.append(("set", name, value))

    def delete(self, *names: str) -> None:
        self.commands.append(("delete", names[0], names))

    def sadd(self, name: str, *values: str) -> None:
        self.commands.append(("sadd", name, set(values)))

    def srem(self, name: str, *values: str) -> None:
        self.commands.append(("srem", name, set(values)))

    def hset(self, name: str, key: str | None = None, value: str | bytes | None = None,
             mapping: Mapping[str, str | bytes] | None = None) -> None:
        fields = dict(mapping or {})
        if key is not None:
            fields[key] = value  # type: ignore[assignment]
        self.commands.append(("hset", name, fields))

    def hdel(self, name: str, *keys: str) -> None:
        self.commands.append(("hdel", name, set(keys)))

    def zadd(self, name: str, mapping: Mapping[str, float]) -> None:
        self.commands.append(("zadd", name, dict(mapping)))

    def zrem(self, name: str, *values: str) -> None:
        self.commands.append(("zrem", name, set(values)))


class _Rt:
    class settings:
        namespace = "cp"
    redis = None


def test_a_plan_change_writes_each_index_once_naming_every_referral() -> None:
    store = PlanStore(_Rt())  # type: ignore[arg-type]
    plan, created, _ = apply(plan0(), event([
        rec("r1", "ablation.rfa"), rec("r2", "imaging.mri"), rec("r3", "rehab.physical_therapy")]))
    assert len(created) == 3
    writes = Recorder()
    store._index(writes, plan.episode_id, None, plan)
    ids = {r.referral_id for r in created}
    per_index = [(op, name) for op, name, _ in writes.commands]
    assert len(per_index) == len(set(per_index))  # no index written twice
    by = {(op, name): arg for op, name, arg in writes.commands}
    assert set(by[("hset", store.episode_of)]) == ids
    assert by[("sadd", store.all_index)] == ids
    teams = {r.team.value for r in created}
    assert {name for op, name in per_index if op == "sadd" and name != store.all_index} == \
        {store.team_index(t) for t in teams}
    assert set(by[("hset", store.open_index)]) == ids  # all open
    assert set(by[("zadd", store.deadline_index)]) == ids  # none started yet


def test_a_started_referral_leaves_the_deadline_index_and_others_stay() -> None:
    store = PlanStore(_Rt())  # type: ignore[arg-type]
    plan, _, _ = apply(plan0(), event([rec("r1", "ablation.rfa"), rec("r2", "imaging.mri")]))
    started = work(plan, "r1", Accept(), Start())
    writes = Recorder()
    store._index(writes, started.episode_id, plan, started)
    by = {(op, name): arg for op, name, arg in writes.commands}
    moved = {r.referral_id for r in started.referrals.values()
             if r.started_at is not None}
    assert len(moved) == 1
    assert by[("zrem", store.deadline_index)] == moved
    assert ("zadd", store.deadline_index) not in by  # the untouched referral is not rewritten
