"""What every intake endpoint shares: reading the JSON body, answering errors, and the
idempotent publish of the resulting event (``Idempotency-Key``)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import JSONResponse

from carepath_intake.availability import complete_durably, release_quietly
from carepath_intake.idempotency import IdempotencyStore
from carepath_shared.envelope import Envelope, derive_id
from carepath_shared.episode import Episode
from carepath_shared.events import EPISODE_SUBMITTED, EpisodeSubmitted
from carepath_shared.kafka_broker import OutboundEvent, build_event, publish
from carepath_shared.log import get_logger
from carepath_shared.problems import problem as problem_details
from carepath_shared.service import Runtime

SOURCE = "/carepath/intake"
log = get_logger(__name__)

# Given the de-duplication key (the Idempotency-Key, else the body's hash): the 202 answer
# and the event to publish.
Build = Callable[[str], tuple[dict[str, Any], OutboundEvent]]


def problem(status: int, error: str, errors: list[dict[str, str]] | None = None,
            **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"error": error}
    if errors is not None:
        body["errors"] = errors
    body.update(extra)
    return JSONResponse(body, status_code=status)


async def read_json_object(request: Request, media: str = "application/json"
                           ) -> dict[str, Any] | JSONResponse:
    """The body as a JSON object, or the 4xx answer explaining why it is not one."""
    ctype = request.headers.get("content-type", media)
    if "json" not in ctype:
        return problem(415, f"content-type must be {media}")
    try:
        data = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        return problem(400, f"body is not valid JSON: {exc}")
    if not isinstance(data, dict):
        return problem(
            422, "invalid request", [{"field": "(body)", "reason": "must be a JSON object"}]
        )
    return data


def body_hash(data: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()


class Submissions:
    """Publishes each accepted request's event once per ``Idempotency-Key``."""

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._idem = IdempotencyStore(rt.redis, rt.settings.namespace)

    async def accept(self, request: Request, scope: str, data: dict[str, Any],
                     build: Build) -> JSONResponse:
        digest = body_hash(data)
        idem_key = request.headers.get("idempotency-key")
        if idem_key is not None:
            if not 1 <= len(idem_key) <= 255:
                return problem(400, "invalid request", [
                    {"field": "Idempotency-Key", "reason": "must be 1 to 255 characters"}])
            claim = await self._idem.claim(scope, idem_key, digest)
            if claim.state == "conflict":
                return problem(422, "Idempotency-Key was already used with a different body")
            if claim.state == "in_progress":
                return problem_details(
                    409, "a request with this Idempotency-Key is still in progress",
                    slug="in-progress", headers={"Retry-After": "1"})
            if claim.state == "replay" and claim.response is not None:
                return JSONResponse(claim.response, 202, headers={"Idempotent-Replayed": "true"})
        try:
            response, event = build(idem_key or digest)
            await publish(self._rt.broker, event)
        except BaseException:
            if idem_key is not None:  # nothing accepted: a retry with this key goes ahead
                key = idem_key
                await release_quietly(lambda: self._idem.release(scope, key))
            raise
        if idem_key is not None:
            key = idem_key
            await complete_durably(
                lambda: self._idem.complete(scope, key, digest, response))
        log.info("event_published", type=event.headers["ce_type"], event_id=event.headers["ce_id"])
        return JSONResponse(response, 202)


def episode_submission(rt: Runtime, episode: Episode, extra: dict[str, Any] | None = None
                       ) -> Build:
    """The ``episode.submitted`` event of an episode; an id is derived when it has none."""

    def build(dedupe: str) -> tuple[dict[str, Any], OutboundEvent]:
        episode_id = episode.episode_id or derive_id("episode", dedupe)
        ep = episode if episode.episode_id else episode.model_copy(
            update={"episode_id": episode_id})
        event_id = derive_id(EPISODE_SUBMITTED, episode_id, dedupe)
        env = Envelope.new(event_type=EPISODE_SUBMITTED, source=SOURCE, event_id=event_id)
        body = EpisodeSubmitted(episode_id=episode_id, episode=ep, submitted_at=datetime.now(UTC))
        event = build_event(topic=rt.topics.episodes, key=episode_id, envelope=env, body=body)
        answer = {"episode_id": episode_id, "event_id": event_id, "status": "accepted",
                  **(extra or {})}
        return answer, event

    return build
