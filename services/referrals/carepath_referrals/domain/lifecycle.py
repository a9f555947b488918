"""The referral state machine: FHIR Task statuses, business statuses, actions and transitions.

Transition table (status x action -> new status; ``-`` is illegal)::

    status \\ action  claim  accept  decline  schedule  start  complete  cancel  reroute  escalate
    requested        RCV    ACC     REJ      -         -      -         CNX     REQ      =
    received         -      ACC     REJ      -         -      -         CNX     REQ      =
    accepted         -      -       REJ      INP       INP    CMP       CNX     -        =
    in-progress      -      -       -        INP*      INP*   CMP       CNX     -        =*
    rejected         -      -       -        -         -      -         CNX     REQ      =
    completed        -      -       -        -         -      -         -       -        -
    cancelled        -      -       -        -         -      -         -       -        -

    RCV received, ACC accepted, REJ rejected, INP in-progress, CMP completed, CNX cancelled,
    REQ requested, = status unchanged.
    * only while not yet started: schedule then re-schedules, start starts.
    escalate also needs the referral overdue (due_at < now) and not yet escalated.

Business statuses set: claim -> claimed, accept -> accepted, decline ->
declined-awaiting-reroute, schedule -> scheduled, start -> started, complete -> completed,
cancel -> cancelled (superseded when the recommendation was withdrawn), reroute -> rerouted,
escalate -> overdue-escalated.

Decline: a reason is required; the referral becomes ``rejected`` and moves to the care
coordinator (team ``care_coordinator``, the routing table's reroute queue), where a coordinator
reroutes it (back to ``requested`` for the new team, with a fresh due time) or cancels it. The
referral keeps its id throughout, so a recommendation still has exactly one referral. ``rejected``
is therefore not terminal here: it means "declined by the team, waiting for the coordinator".

Who may act is :mod:`actors`' business; :func:`apply_action` checks it first (AccessDenied, 403)
and then the transition (IllegalTransition, 409).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter

from carepath_contracts.iso_time import IsoAwareDatetime
from carepath_referrals.domain.actors import Actor, DomainError, require_act
from carepath_referrals.domain.audit import AuditEntry, audit_id_for
from carepath_referrals.domain.codes import (
    TERMINAL_STATUSES,
    ActionKind,
    BusinessStatus,
    TaskStatus,
    Team,
)
from carepath_referrals.domain.referral import Referral, RoutingChange
from carepath_referrals.domain.routing import (
    DEFAULT_ROUTING,
    QueueName,
    RoutingTable,
    require_aware,
)

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Note = Annotated[str, StringConstraints(max_length=2000)]


class IllegalTransition(DomainError):
    """The referral's status does not allow the action (HTTP 409)."""

    def __init__(
        self, reason: str, status: TaskStatus | None = None, action: ActionKind | None = None
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.action = action


# -- actions ---------------------------------------------------------------------------------


class _Action(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str  # each action narrows it to its own Literal (the union's discriminator)
    note: Note | None = None

    @property
    def action_kind(self) -> ActionKind:
        return ActionKind(self.kind)


class Claim(_Action):
    kind: Literal["claim"] = "claim"


class Accept(_Action):
    kind: Literal["accept"] = "accept"


class Decline(_Action):
    kind: Literal["decline"] = "decline"
    reason: Reason


class Schedule(_Action):
    kind: Literal["schedule"] = "schedule"
    when: IsoAwareDatetime


class Start(_Action):
    kind: Literal["start"] = "start"


class Complete(_Action):
    kind: Literal["complete"] = "complete"
    outcome: dict[str, Any] | None = None


class Cancel(_Action):
    kind: Literal["cancel"] = "cancel"
    reason: Reason
    superseded: bool = False  # cancelled because its recommendation was withdrawn


class Reroute(_Action):
    kind: Literal["reroute"] = "reroute"
    to_team: Team
    queue: QueueName | None = None  # default: the routing table's queue of to_team
    reason: Note | None = None


class Escalate(_Action):
    kind: Literal["escalate"] = "escalate"


Action = Annotated[
    Claim | Accept | Decline | Schedule | Start | Complete | Cancel | Reroute | Escalate,
    Field(discriminator="kind"),
]
_ACTION_ADAPTER: TypeAdapter[Action] = TypeAdapter(Action)


def parse_action(data: Mapping[str, Any]) -> Action:
    """Validate an action from JSON-like data (``{"kind": "decline", "reason": "..."}``)."""
    return _ACTION_ADAPTER.validate_python(data)


# -- the transition table --------------------------------------------------------------------


@dataclass(frozen=True)
class Transition:
    to_status: TaskStatus
    to_business_status: BusinessStatus


S, A, B = TaskStatus, ActionKind, BusinessStatus
_OPEN = (S.REQUESTED, S.RECEIVED, S.ACCEPTED, S.IN_PROGRESS, S.REJECTED)

TRANSITIONS: Mapping[tuple[TaskStatus, ActionKind], Transition] = {
    (S.REQUESTED, A.CLAIM): Transition(S.RECEIVED, B.CLAIMED),
    (S.REQUESTED, A.ACCEPT): Transition(S.ACCEPTED, B.ACCEPTED),
    (S.RECEIVED, A.ACCEPT): Transition(S.ACCEPTED, B.ACCEPTED),
    **{
        (s, A.DECLINE): Transition(S.REJECTED, B.DECLINED_AWAITING_REROUTE)
        for s in (S.REQUESTED, S.RECEIVED, S.ACCEPTED)
    },
    (S.ACCEPTED, A.SCHEDULE): Transition(S.IN_PROGRESS, B.SCHEDULED),
    (S.IN_PROGRESS, A.SCHEDULE): Transition(S.IN_PROGRESS, B.SCHEDULED),
    (S.ACCEPTED, A.START): Transition(S.IN_PROGRESS, B.STARTED),
    (S.IN_PROGRESS, A.START): Transition(S.IN_PROGRESS, B.STARTED),
    (S.ACCEPTED, A.COMPLETE): Transition(S.COMPLETED, B.COMPLETED),
    (S.IN_PROGRESS, A.COMPLETE): Transition(S.COMPLETED, B.COMPLETED),
    **{(s, A.CANCEL): Transition(S.CANCELLED, B.CANCELLED) for s in _OPEN},
    **{
        (s, A.REROUTE): Transition(S.REQUESTED, B.REROUTED)
        for s in (S.REQUESTED, S.RECEIVED, S.REJECTED)
    },
    **{(s, A.ESCALATE): Transition(s, B.OVERDUE_ESCALATED) for s in _OPEN},
}
del S, A, B


def allowed_actions(referral: Referral, now: datetime) -> list[ActionKind]:
    """The actions the referral's state allows now (regardless of who asks)."""
    return [a for a in ActionKind if _refusal(referral, a, now) is None]


def _illegal_reason(referral: Referral, action: ActionKind) -> str:
    status = referral.status
    verb = action.value
    if status in TERMINAL_STATUSES:
        return f"the referral is {status.value}; nothing more can be done to it"
    if status is TaskStatus.REJECTED:
        return (
            f"the referral was declined ({referral.decline_reason}) and awaits the care "
            f"coordinator; it can only be rerouted or cancelled (asked to {verb} it)"
        )
    if action is ActionKind.CLAIM:
        by = f" by {referral.claimed_by}" if referral.claimed_by else ""
        return f"the referral is already {status.value}{by}; it can be claimed only when requested"
    if action is ActionKind.ACCEPT:
        return f"the referral is already {status.value}"
    if action in (ActionKind.SCHEDULE, ActionKind.START, ActionKind.COMPLETE):
        return f"the referral is {status.value}; accept it before you {verb} it"
    if action is ActionKind.DECLINE:
        return (
            "the referral is in progress; it can no longer be declined, "
            "cancel it or complete it with an outcome"
        )
    if action is ActionKind.REROUTE:
        return (
            f"team {referral.team.value} has {status.value} the referral; "
            "it must decline it before it can be rerouted"
        )
    return f"cannot {verb} a referral that is {status.value}"  # pragma: no cover - table is total


def _refusal(
    referral: Referral, action: ActionKind, now: datetime, request: _Action | None = None
) -> str | None:
    """Why the referral's state refuses ``action`` now, or ``None`` if it allows it."""
    if (referral.status, action) not in TRANSITIONS:
        return _illegal_reason(referral, action)
    started = referral.started_at
    if action in (ActionKind.SCHEDULE, ActionKind.START) and started is not None:
        return f"the referral was already started at {started.isoformat()}"
    if action is ActionKind.ESCALATE:
        if referral.escalated_at is not None:
            return f"the referral was already escalated at {referral.escalated_at.isoformat()}"
        if started is not None:
            return "the referral has started; a started referral is not overdue"
        if not referral.due_at < now:
            return f"the referral is not overdue: it is due at {referral.due_at.isoformat()}"
    if isinstance(request, Decline | Cancel) and not request.reason.strip():
        return f"a {action.value} needs a reason"
    if (
        isinstance(request, Reroute)
        and request.to_team is referral.team
        and referral.status is not TaskStatus.REJECTED
    ):
        return f"the referral is already assigned to {referral.team.value}"
    return None


# -- applying an action ----------------------------------------------------------------------


def apply_action(
    referral: Referral,
    action: Action,
    actor: Actor,
    now: datetime,
    routing: RoutingTable = DEFAULT_ROUTING,
) -> tuple[Referral, AuditEntry]:
    """Apply ``action`` by ``actor`` at ``now``: the new referral and the change's audit entry.

    Raises :class:`~carepath_referrals.domain.actors.AccessDenied` if the actor may not take the
    action on this referral, and :class:`IllegalTransition` if its state does not allow it.
    ``routing`` supplies the queues and due times of declines and reroutes.
    """
    require_aware(now)
    kind = action.action_kind
    require_act(actor, referral, kind)
    refusal = _refusal(referral, kind, now, action)
    if refusal is not None:
        raise IllegalTransition(refusal, referral.status, kind)
    transition = TRANSITIONS[(referral.status, kind)]

    update: dict[str, Any] = {
        "status": transition.to_status,
        "business_status": (
            BusinessStatus.SUPERSEDED
            if isinstance(action, Cancel) and action.superseded
            else transition.to_business_status
        ),
        "updated_at": now,
    }
    reason: str | None = action.note
    details: dict[str, Any] = {}
    match action:
        case Claim():
            update["claimed_by"] = actor.subject
        case Accept():
            update["claimed_by"] = referral.claimed_by or actor.subject
        case Decline():
            reason = action.reason
            change = RoutingChange(
                at=now,
                action=kind.value,
                from_team=referral.team,
                to_team=Team.CARE_COORDINATOR,
                queue=routing.reroute_queue,
                by=actor.subject,
                reason=action.reason,
            )
            update |= {
                "decline_reason": action.reason,
                "claimed_by": None,
                "scheduled_for": None,
                "team": change.to_team,
                "queue": change.queue,
                "routing_history": (*referral.routing_history, change),
            }
            details = {"from_team": change.from_team.value, "to_queue": change.queue}
        case Schedule():
            update["scheduled_for"] = action.when
            details = {"scheduled_for": action.when.isoformat()}
        case Start():
            update["started_at"] = now
        case Complete():
            update |= {"completed_at": now, "outcome": action.outcome}
            details = {"outcome_fields": sorted(action.outcome or {})}
        case Cancel():
            reason = action.reason
            update["cancel_reason"] = action.reason
        case Reroute():
            reason = action.reason or action.note
            change = RoutingChange(
                at=now,
                action=kind.value,
                from_team=referral.team,
                to_team=action.to_team,
                queue=action.queue or routing.team_queue(action.to_team),
                by=actor.subject,
                reason=reason,
            )
            due_at = routing.due_at(referral.priority, now)
            update |= {
                "team": change.to_team,
                "queue": change.queue,
                "claimed_by": None,
                "scheduled_for": None,
                "due_at": due_at,
                "escalated_at": None,
                "routing_history": (*referral.routing_history, change),
            }
            details = {
                "from_team": change.from_team.value,
                "to_team": change.to_team.value,
                "queue": change.queue,
                "due_at": due_at.isoformat(),
            }
        case Escalate():
            update["escalated_at"] = now
            reason = reason or f"overdue: was due at {referral.due_at.isoformat()}"
            details = {"due_at": referral.due_at.isoformat()}

    revision = referral.revision + 1
    entry = AuditEntry(
        audit_id=audit_id_for(referral.referral_id, revision),
        referral_id=referral.referral_id,
        episode_id=referral.episode_id,
        revision=revision,
        action=kind.value,
        actor_subject=actor.subject,
        actor_team=actor.team.value,
        actor_role=actor.role,
        at=now,
        reason=reason,
        from_status=referral.status,
        to_status=update["status"],
        from_business_status=referral.business_status,
        to_business_status=update["business_status"],
        details=details,
    )
    update["history"] = (*referral.history, entry)
    return referral.model_copy(update=update), entry
