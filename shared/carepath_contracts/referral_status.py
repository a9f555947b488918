"""The referral's status code systems: FHIR Task.status and Carepath's finer business status.

These, :class:`carepath_contracts.steps.Team` and :class:`carepath_contracts.pathway_result.
Priority` are the closed vocabularies of the referral events and views, defined here once; the
referrals domain uses these very classes.

Why ``StrEnum`` and not ``Literal``: the referrals domain names the codes (``TaskStatus.
COMPLETED``), iterates them, keys tables by them and compares them by identity, and its models
extend the contract's (``Referral`` extends :class:`carepath_contracts.views.ReferralFields`),
so both must share one type that has members. A ``StrEnum`` member *is* its ``str`` value:
pydantic writes the plain string (``"in-progress"``), JSON Schema shows the same ``enum``, and
readers in other languages see exactly what they saw before. Step codes stay a ``Literal``
(:data:`carepath_contracts.steps.Step`): nothing names them as members, and the pathway's rules
use typed constants.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["BusinessStatus", "TaskStatus"]


class TaskStatus(StrEnum):
    """FHIR R4 Task.status codes used by Carepath referrals.

    ``draft``, ``ready``, ``on-hold``, ``failed`` and ``entered-in-error`` are deliberately left
    out: no action leads to them, so a referral can never hold them.
    """

    REQUESTED = "requested"
    RECEIVED = "received"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    IN_PROGRESS = "in-progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class BusinessStatus(StrEnum):
    """Task.businessStatus: Carepath's finer states within a Task.status."""

    AWAITING_TRIAGE = "awaiting-triage"
    CLAIMED = "claimed"
    ACCEPTED = "accepted"
    SCHEDULED = "scheduled"
    STARTED = "started"
    COMPLETED = "completed"
    DECLINED_AWAITING_REROUTE = "declined-awaiting-reroute"
    REROUTED = "rerouted"
    CANCELLED = "cancelled"
    SUPERSEDED = "superseded"
    OVERDUE_ESCALATED = "overdue-escalated"
