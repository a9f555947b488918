"""The code systems the referral domain speaks: step codes, teams, priorities, statuses, actions.

Step codes and teams are the episode contract's (``shared/clinical/episode-contract.md``);
Task statuses are FHIR R4 ``http://hl7.org/fhir/task-status`` (only the codes Carepath uses);
finer, Carepath-specific states live in :class:`BusinessStatus`, never in Task.status.
"""

from __future__ import annotations

from enum import StrEnum


class Team(StrEnum):
    """Teams a referral can be routed to. Coordination steps go to the care coordinator."""

    RADIOLOGY = "radiology"
    INTERVENTIONAL_PAIN = "interventional_pain"
    PHYSICAL_THERAPY = "physical_therapy"
    PSYCHOLOGY = "psychology"
    SURGERY = "surgery"
    NEUROMODULATION = "neuromodulation"
    CARE_COORDINATOR = "care_coordinator"


class Priority(StrEnum):
    """FHIR Task.priority, restricted to the two codes the pathway emits."""

    ROUTINE = "routine"
    URGENT = "urgent"

    @property
    def rank(self) -> int:
        """Higher is more urgent."""
        return _PRIORITY_RANK[self]


_PRIORITY_RANK = {Priority.ROUTINE: 0, Priority.URGENT: 1}


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


#: Statuses after which nothing can happen to a referral. ``rejected`` is not among them: a
#: declined referral waits in the care coordinator's queue to be rerouted or cancelled.
TERMINAL_STATUSES = frozenset({TaskStatus.COMPLETED, TaskStatus.CANCELLED})


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


class ActionKind(StrEnum):
    """What can be done to a referral. ``escalate`` is the system's (deadline checker) only."""

    CLAIM = "claim"
    ACCEPT = "accept"
    DECLINE = "decline"
    SCHEDULE = "schedule"
    START = "start"
    COMPLETE = "complete"
    CANCEL = "cancel"
    REROUTE = "reroute"
    ESCALATE = "escalate"


#: The 21 step codes of the episode contract, with the team each is routed to by default.
CONTRACT_STEPS: dict[str, Team] = {
    "imaging.mri": Team.RADIOLOGY,
    "imaging.ct": Team.RADIOLOGY,
    "imaging.spect": Team.RADIOLOGY,
    "diagnostic.medial_branch_block": Team.INTERVENTIONAL_PAIN,
    "diagnostic.repeat_facet_injection": Team.INTERVENTIONAL_PAIN,
    "injection.si_joint": Team.INTERVENTIONAL_PAIN,
    "injection.epidural_steroid": Team.INTERVENTIONAL_PAIN,
    "injection.trigger_point": Team.INTERVENTIONAL_PAIN,
    "ablation.rfa": Team.INTERVENTIONAL_PAIN,
    "ablation.repeat_rfa": Team.INTERVENTIONAL_PAIN,
    "neuromodulation.scs_evaluation": Team.NEUROMODULATION,
    "neuromodulation.scs_trial": Team.NEUROMODULATION,
    "neuromodulation.scs_implant": Team.NEUROMODULATION,
    "surgery.consultation": Team.SURGERY,
    "surgery.urgent_referral": Team.SURGERY,
    "rehab.physical_therapy": Team.PHYSICAL_THERAPY,
    "rehab.pain_education": Team.PHYSICAL_THERAPY,
    "psychology.assessment": Team.PSYCHOLOGY,
    "psychology.cbt": Team.PSYCHOLOGY,
    "coordination.second_opinion": Team.CARE_COORDINATOR,
    "coordination.pain_diary": Team.CARE_COORDINATOR,
}

STEP_CODES: frozenset[str] = frozenset(CONTRACT_STEPS)
