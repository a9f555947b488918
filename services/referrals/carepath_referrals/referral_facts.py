"""What the service-level metrics need of a referral, and nothing else (no id, no patient)."""

from __future__ import annotations

from carepath_contracts.referral_status import TaskStatus
from carepath_referrals.domain import Referral
from carepath_runtime.observability.clinical_metrics import ReferralFacts

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
