"""Intake's FHIR door: ``POST /fhir/Bundle`` maps a FHIR R4 Bundle to an episode.

``application/fhir+json`` (or ``application/json``), up to 8 MiB, from the ``integration``
role. The Bundle is validated with fhir.resources (R4B) and mapped by
:func:`carepath_intake.fhir.map_bundle`; the episode must then keep the contract's bounds and
travels exactly as one posted to ``POST /episodes`` (same ``episode.submitted`` event, same
``Idempotency-Key`` rules). The 202 answer lists everything the mapping could not carry over
(``unmapped``); an invalid Bundle, or one without a spinal region, gets a 422 naming the
problem. Patient identity never enters the episode; the log carries ids and counts only.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from carepath_contracts.limits import bound_errors
from carepath_intake.fhir import InvalidBundle, map_bundle
from carepath_intake.submission import (
    SUBMITTERS,
    Submissions,
    episode_submission,
    read_bounded_object,
)
from carepath_runtime.http_body import FHIR_JSON, JSON
from carepath_runtime.http_edge import json_body
from carepath_runtime.http_errors import ProblemError
from carepath_runtime.log import get_logger
from carepath_runtime.service import Runtime

SCOPE = "fhir-bundle"
log = get_logger(__name__)


def register_fhir_routes(app: FastAPI, rt: Runtime, submissions: Submissions) -> None:
    @app.post("/fhir/Bundle", status_code=202,
              openapi_extra=json_body({"type": "object"}, media=FHIR_JSON))
    async def submit_bundle(request: Request) -> JSONResponse:
        await submissions.auth.require(request, SUBMITTERS)
        data = await read_bounded_object(request, (FHIR_JSON, JSON), bounded=False)
        try:
            mapping = map_bundle(data)
        except InvalidBundle as exc:
            raise ProblemError(422, "invalid FHIR R4 Bundle", exc.errors) from exc
        unmapped = [u.to_json() for u in mapping.unmapped]
        if mapping.episode is None:
            raise ProblemError(422, "the Bundle cannot be mapped to an episode",
                               list(mapping.errors), unmapped=unmapped[:100])
        errors = bound_errors(mapping.episode.model_dump(mode="json", exclude_none=True))
        if errors:
            raise ProblemError(422, "the mapped episode breaks the contract's bounds", errors)
        response = await submissions.accept(
            request, SCOPE, data,
            episode_submission(rt, mapping.episode, {"unmapped": unmapped}),
        )
        log.info("fhir_bundle_received", status=response.status_code, unmapped=len(unmapped))
        return response
