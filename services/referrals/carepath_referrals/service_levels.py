"""The referrals service's clinical service-level metrics, fed from committed plan changes.

``observe_changes`` runs after a change is durable and published (never inside a fold, which
may run more than once); ``refresh_loop`` recomputes the open/overdue gauges from the open
referrals in Redis, the authoritative state, so every replica reports the same numbers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import UTC, datetime

from carepath_referrals.domain import Referral
from carepath_referrals.domain.codes import BusinessStatus
from carepath_referrals.plan_store import PlanStore
from carepath_referrals.referral_facts import facts_of
from carepath_runtime.log import get_logger
from carepath_runtime.observability.clinical_metrics import (
    OpenTally,
    observe_transition,
    publish_snapshot,
)

log = get_logger(__name__)

def observe_changes(changes: Iterable[tuple[Referral | None, Referral]],
                    now: datetime | None = None) -> None:
    now = now or datetime.now(UTC)
    for before, after in changes:
        escalated = (after.business_status == BusinessStatus.OVERDUE_ESCALATED
                     and (before is None
                          or before.business_status != BusinessStatus.OVERDUE_ESCALATED))
        observe_transition(None if before is None else facts_of(before), facts_of(after), now,
                           escalated=escalated)


async def refresh_once(store: PlanStore) -> None:
    """Recount the open referrals from the store's index of their facts, in chunks: memory
    and event-loop pauses stay bounded however many referrals are open."""
    tally = OpenTally(datetime.now(UTC))
    async for facts in store.open_referral_facts():
        tally.add(facts)
    publish_snapshot(tally.snapshot())


async def refresh_loop(store: PlanStore, interval_s: float) -> None:
    while True:
        try:
            await refresh_once(store)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # Redis away: keep the last values
            log.debug("service_levels_refresh_failed", error=type(exc).__name__)
        await asyncio.sleep(interval_s)
