"""Intake's HTTP API: episodes and outcome reports in, events out.

Thin adapter: decode and validate (pydantic, strict), honour ``Idempotency-Key``, frame the
event (CloudEvents headers, deterministic id) and publish it with ``acks=all`` before
answering 202. Bad input gets a 4xx naming each offending field.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from carepath_intake.submission import (
    SOURCE,
    Submissions,
    episode_submission,
    problem,
    read_json_object,
)
from carepath_shared.envelope import Envelope, derive_id
from carepath_shared.episode import Episode
from carepath_shared.events import OUTCOME_REPORTED, OutcomeReported
from carepath_shared.http import error_list
from carepath_shared.kafka_broker import OutboundEvent, build_event
from carepath_shared.outcome import OUTCOME_ADAPTER
from carepath_shared.service import Runtime


def register_routes(app: FastAPI, rt: Runtime, submissions: Submissions) -> None:
    @app.post("/episodes", status_code=202)
    async def submit_episode(request: Request) -> JSONResponse:
        data = await read_json_object(request)
        if isinstance(data, JSONResponse):
            return data
        try:
            episode = Episode.model_validate(data)
        except ValidationError as exc:
            return problem(422, "invalid episode", error_list(exc))
        return await submissions.accept(request, "episodes", data,
                                        episode_submission(rt, episode))

    @app.post("/episodes/{episode_id}/outcomes", status_code=202)
    async def report_outcome(episode_id: str, request: Request) -> JSONResponse:
        data = await read_json_object(request)
        if isinstance(data, JSONResponse):
            return data
        data.setdefault("episode_id", episode_id)
        if data["episode_id"] != episode_id:
            return problem(422, "invalid outcome", [
                {"field": "episode_id", "reason": "does not match the episode in the URL"}
            ])
        try:
            report = OUTCOME_ADAPTER.validate_python(data)
        except ValidationError as exc:
            return problem(422, "invalid outcome", error_list(exc))

        def build(dedupe: str) -> tuple[dict[str, Any], OutboundEvent]:
            event_id = derive_id(OUTCOME_REPORTED, episode_id, dedupe)
            env = Envelope.new(event_type=OUTCOME_REPORTED, source=SOURCE, event_id=event_id)
            body = OutcomeReported(
                episode_id=episode_id, report=report, reported_at=datetime.now(UTC)
            )
            event = build_event(topic=rt.topics.episodes, key=episode_id, envelope=env, body=body)
            return {"episode_id": episode_id, "event_id": event_id, "status": "accepted"}, event

        return await submissions.accept(request, f"outcomes:{episode_id}", data, build)
