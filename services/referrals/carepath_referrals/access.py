"""Reading referrals and plans on behalf of a caller: one rule for the JSON API and FHIR.

What a caller may not see answers exactly as what does not exist (:class:`NotVisible`: 404
with the same body), so ids cannot be probed (see :mod:`.domain.visibility`).
"""

from __future__ import annotations

from typing import Any

from carepath_referrals.domain import Actor, Referral, can_view
from carepath_referrals.domain.visibility import may_read_episode, redact_plan_view
from carepath_referrals.plan_events import care_plan_view
from carepath_referrals.plan_store import PlanStore
from carepath_runtime.http_errors import ProblemError

NO_REFERRAL = "no such referral"
NO_EPISODE = "no such episode"


class NotVisible(ProblemError):
    """Unknown, or not the caller's to see: 404 either way."""

    def __init__(self, detail: str) -> None:
        super().__init__(404, detail)


async def visible_referral(store: PlanStore, actor: Actor, referral_id: str) -> Referral:
    ref = await store.referral(referral_id)
    if ref is None or not can_view(actor, ref):
        raise NotVisible(NO_REFERRAL)
    return ref


async def visible_plan_view(store: PlanStore, actor: Actor, episode_id: str) -> dict[str, Any]:
    """The care plan as ``actor`` may read it (redacted for a team member)."""
    plan = await store.plan(episode_id)
    if plan is None or not may_read_episode(actor, plan.referrals.values()):
        raise NotVisible(NO_EPISODE)
    return redact_plan_view(care_plan_view(plan), actor)


async def visible_episode_referrals(store: PlanStore, actor: Actor, episode_id: str
                                    ) -> list[Referral]:
    refs = await store.episode_referrals(episode_id)
    if not refs or not may_read_episode(actor, refs):
        raise NotVisible(NO_EPISODE)
    return refs
