"""The code systems the referral domain speaks: step codes, teams, priorities, statuses, actions.

Step codes and teams are the episode contract's (``shared/clinical/episode-contract.md``);
Task statuses are FHIR R4 ``http://hl7.org/fhir/task-status`` (only the codes Carepath uses);
finer, Carepath-specific states live in :class:`BusinessStatus`, never in Task.status.

The vocabularies the events and views carry (:class:`Team`, :class:`Priority`,
:class:`TaskStatus`, :class:`BusinessStatus`, the step codes and the team of each) are the
public contract's (:mod:`carepath_contracts`), re-exported here; only :class:`ActionKind` and
:data:`TERMINAL_STATUSES` are the domain's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from carepath_contracts.pathway_result import Priority
from carepath_contracts.referral_status import BusinessStatus, TaskStatus
from carepath_contracts.steps import STEP_TEAM, Step, Team

__all__ = [
    "CONTRACT_STEPS",
    "STEP_CODES",
    "TERMINAL_STATUSES",
    "ActionKind",
    "BusinessStatus",
    "Priority",
    "TaskStatus",
    "Team",
]

#: Statuses after which nothing can happen to a referral. ``rejected`` is not among them: a
#: declined referral waits in the care coordinator's queue to be rerouted or cancelled.
TERMINAL_STATUSES = frozenset({TaskStatus.COMPLETED, TaskStatus.CANCELLED})


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


#: The 21 step codes of the episode contract, with the team each is routed to by default: the
#: contract's own table, :data:`carepath_contracts.steps.STEP_TEAM`.
CONTRACT_STEPS: Mapping[Step, Team] = STEP_TEAM

STEP_CODES: frozenset[str] = frozenset(CONTRACT_STEPS)
