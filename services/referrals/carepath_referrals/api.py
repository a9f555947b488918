"""The coordinator API: inboxes, referral actions and the care plan (HTTP, JSON).

Every call is authenticated (401 without a valid bearer token). A team member sees and
changes only their team's referrals; one they may not see answers 404 exactly like an unknown
one. They read an episode's plan and referral list only while their team holds or held a
referral on it, with other teams' details redacted (:mod:`.domain.visibility`). An action
their role may not take on a referral they see is 403; an illegal transition is 409 with the
reason; a malformed action is 422 naming the field; an action whose events would exceed their
topic's size is 413 and changes nothing. Each change goes through the episode's care plan
(optimistic concurrency in Redis), is audited, and is published. Completing a referral with
an outcome also publishes ``outcome.reported`` for the pathway. Errors are RFC 9457 problems.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from carepath_contracts.iso_time import IsoAwareDatetime
from carepath_contracts.limits import bound_errors
from carepath_referrals.access import (
    NO_REFERRAL,
    visible_episode_referrals,
    visible_plan_view,
    visible_referral,
)
from carepath_referrals.auth import ReferralCallers
from carepath_referrals.domain import (
    AccessDenied,
    Action,
    IllegalTransition,
    Referral,
    ReferralConflict,
    UnknownReferral,
    VersionConflict,
    can_view,
    filter_and_sort,
    parse_action,
    referral_view,
)
from carepath_referrals.domain.visibility import holds_or_held, redact_referral_view
from carepath_referrals.service import InvalidOutcome, ReferralService
from carepath_runtime.http import error_list
from carepath_runtime.http_body import JSON, media_type, parse_json, require_media
from carepath_runtime.http_edge import json_body
from carepath_runtime.http_errors import ProblemError
from carepath_runtime.http_params import episode_id_path, referral_id_path
from carepath_runtime.kafka_broker import EventTooLarge

ACTIONS = ("claim", "accept", "decline", "schedule", "start", "complete", "cancel", "reroute")




def register_routes(app: FastAPI, service: ReferralService, tokens: ReferralCallers) -> None:
    store = service.store

    @app.get("/inbox")
    async def inbox(
        request: Request,
        status: str | None = Query(default=None, max_length=64),
        priority: str | None = Query(default=None, max_length=64),
        due_before: IsoAwareDatetime | None = None,
        sort: Literal["due_at", "priority", "status"] = "due_at",
        descending: bool = False,
        team: str | None = Query(default=None, max_length=64),
    ) -> JSONResponse:
        actor = await tokens.actor_for(request)
        if actor.role == "team_member":
            if team not in (None, actor.team.value):
                raise ProblemError(403, "a team member sees only their own team's inbox")
            refs = await store.team_referrals(actor.team.value)
        else:
            refs = await (store.team_referrals(team) if team else store.all_referrals())
        try:
            chosen = filter_and_sort(refs, status=status, priority=priority,
                                     due_before=due_before, sort=sort, descending=descending)
        except ValidationError as exc:
            raise ProblemError(422, "invalid filter", error_list(exc)) from exc
        except ValueError as exc:
            raise ProblemError(422, "invalid filter", [
                {"field": "status" if status else "priority",
                 "reason": "not a known value"}]) from exc
        visible = [r for r in chosen if can_view(actor, r)]
        return JSONResponse({"referrals": [_view(r) for r in visible]})

    @app.get("/referrals/{referral_id}")
    async def get_referral(request: Request, referral_id: str = referral_id_path()
                           ) -> JSONResponse:
        actor = await tokens.actor_for(request)
        ref = await visible_referral(store, actor, referral_id)
        return JSONResponse(_view(ref, with_history=True))

    @app.get("/episodes/{episode_id}/careplan")
    async def get_care_plan(request: Request, episode_id: str = episode_id_path()
                            ) -> JSONResponse:
        actor = await tokens.actor_for(request)
        return JSONResponse(await visible_plan_view(store, actor, episode_id))

    @app.get("/episodes/{episode_id}/referrals")
    async def episode_referrals(request: Request, episode_id: str = episode_id_path()
                                ) -> JSONResponse:
        actor = await tokens.actor_for(request)
        refs = await visible_episode_referrals(store, actor, episode_id)
        full = actor.role != "team_member"
        views = [_view(r) if full or holds_or_held(actor.team.value, r)
                 else redact_referral_view(_view(r)) for r in refs]
        return JSONResponse({"referrals": views})

    async def act(referral_id: str, request: Request, action_name: str | None) -> JSONResponse:
        actor = await tokens.actor_for(request)
        action = _parse_action(request, await request.body(), action_name)
        try:
            changed = await service.act(actor, referral_id, action,
                                        request.headers.get("idempotency-key"))
        except tuple(ERROR_STATUS) as exc:
            raise _problem(exc) from exc
        return JSONResponse(_view(changed))

    action_body = json_body({"type": "object"}, required=False)

    @app.post("/referrals/{referral_id}/actions", openapi_extra=action_body)
    async def generic_action(request: Request, referral_id: str = referral_id_path()
                             ) -> JSONResponse:
        return await act(referral_id, request, None)

    for name in ACTIONS:
        def _bind(action_name: str) -> Any:
            async def endpoint(request: Request, referral_id: str = referral_id_path()
                               ) -> JSONResponse:
                return await act(referral_id, request, action_name)
            endpoint.__name__ = f"referral_{action_name}"
            return endpoint
        app.post(f"/referrals/{{referral_id}}/{name}", openapi_extra=action_body)(_bind(name))


def _parse_action(request: Request, raw: bytes, action_name: str | None) -> Action:
    """The action a request asks for: the body's ``kind`` (or ``action``), or the route's."""
    data: Any = {}
    if raw.strip() or media_type(request) is not None:
        require_media(request, (JSON,))
        data = parse_json(raw)
    if not isinstance(data, dict):
        raise ProblemError(422, "invalid action", [{"field": "(body)",
                                                    "reason": "must be a JSON object"}])
    bounds = bound_errors(data)
    if bounds:
        raise ProblemError(422, "the action breaks the contract's bounds", bounds)
    if action_name is not None:
        data = {**data, "kind": action_name}
    elif "action" in data and "kind" not in data:
        data = {**{k: v for k, v in data.items() if k != "action"}, "kind": data["action"]}
    try:
        return parse_action(data)
    except ValidationError as exc:
        raise ProblemError(422, "invalid action", error_list(exc)) from exc


# The one table from the application service's refusals to HTTP: (status, detail, slug);
# a detail of None uses the refusal's own reason.
ERROR_STATUS: dict[type[Exception], tuple[int, str | None, str | None]] = {
    AccessDenied: (403, None, None),
    IllegalTransition: (409, None, None),
    ReferralConflict: (409, None, None),
    VersionConflict: (409, None, None),
    UnknownReferral: (404, NO_REFERRAL, None),
    InvalidOutcome: (422, "invalid outcome", None),
    EventTooLarge: (413, "the change would publish an event larger than its topic takes; "
                         "nothing was changed", "event-too-large"),
}


def _problem(exc: Exception) -> ProblemError:
    status, detail, slug = next(v for k, v in ERROR_STATUS.items() if isinstance(exc, k))
    reason = detail if detail is not None else getattr(exc, "reason", str(exc))
    errors = exc.errors if isinstance(exc, InvalidOutcome) else None
    return ProblemError(status, reason, errors, slug=slug)


def _view(ref: Referral, with_history: bool = False) -> dict[str, Any]:
    """The referral's view (the contract's :class:`ReferralView`) as JSON, with its audit
    trail if asked."""
    data: dict[str, Any] = referral_view(ref).model_dump(mode="json")
    if with_history:
        data["history"] = [entry.model_dump(mode="json") for entry in ref.history]
    return data
