"""The care plan and referrals as FHIR R4 resources over HTTP (read-only).

* ``GET /fhir/CarePlan/{episode_id}``: the episode's care plan, under the same rule as
  ``GET /episodes/{id}/careplan`` (a team member: only while their team holds or held a
  referral on it, with other teams' details redacted);
* ``GET /fhir/ServiceRequest/{referral_id}`` and ``GET /fhir/Task/{referral_id}``: one
  referral, for the actors who may see it (a team member sees only their team's referrals).

Same bearer tokens and scoping as the coordinator API: what the caller may not see is 404,
exactly as what does not exist. Answers are ``application/fhir+json`` with an ``ETag`` of the
resource version; errors are RFC 9457 problems like every Carepath API. The mapping itself is
pure (:mod:`carepath_referrals.fhir.resources_out`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from carepath_contracts.views import ReferralView
from carepath_referrals.access import visible_plan_view, visible_referral
from carepath_referrals.auth import ReferralCallers
from carepath_referrals.domain import Referral
from carepath_referrals.domain import referral_view as view_of
from carepath_referrals.fhir import care_plan_resource, service_request_resource, task_resource
from carepath_referrals.plan_store import PlanStore
from carepath_runtime.http_params import episode_id_path, referral_id_path
from carepath_runtime.service import Runtime

FHIR_JSON = "application/fhir+json"
_FHIR_OK: dict[int | str, dict[str, Any]] = {
    200: {"description": "The resource", "content": {FHIR_JSON: {"schema": {"type": "object"}}}}
}


def _resource(resource: dict[str, Any]) -> JSONResponse:
    version = resource.get("meta", {}).get("versionId")
    headers = {"ETag": f'W/"{version}"'} if version else None
    return JSONResponse(resource, media_type=FHIR_JSON, headers=headers)


def referral_view(ref: Referral) -> dict[str, Any]:
    """The referral as the coordinator API shows it (no audit trail, with its revision), as
    JSON data."""
    data: dict[str, Any] = view_of(ref).model_dump(mode="json")
    return data


def register_fhir_routes(app: FastAPI, rt: Runtime, store: PlanStore,
                         tokens: ReferralCallers) -> None:
    del rt  # the store holds what these read-only routes need

    @app.get("/fhir/CarePlan/{episode_id}", response_class=JSONResponse, responses=_FHIR_OK)
    async def fhir_care_plan(request: Request, episode_id: str = episode_id_path()
                             ) -> JSONResponse:
        actor = await tokens.actor_for(request)
        return _resource(care_plan_resource(await visible_plan_view(store, actor, episode_id)))

    async def referral_resource(referral_id: str, request: Request,
                                build: Callable[[ReferralView], dict[str, Any]]) -> JSONResponse:
        actor = await tokens.actor_for(request)
        ref = await visible_referral(store, actor, referral_id)
        return _resource(build(view_of(ref)))

    @app.get("/fhir/ServiceRequest/{referral_id}", response_class=JSONResponse,
             responses=_FHIR_OK)
    async def fhir_service_request(request: Request, referral_id: str = referral_id_path()
                                   ) -> JSONResponse:
        return await referral_resource(referral_id, request, service_request_resource)

    @app.get("/fhir/Task/{referral_id}", response_class=JSONResponse, responses=_FHIR_OK)
    async def fhir_task(request: Request, referral_id: str = referral_id_path()
                        ) -> JSONResponse:
        return await referral_resource(referral_id, request, task_resource)
