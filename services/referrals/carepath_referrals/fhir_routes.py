"""The care plan and referrals as FHIR R4 resources over HTTP (read-only).

* ``GET /fhir/CarePlan/{episode_id}``: the episode's care plan (any authenticated actor,
  like ``GET /episodes/{id}/careplan``);
* ``GET /fhir/ServiceRequest/{referral_id}`` and ``GET /fhir/Task/{referral_id}``: one
  referral, for the actors who may see it (a team member sees only their team's referrals).

Same bearer tokens and scoping as the coordinator API. Answers are ``application/fhir+json``
with an ``ETag`` of the resource version; errors are FHIR ``OperationOutcome``\\s (401, 403,
404). The mapping itself is pure (:mod:`carepath_shared.fhir.resources_out`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from carepath_referrals.access import ReferralAccessError, visible_referral
from carepath_referrals.auth import TokenRegistry
from carepath_referrals.domain import Referral
from carepath_referrals.plan_events import care_plan_view
from carepath_referrals.plan_store import PlanStore
from carepath_shared.fhir import care_plan_resource, service_request_resource, task_resource
from carepath_shared.service import Runtime

FHIR_JSON = "application/fhir+json"
_ISSUE_CODES = {401: "login", 403: "forbidden", 404: "not-found"}


def operation_outcome(status: int, message: str,
                      headers: Mapping[str, str] | None = None) -> JSONResponse:
    body = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": _ISSUE_CODES.get(status, "processing"),
                   "diagnostics": message}],
    }
    return JSONResponse(body, status_code=status, media_type=FHIR_JSON,
                        headers=dict(headers) if headers else None)


def _resource(resource: dict[str, Any]) -> JSONResponse:
    version = resource.get("meta", {}).get("versionId")
    headers = {"ETag": f'W/"{version}"'} if version else None
    return JSONResponse(resource, media_type=FHIR_JSON, headers=headers)


def referral_view(ref: Referral) -> dict[str, Any]:
    """The referral as the coordinator API shows it: no audit trail, with its revision."""
    data: dict[str, Any] = ref.model_dump(mode="json")
    data["revision"] = len(data.pop("history", []))
    return data


def register_fhir_routes(app: FastAPI, rt: Runtime, store: PlanStore,
                         tokens: TokenRegistry) -> None:
    del rt  # the store holds what these read-only routes need

    @app.get("/fhir/CarePlan/{episode_id}")
    async def fhir_care_plan(episode_id: str, request: Request) -> JSONResponse:
        try:
            tokens.actor_for(request)  # every team reads the same plan
        except HTTPException as exc:
            return operation_outcome(exc.status_code, str(exc.detail), exc.headers)
        plan = await store.plan(episode_id)
        if plan is None:
            return operation_outcome(404, "no care plan for this episode")
        return _resource(care_plan_resource(care_plan_view(plan)))

    async def referral_resource(referral_id: str, request: Request,
                                build: Callable[[dict[str, Any]], dict[str, Any]]) -> JSONResponse:
        try:
            actor = tokens.actor_for(request)
        except HTTPException as exc:
            return operation_outcome(exc.status_code, str(exc.detail), exc.headers)
        try:
            ref = await visible_referral(store, actor, referral_id)
        except ReferralAccessError as exc:
            return operation_outcome(exc.status, exc.reason)
        return _resource(build(referral_view(ref)))

    @app.get("/fhir/ServiceRequest/{referral_id}")
    async def fhir_service_request(referral_id: str, request: Request) -> JSONResponse:
        return await referral_resource(referral_id, request, service_request_resource)

    @app.get("/fhir/Task/{referral_id}")
    async def fhir_task(referral_id: str, request: Request) -> JSONResponse:
        return await referral_resource(referral_id, request, task_resource)
