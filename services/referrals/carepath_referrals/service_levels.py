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
from carepath_referrals.domain.codes import BusinessStatus, TaskStatus
from carepath_referrals.plan_store import PlanStore
from carepath_runtime.log import get_logger
from carepath_runtime.observability.clinical_metrics import (
    ReferralFacts,
    observe_transition,
    publish_snapshot,
    snapshot,
)

log = get_logger(__name__)

_ACCEPTED = frozenset({TaskStatus.ACCEPTED, TaskStatus.IN_PROGRESS, TaskStatus.COMPLETED})


def facts_of(referral: Referral) -> ReferralFacts:
    return ReferralFacts(
        team=referral.team.value,
        step=referral.step,
        status=referral.business_status.value,
        priority=referral.priority.value,
        created_at=referral.created_at,
        due_at=referral.due_at,
        accepted=referral.status in _ACCEPTED,
        started=referral.started_at is not None,
        open=referral.is_open,
    )


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
    publish_snapshot(snapshot((facts_of(r) for r in await store.open_referrals()),
                              datetime.now(UTC)))


async def refresh_loop(store: PlanStore, interval_s: float) -> None:
    while True:
        try:
            await refresh_once(store)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # Redis away: keep the last values
            log.debug("service_levels_refresh_failed", error=type(exc).__name__)
        await asyncio.sleep(interval_s)
