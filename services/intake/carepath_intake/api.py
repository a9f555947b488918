"""Intake's HTTP API: episodes and outcome reports in, events out.

Thin adapter: decode and validate (pydantic, strict), honour ``Idempotency-Key``, frame the
event (CloudEvents headers, deterministic id) and publish it with ``acks=all`` before
answering 202. Bad input gets a 4xx naming each offending field.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter, ValidationError

from carepath_intake.idempotency import IdempotencyStore
from carepath_shared.envelope import Envelope, derive_id
from carepath_shared.episode import Episode
from carepath_shared.events import (
    EPISODE_SUBMITTED,
    OUTCOME_REPORTED,
    EpisodeSubmitted,
    OutcomeReported,
)
from carepath_shared.http import error_list
from carepath_shared.kafka_broker import build_event, publish
from carepath_shared.log import get_logger
from carepath_shared.outcome import OutcomeReport
from carepath_shared.service import Runtime

SOURCE = "/carepath/intake"
OUTCOME_ADAPTER: TypeAdapter[OutcomeReport] = TypeAdapter(OutcomeReport)
log = get_logger(__name__)


def _problem(status: int, error: str, errors: list[dict[str, str]] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"error": error}
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status)


async def _read_json_object(request: Request) -> dict[str, Any] | JSONResponse:
    raw = await request.body()
    ctype = request.headers.get("content-type", "application/json")
    if "json" not in ctype:
        return _problem(415, "content-type must be application/json")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return _problem(400, f"body is not valid JSON: {exc}")
    if not isinstance(data, dict):
        return _problem(
            422, "invalid request", [{"field": "(body)", "reason": "must be a JSON object"}]
        )
    return data


def _hash(data: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()


def register_routes(app: FastAPI, rt: Runtime) -> None:
    idem = IdempotencyStore(rt.redis, rt.settings.namespace)

    async def accept(
        request: Request,
        scope: str,
        data: dict[str, Any],
        build: Any,
    ) -> JSONResponse:
        """Shared tail of both endpoints: idempotency, publish, answer."""
        body_hash = _hash(data)
        idem_key = request.headers.get("idempotency-key")
        if idem_key is not None:
            if not 1 <= len(idem_key) <= 255:
                return _problem(
                    400, "invalid request",
                    [{"field": "Idempotency-Key", "reason": "must be 1 to 255 characters"}],
                )
            claim = await idem.claim(scope, idem_key, body_hash)
            if claim.state == "conflict":
                return _problem(422, "Idempotency-Key was already used with a different body")
            if claim.state == "in_progress":
                return _problem(409, "a request with this Idempotency-Key is still in progress")
            if claim.state == "replay" and claim.response is not None:
                return JSONResponse(claim.response, 202, headers={"Idempotent-Replayed": "true"})
        try:
            response, event = build(idem_key or body_hash)
            await publish(rt.broker, event)
        except BaseException:
            if idem_key is not None:
                await idem.release(scope, idem_key)
            raise
        if idem_key is not None:
            await idem.complete(scope, idem_key, body_hash, response)
        log.info("event_published", type=event.headers["ce_type"], event_id=event.headers["ce_id"])
        return JSONResponse(response, 202)

    @app.post("/episodes", status_code=202)
    async def submit_episode(request: Request) -> JSONResponse:
        data = await _read_json_object(request)
        if isinstance(data, JSONResponse):
            return data
        try:
            episode = Episode.model_validate(data)
        except ValidationError as exc:
            return _problem(422, "invalid episode", error_list(exc))

        def build(dedupe: str) -> tuple[dict[str, Any], Any]:
            episode_id = episode.episode_id or derive_id("episode", dedupe)
            if episode.episode_id is None:
                ep = episode.model_copy(update={"episode_id": episode_id})
            else:
                ep = episode
            event_id = derive_id(EPISODE_SUBMITTED, episode_id, dedupe)
            env = Envelope.new(event_type=EPISODE_SUBMITTED, source=SOURCE, event_id=event_id)
            body = EpisodeSubmitted(
                episode_id=episode_id, episode=ep, submitted_at=datetime.now(UTC)
            )
            event = build_event(topic=rt.topics.episodes, key=episode_id, envelope=env, body=body)
            return {"episode_id": episode_id, "event_id": event_id, "status": "accepted"}, event

        return await accept(request, "episodes", data, build)

    @app.post("/episodes/{episode_id}/outcomes", status_code=202)
    async def report_outcome(episode_id: str, request: Request) -> JSONResponse:
        data = await _read_json_object(request)
        if isinstance(data, JSONResponse):
            return data
        data.setdefault("episode_id", episode_id)
        if data["episode_id"] != episode_id:
            return _problem(422, "invalid outcome", [
                {"field": "episode_id", "reason": "does not match the episode in the URL"}
            ])
        try:
            report = OUTCOME_ADAPTER.validate_python(data)
        except ValidationError as exc:
            return _problem(422, "invalid outcome", error_list(exc))

        def build(dedupe: str) -> tuple[dict[str, Any], Any]:
            event_id = derive_id(OUTCOME_REPORTED, episode_id, dedupe)
            env = Envelope.new(event_type=OUTCOME_REPORTED, source=SOURCE, event_id=event_id)
            body = OutcomeReported(
                episode_id=episode_id, report=report, reported_at=datetime.now(UTC)
            )
            event = build_event(topic=rt.topics.episodes, key=episode_id, envelope=env, body=body)
            return {"episode_id": episode_id, "event_id": event_id, "status": "accepted"}, event

        return await accept(request, f"outcomes:{episode_id}", data, build)
