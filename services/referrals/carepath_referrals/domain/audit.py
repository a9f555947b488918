"""Audit entries: who did what to a referral, when and why (published as ``audit.recorded``).

The entry itself is the public contract's :class:`carepath_contracts.audit.AuditEntry`; this
module derives its ids.
"""

from __future__ import annotations

from uuid import NAMESPACE_URL, uuid5

from carepath_contracts.audit import AuditEntry

__all__ = ["CAREPATH_REFERRALS_NAMESPACE", "CREATE", "AuditEntry", "audit_id_for"]

#: uuid5 namespace of every id the referral domain derives (referrals, audits, escalations).
CAREPATH_REFERRALS_NAMESPACE = uuid5(NAMESPACE_URL, "https://carepath.invalid/referrals")

CREATE = "create"


def audit_id_for(referral_id: str, revision: int) -> str:
    return str(uuid5(CAREPATH_REFERRALS_NAMESPACE, f"audit:{referral_id}:{revision}"))
