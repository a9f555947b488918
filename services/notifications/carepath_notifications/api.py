"""The subscriptions API (bearer tokens; see :mod:`.domain.subscription_access`).

* ``POST /subscriptions``: create. The id is derived from the caller and the definition unless
  given, so posting the same definition twice answers the same subscription (200) instead of a
  second one; a different definition under a taken id is 409. A webhook without ``secret``
  gets a fresh ``whsec_`` secret, returned in this one response only.
* ``GET /subscriptions``: those the caller may see (a team member: their team's).
* ``GET /subscriptions/{id}``, ``DELETE /subscriptions/{id}`` (file subscriptions are fixed:
  409).

Errors name the field and the reason and never echo secrets or addresses.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from carepath_contracts.envelope import derive_id
from carepath_contracts.limits import bound_errors
from carepath_notifications.domain.destination_guard import DestinationRefused
from carepath_notifications.domain.signing import generate_secret
from carepath_notifications.domain.subscription_access import (
    MANAGING_ROLES,
    Refused,
    may_remove,
    may_see,
    scope_for_create,
)
from carepath_notifications.domain.subscriptions import Subscription
from carepath_notifications.subscription_store import AlreadyExists, SubscriptionStore
from carepath_runtime.auth import Authenticator
from carepath_runtime.http import error_list
from carepath_runtime.http_body import read_json_object
from carepath_runtime.http_edge import json_body
from carepath_runtime.http_errors import ProblemError


class SubscriptionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    id: str | None = None
    subscriber: str | None = Field(default=None, min_length=1, max_length=200)
    kind: Literal["team", "coordinator", "system"] | None = None
    team: str | None = None
    event_types: list[str] = Field(min_length=1, max_length=50)
    channel: Literal["webhook", "email"]
    url: str | None = None
    email: str | None = None
    secret: str | None = None
    active: bool = True


def _definition_id(subject: str, req: SubscriptionRequest, kind: str, team: str | None) -> str:
    target = req.url if req.channel == "webhook" else (req.email or "").lower()
    digest = derive_id("subscription", subject, kind, team or "", req.channel, target or "",
                       *sorted(req.event_types))
    return "api-" + digest.replace("-", "")[:20]


def _same_definition(a: Subscription, b: Subscription) -> bool:
    fields = ("kind", "team", "event_types", "channel", "url", "email", "active")
    return all(getattr(a, f) == getattr(b, f) for f in fields)


def register_routes(app: FastAPI, store: SubscriptionStore, tokens: Authenticator) -> None:
    @app.post("/subscriptions", responses={201: {"description": "Created"}},
              openapi_extra=json_body({"type": "object"}))
    async def create(request: Request) -> JSONResponse:
        principal = await tokens.require(request, MANAGING_ROLES)
        data = await read_json_object(request)
        bounds = bound_errors(data)
        if bounds:
            raise ProblemError(422, "invalid subscription", bounds)
        try:
            req = SubscriptionRequest.model_validate(data)
        except ValidationError as exc:
            raise ProblemError(422, "invalid subscription", error_list(exc)) from exc
        try:
            scope = scope_for_create(principal, req.kind, req.team)
        except Refused as exc:
            raise HTTPException(403, exc.reason) from exc
        secret = req.secret
        if req.channel == "webhook" and secret is None:
            secret = generate_secret()
        fields: dict[str, Any] = {
            "id": req.id or _definition_id(principal.subject, req, scope.kind, scope.team),
            "subscriber": req.subscriber or principal.subject,
            "kind": scope.kind,
            "team": scope.team,
            "event_types": req.event_types,
            "channel": req.channel,
            "url": req.url,
            "email": req.email,
            "secret": secret,
            "active": req.active,
        }
        try:
            sub = Subscription.model_validate(fields)
        except ValidationError as exc:
            raise ProblemError(422, "invalid subscription", error_list(exc)) from exc
        try:
            stored = await store.create(sub, principal.subject, datetime.now(UTC))
        except DestinationRefused as exc:  # the SSRF guard; the reason never holds the url
            raise ProblemError(422, "webhook destination refused", [
                {"field": "url", "reason": exc.reason}], slug="destination-refused") from exc
        except AlreadyExists as exc:
            existing = exc.existing
            same = (existing.source == "api" and existing.created_by == principal.subject
                    and _same_definition(existing.subscription, sub)
                    and (req.secret is None or existing.subscription.secret == sub.secret))
            if same:
                return JSONResponse(existing.public(), 200)
            raise HTTPException(409, "a different subscription with this id exists") from exc
        body = stored.public()
        if sub.channel == "webhook" and req.secret is None:
            body["secret"] = secret  # shown once: the subscriber verifies signatures with it
        return JSONResponse(body, 201)

    @app.get("/subscriptions")
    async def list_subscriptions(request: Request) -> JSONResponse:
        principal = await tokens.require(request, MANAGING_ROLES)
        visible = [s.public() for s in await store.all() if may_see(principal, s.subscription)]
        return JSONResponse({"subscriptions": visible})

    @app.get("/subscriptions/{subscription_id}")
    async def get_subscription(subscription_id: str, request: Request) -> JSONResponse:
        principal = await tokens.require(request, MANAGING_ROLES)
        stored = await store.get(subscription_id)
        if stored is None or not may_see(principal, stored.subscription):
            raise HTTPException(404, "no such subscription")
        return JSONResponse(stored.public())

    @app.delete("/subscriptions/{subscription_id}")
    async def delete_subscription(subscription_id: str, request: Request) -> JSONResponse:
        principal = await tokens.require(request, MANAGING_ROLES)
        stored = await store.get(subscription_id)
        if stored is None or not may_see(principal, stored.subscription):
            raise HTTPException(404, "no such subscription")
        if not may_remove(principal, stored.subscription):
            raise HTTPException(403, "you may not remove this subscription")
        if stored.source == "file":
            raise HTTPException(409, "configured by file; change the file instead")
        await store.delete(subscription_id)
        return JSONResponse({"deleted": subscription_id})
