"""What every intake endpoint shares: who may call, reading the body, the episodes intake has
accepted, and the idempotent publish of the resulting event (``Idempotency-Key``).

Roles (docs/api-access.md): ``integration`` (the EHR) submits episodes and FHIR Bundles and
reports outcomes; a ``coordinator`` may also report outcomes. Teams report theirs by completing
their referral (the referrals API), which checks that the referral is theirs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import JSONResponse

from carepath_contracts.envelope import Envelope, derive_id
from carepath_contracts.episode import Episode
from carepath_contracts.events import EPISODE_SUBMITTED, EpisodeSubmitted
from carepath_contracts.limits import bound_errors
from carepath_intake.availability import complete_durably, release_quietly
from carepath_intake.idempotency import IdempotencyStore
from carepath_runtime.auth import Authenticator
from carepath_runtime.http_body import JSON, read_json_object
from carepath_runtime.http_errors import ProblemError
from carepath_runtime.kafka_broker import EventTooLarge, OutboundEvent, build_event, publish
from carepath_runtime.log import get_logger
from carepath_runtime.redis_client import key as rkey
from carepath_runtime.service import Runtime

SOURCE = "/carepath/intake"
SUBMITTERS = frozenset({"integration"})
OUTCOME_REPORTERS = frozenset({"integration", "coordinator"})
log = get_logger(__name__)

# Given the de-duplication key (the Idempotency-Key, else the body's hash): the 202 answer
# and the event to publish.
Build = Callable[[str], tuple[dict[str, Any], OutboundEvent]]


async def read_bounded_object(request: Request, accepted: Sequence[str] = (JSON,),
                              bounded: bool = True) -> dict[str, Any]:
    """The body as a strictly parsed JSON object within the contract's bounds (4xx else)."""
    data = await read_json_object(request, accepted)
    if bounded:
        errors = bound_errors(data)
        if errors:
            raise ProblemError(422, "the request breaks the contract's bounds", errors)
    return data


def body_hash(data: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()


class Submissions:
    """Publishes each accepted request's event once per ``Idempotency-Key``, and remembers the
    episodes it accepted (``<ns>:intake:episodes``)."""

    def __init__(self, rt: Runtime, auth: Authenticator) -> None:
        self._rt = rt
        self.auth = auth
        self._idem = IdempotencyStore(rt.redis, rt.settings.namespace)
        self._episodes = rkey(rt.settings.namespace, "intake", "episodes")

    async def known_episode(self, episode_id: str) -> bool:
        return bool(await self._rt.redis.sismember(self._episodes, episode_id))

    async def accept(self, request: Request, scope: str, data: dict[str, Any],
                     build: Build) -> JSONResponse:
        digest = body_hash(data)
        idem_key = request.headers.get("idempotency-key")
        if idem_key is not None:
            if not 1 <= len(idem_key) <= 255:
                raise ProblemError(400, "invalid request", [
                    {"field": "Idempotency-Key", "reason": "must be 1 to 255 characters"}])
            claim = await self._idem.claim(scope, idem_key, digest)
            if claim.state == "conflict":
                raise ProblemError(422, "Idempotency-Key was already used with a different body",
                                   [{"field": "Idempotency-Key",
                                     "reason": "already used with a different body"}])
            if claim.state == "in_progress":
                raise ProblemError(409, "a request with this Idempotency-Key is still in progress",
                                   slug="in-progress", headers={"Retry-After": "1"})
            if claim.state == "replay" and claim.response is not None:
                return JSONResponse(claim.response, 202, headers={"Idempotent-Replayed": "true"})
        try:
            response, event = build(idem_key or digest)
            if event.headers["ce_type"] == EPISODE_SUBMITTED:
                # Recorded first (idempotent): once the event is out, an outcome for the
                # episode must be accepted. Redis away means nothing is published: a 503.
                await self._rt.redis.sadd(self._episodes, response["episode_id"])
            await publish(self._rt.broker, event)
        except BaseException as exc:
            if idem_key is not None:  # nothing accepted: a retry with this key goes ahead
                key = idem_key
                await release_quietly(lambda: self._idem.release(scope, key))
            if isinstance(exc, EventTooLarge):
                raise ProblemError(413, "the event this request produces is larger than its "
                                        "topic takes", slug="event-too-large") from exc
            raise
        if idem_key is not None:
            key = idem_key
            await complete_durably(
                lambda: self._idem.complete(scope, key, digest, response))
        log.info("event_published", type=event.headers["ce_type"], event_id=event.headers["ce_id"])
        return JSONResponse(response, 202)


def episode_submission(rt: Runtime, episode: Episode, extra: dict[str, Any] | None = None
                       ) -> Build:
    """The ``episode.submitted`` event of an episode; an id is derived only when it has none
    (absent or null: a present id always passed the episode-id rule)."""

    def build(dedupe: str) -> tuple[dict[str, Any], OutboundEvent]:
        episode_id = episode.episode_id
        if episode_id is None:
            episode_id = derive_id("episode", dedupe)
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
