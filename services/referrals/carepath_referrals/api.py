"""The coordinator API: inboxes, referral actions and the care plan (HTTP, JSON).

Every call is authenticated (401 without a valid bearer token); a team member sees and
changes only their team's referrals (403 otherwise); an illegal transition is refused with
409 and the reason; a malformed action gets 422 naming the field. Each change goes through
the episode's care plan (optimistic concurrency in Redis), is audited, and is published.
Completing a referral with an outcome also publishes ``outcome.reported`` for the pathway.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter, ValidationError

from carepath_referrals.access import ReferralAccessError, visible_referral
from carepath_referrals.auth import TokenRegistry
from carepath_referrals.domain import (
    AccessDenied,
    CarePlan,
    Complete,
    IllegalTransition,
    ReferralConflict,
    RoutingTable,
    UnknownReferral,
    VersionConflict,
    apply_action,
    apply_referral_change,
    can_view,
    filter_and_sort,
    parse_action,
)
from carepath_referrals.plan_events import care_plan_view, plan_events
from carepath_referrals.plan_store import PlanStore
from carepath_shared.envelope import Envelope, derive_id
from carepath_shared.events import OUTCOME_REPORTED, OutcomeReported
from carepath_shared.http import error_list
from carepath_shared.kafka_broker import OutboundEvent, build_event
from carepath_shared.outcome import OutcomeReport
from carepath_shared.service import Runtime

OUTCOME_ADAPTER: TypeAdapter[OutcomeReport] = TypeAdapter(OutcomeReport)
ACTIONS = ("claim", "accept", "decline", "schedule", "start", "complete", "cancel", "reroute")


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def register_routes(app: FastAPI, rt: Runtime, store: PlanStore, routing: RoutingTable,
                    tokens: TokenRegistry) -> None:

    @app.get("/inbox")
    async def inbox(
        request: Request,
        status: str | None = None,
        priority: str | None = None,
        due_before: datetime | None = None,
        sort: Literal["due_at", "priority", "status"] = "due_at",
        descending: bool = False,
        team: str | None = None,
    ) -> JSONResponse:
        actor = tokens.actor_for(request)
        if actor.role == "team_member":
            if team not in (None, actor.team.value):
                return _error(403, "a team member sees only their own team's inbox")
            refs = await store.team_referrals(actor.team.value)
        else:
            refs = await (store.team_referrals(team) if team else store.all_referrals())
        try:
            chosen = filter_and_sort(refs, status=status, priority=priority,
                                     due_before=due_before, sort=sort, descending=descending)
        except (ValueError, ValidationError) as exc:
            return _error(422, f"invalid filter: {exc}")
        visible = [r for r in chosen if can_view(actor, r)]
        return JSONResponse({"referrals": [_view(r) for r in visible]})

    @app.get("/referrals/{referral_id}")
    async def get_referral(referral_id: str, request: Request) -> JSONResponse:
        actor = tokens.actor_for(request)
        try:
            ref = await visible_referral(store, actor, referral_id)
        except ReferralAccessError as exc:
            return _error(exc.status, exc.reason)
        return JSONResponse(_view(ref, with_history=True))

    @app.get("/episodes/{episode_id}/careplan")
    async def get_care_plan(episode_id: str, request: Request) -> JSONResponse:
        tokens.actor_for(request)  # every team reads the same plan
        plan = await store.plan(episode_id)
        if plan is None:
            return _error(404, "no care plan for this episode")
        return JSONResponse(care_plan_view(plan))

    @app.get("/episodes/{episode_id}/referrals")
    async def episode_referrals(episode_id: str, request: Request) -> JSONResponse:
        actor = tokens.actor_for(request)
        refs = [r for r in await store.episode_referrals(episode_id) if can_view(actor, r)]
        return JSONResponse({"referrals": [_view(r) for r in refs]})

    async def act(referral_id: str, request: Request, action_name: str | None) -> JSONResponse:
        actor = tokens.actor_for(request)
        raw = await request.body()
        try:
            data = orjson.loads(raw) if raw.strip() else {}
        except orjson.JSONDecodeError as exc:
            return _error(400, f"body is not valid JSON: {exc}")
        if not isinstance(data, dict):
            return _error(422, "invalid action", errors=[{"field": "(body)",
                                                          "reason": "must be a JSON object"}])
        if action_name is not None:
            data = {**data, "kind": action_name}
        elif "action" in data and "kind" not in data:
            data = {**{k: v for k, v in data.items() if k != "action"}, "kind": data["action"]}
        try:
            action = parse_action(data)
        except ValidationError as exc:
            return _error(422, "invalid action", errors=error_list(exc))

        try:
            ref = await visible_referral(store, actor, referral_id)
        except ReferralAccessError as exc:
            return _error(exc.status, exc.reason)

        report: Any = None
        if isinstance(action, Complete) and action.outcome is not None:
            try:
                report = OUTCOME_ADAPTER.validate_python(
                    {"episode_id": ref.episode_id, "step": ref.step, **action.outcome}
                )
            except ValidationError as exc:
                errs = [{"field": f"outcome.{e['field']}", "reason": e["reason"]}
                        for e in error_list(exc)]
                return _error(422, "invalid outcome", errors=errs)

        request_id = request.headers.get("idempotency-key") or str(uuid.uuid4())
        input_id = derive_id("referral-action", referral_id, request_id)
        now = datetime.now(UTC)
        cause = Envelope.new(event_type="carepath.referral.action.v1", source="/carepath/referrals",
                             event_id=input_id)

        def fold(plan: CarePlan | None) -> tuple[CarePlan, list[OutboundEvent]]:
            if plan is None or referral_id not in plan.referrals:
                raise UnknownReferral(f"unknown referral {referral_id}")
            current = plan.referrals[referral_id]
            updated, _audit = apply_action(current, action, actor, now, routing)
            after = apply_referral_change(plan, updated)
            events = plan_events(rt.topics, plan, after, cause)
            if report is not None:
                events.append(_outcome_event(rt, report, referral_id, input_id, cause, now))
            return after, events

        try:
            await store.change_and_publish(ref.episode_id, input_id, fold, rt.broker)
        except AccessDenied as exc:
            return _error(403, str(exc))
        except (IllegalTransition, ReferralConflict, VersionConflict) as exc:
            return _error(409, str(exc))
        except UnknownReferral as exc:
            return _error(404, str(exc))
        updated_ref = await store.referral(referral_id)
        assert updated_ref is not None
        return JSONResponse(_view(updated_ref))

    @app.post("/referrals/{referral_id}/actions")
    async def generic_action(referral_id: str, request: Request) -> JSONResponse:
        return await act(referral_id, request, None)

    for name in ACTIONS:
        def _bind(action_name: str) -> Any:
            async def endpoint(referral_id: str, request: Request) -> JSONResponse:
                return await act(referral_id, request, action_name)
            endpoint.__name__ = f"referral_{action_name}"
            return endpoint
        app.post(f"/referrals/{{referral_id}}/{name}")(_bind(name))

    @app.exception_handler(HTTPException)
    async def _http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": exc.detail}, exc.status_code, headers=exc.headers)


def _outcome_event(rt: Runtime, report: Any, referral_id: str, input_id: str,
                   cause: Envelope, now: datetime) -> OutboundEvent:
    episode_id = report.episode_id
    env = Envelope.new(event_type=OUTCOME_REPORTED, source="/carepath/referrals",
                       event_id=derive_id(OUTCOME_REPORTED, input_id), causation=cause)
    body = OutcomeReported(episode_id=episode_id, report=report, reported_at=now,
                           referral_id=referral_id)
    return build_event(topic=rt.topics.episodes, key=episode_id, envelope=env, body=body)


def _view(ref: Any, with_history: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = ref.model_dump(mode="json")
    history = data.pop("history", [])
    data["revision"] = len(history)
    if with_history:
        data["history"] = history
    return data
