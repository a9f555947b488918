"""Intake's FHIR door: ``POST /fhir/Bundle`` maps a FHIR R4 Bundle to an episode.

The Bundle is validated with fhir.resources (R4B) and mapped by
:func:`carepath_shared.fhir.map_bundle`; the episode then travels exactly as one posted to
``POST /episodes`` (same ``episode.submitted`` event, same ``Idempotency-Key`` rules). The 202
answer lists everything the mapping could not carry over (``unmapped``); an invalid Bundle,
or one without a spinal region, gets a 4xx naming the problem. Patient identity never enters
the episode; the log carries ids and counts only.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from carepath_intake.submission import (
    Submissions,
    episode_submission,
    problem,
    read_json_object,
)
from carepath_shared.fhir import InvalidBundle, map_bundle
from carepath_shared.log import get_logger
from carepath_shared.service import Runtime

SCOPE = "fhir-bundle"
log = get_logger(__name__)


def register_fhir_routes(app: FastAPI, rt: Runtime, submissions: Submissions) -> None:
    @app.post("/fhir/Bundle", status_code=202)
    async def submit_bundle(request: Request) -> JSONResponse:
        data = await read_json_object(
            request, media="application/fhir+json or application/json"
        )
        if isinstance(data, JSONResponse):
            return data
        try:
            mapping = map_bundle(data)
        except InvalidBundle as exc:
            return problem(422, "invalid FHIR R4 Bundle", exc.errors)
        unmapped = [u.to_json() for u in mapping.unmapped]
        if mapping.episode is None:
            return problem(422, "the Bundle cannot be mapped to an episode",
                           list(mapping.errors), unmapped=unmapped)
        response = await submissions.accept(
            request, SCOPE, data,
            episode_submission(rt, mapping.episode, {"unmapped": unmapped}),
        )
        log.info("fhir_bundle_received", status=response.status_code, unmapped=len(unmapped))
        return response
