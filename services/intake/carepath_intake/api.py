"""Intake's HTTP API: episodes and outcome reports in, events out.

Thin adapter: authenticate (``integration``; outcomes also ``coordinator``), read the body
strictly within the contract's bounds, validate (pydantic, strict), honour
``Idempotency-Key``, frame the event (CloudEvents headers, deterministic id) and publish it
with ``acks=all`` before answering 202. An outcome for an episode intake never accepted is
404. Bad input gets an RFC 9457 problem naming each offending field.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from carepath_contracts.episode import Episode
from carepath_contracts.episode_id import EPISODE_ID_MAX, EPISODE_ID_PATTERN
from carepath_contracts.outcome import OUTCOME_ADAPTER
from carepath_contracts.outcome_event import outcome_event
from carepath_intake.submission import (
    OUTCOME_REPORTERS,
    SOURCE,
    SUBMITTERS,
    Submissions,
    episode_submission,
    read_bounded_object,
)
from carepath_runtime.http import error_list
from carepath_runtime.http_edge import json_body, model_schema
from carepath_runtime.http_errors import ProblemError
from carepath_runtime.http_params import episode_id_path
from carepath_runtime.kafka_broker import OutboundEvent, build_event
from carepath_runtime.service import Runtime


class Accepted(BaseModel):
    episode_id: str
    event_id: str
    status: str


def _episode_body() -> dict[str, Any]:
    """The episode's schema with the edge's episode-id rule (docs/episode-contract.md)."""
    schema = model_schema(Episode)
    schema["properties"]["episode_id"] = {"anyOf": [
        {"type": "string", "pattern": EPISODE_ID_PATTERN, "maxLength": EPISODE_ID_MAX},
        {"type": "null"}]}
    return schema


def register_routes(app: FastAPI, rt: Runtime, submissions: Submissions) -> None:
    auth = submissions.auth

    @app.post("/episodes", status_code=202, response_model=Accepted,
              openapi_extra=json_body(_episode_body()))
    async def submit_episode(request: Request) -> JSONResponse:
        await auth.require(request, SUBMITTERS)
        data = await read_bounded_object(request)
        try:
            episode = Episode.model_validate(data)
        except ValidationError as exc:
            raise ProblemError(422, "invalid episode", error_list(exc)) from exc
        return await submissions.accept(request, "episodes", data,
                                        episode_submission(rt, episode))

    @app.post("/episodes/{episode_id}/outcomes", status_code=202, response_model=Accepted,
              openapi_extra=json_body(model_schema(OUTCOME_ADAPTER)))
    async def report_outcome(request: Request, episode_id: str = episode_id_path()
                             ) -> JSONResponse:
        await auth.require(request, OUTCOME_REPORTERS)
        data = await read_bounded_object(request)
        data.setdefault("episode_id", episode_id)
        if data["episode_id"] != episode_id:
            raise ProblemError(422, "invalid outcome", [
                {"field": "episode_id", "reason": "does not match the episode in the URL"}])
        try:
            report = OUTCOME_ADAPTER.validate_python(data)
        except ValidationError as exc:
            raise ProblemError(422, "invalid outcome", error_list(exc)) from exc
        if not await submissions.known_episode(episode_id):
            raise ProblemError(404, "no such episode")

        def build(dedupe: str) -> tuple[dict[str, Any], OutboundEvent]:
            out = outcome_event(rt.topics, report, source=SOURCE, identity=(episode_id, dedupe),
                                at=datetime.now(UTC))
            event = build_event(topic=out.topic, key=out.key, envelope=out.envelope,
                                body=out.body)
            return {"episode_id": episode_id, "event_id": out.envelope.id,
                    "status": "accepted"}, event

        return await submissions.accept(request, f"outcomes:{episode_id}", data, build)
