"""Fetching a referral on behalf of a caller: 404 when it does not exist, 403 when the
caller's team may not see it. One rule for the JSON API and the FHIR routes."""

from __future__ import annotations

from carepath_referrals.domain import Actor, Referral, can_view
from carepath_referrals.plan_store import PlanStore


class ReferralAccessError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


async def visible_referral(store: PlanStore, actor: Actor, referral_id: str) -> Referral:
    ref = await store.referral(referral_id)
    if ref is None:
        raise ReferralAccessError(404, "unknown referral")
    decision = can_view(actor, ref)
    if not decision:
        raise ReferralAccessError(403, decision.reason)
    return ref
