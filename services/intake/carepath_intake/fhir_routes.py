"""Intake's FHIR door: ``POST /fhir/Bundle`` maps a FHIR R4 Bundle to an episode.

The Bundle is validated with fhir.resources (R4B) and mapped by
:func:`carepath_shared.fhir.map_bundle`; the episode then travels exactly as one posted to
``POST /episodes`` (same ``episode.submitted`` event, same ``Idempotency-Key`` rules). The 202
answer lists everything the mapping could not carry over (``unmapped``); an invalid Bundle,
or one without a spinal region, gets a 4xx naming the problem. Patient identity never enters
the episode; the log carries ids and counts only.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from carepath_intake.idempotency import IdempotencyStore
from carepath_shared.envelope import Envelope, derive_id
from carepath_shared.events import EPISODE_SUBMITTED, EpisodeSubmitted
from carepath_shared.fhir import InvalidBundle, map_bundle
from carepath_shared.kafka_broker import build_event, publish
from carepath_shared.log import get_logger
from carepath_shared.service import Runtime

SOURCE = "/carepath/intake"
SCOPE = "fhir-bundle"
log = get_logger(__name__)


def _problem(status: int, error: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": error, **extra}, status_code=status)


def register_fhir_routes(app: FastAPI, rt: Runtime) -> None:
    idem = IdempotencyStore(rt.redis, rt.settings.namespace)

    @app.post("/fhir/Bundle", status_code=202)
    async def submit_bundle(request: Request) -> JSONResponse:
        ctype = request.headers.get("content-type", "application/fhir+json")
        if "json" not in ctype:
            return _problem(415, "content-type must be application/fhir+json or application/json")
        raw = await request.body()
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return _problem(400, f"body is not valid JSON: {exc}")
        if not isinstance(data, dict):
            return _problem(422, "invalid request",
                            errors=[{"field": "(body)", "reason": "must be a JSON object"}])
        try:
            mapping = map_bundle(data)
        except InvalidBundle as exc:
            return _problem(422, "invalid FHIR R4 Bundle", errors=exc.errors)
        unmapped = [u.to_json() for u in mapping.unmapped]
        if mapping.episode is None:
            return _problem(422, "the Bundle cannot be mapped to an episode",
                            errors=list(mapping.errors), unmapped=unmapped)
        episode = mapping.episode

        body_hash = hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()
        idem_key = request.headers.get("idempotency-key")
        if idem_key is not None:
            if not 1 <= len(idem_key) <= 255:
                return _problem(400, "invalid request", errors=[
                    {"field": "Idempotency-Key", "reason": "must be 1 to 255 characters"}])
            claim = await idem.claim(SCOPE, idem_key, body_hash)
            if claim.state == "conflict":
                return _problem(422, "Idempotency-Key was already used with a different body")
            if claim.state == "in_progress":
                return _problem(409, "a request with this Idempotency-Key is still in progress")
            if claim.state == "replay" and claim.response is not None:
                return JSONResponse(claim.response, 202, headers={"Idempotent-Replayed": "true"})

        dedupe = idem_key or body_hash
        episode_id = episode.episode_id or derive_id("episode", dedupe)
        if episode.episode_id is None:
            episode = episode.model_copy(update={"episode_id": episode_id})
        event_id = derive_id(EPISODE_SUBMITTED, episode_id, dedupe)
        try:
            env = Envelope.new(event_type=EPISODE_SUBMITTED, source=SOURCE, event_id=event_id)
            body = EpisodeSubmitted(
                episode_id=episode_id, episode=episode, submitted_at=datetime.now(UTC)
            )
            event = build_event(topic=rt.topics.episodes, key=episode_id, envelope=env, body=body)
            await publish(rt.broker, event)
        except BaseException:
            if idem_key is not None:
                await idem.release(SCOPE, idem_key)
            raise
        response = {"episode_id": episode_id, "event_id": event_id, "status": "accepted",
                    "unmapped": unmapped}
        if idem_key is not None:
            await idem.complete(SCOPE, idem_key, body_hash, response)
        log.info("fhir_bundle_accepted", event_id=event_id, unmapped=len(unmapped))
        return JSONResponse(response, 202)
