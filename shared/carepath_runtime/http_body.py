"""Request bodies at the edge: size limits before parsing, and strict JSON.

* :class:`BodyLimitMiddleware` answers 413 to a body over its route's limit before any
  handler reads it: at once when ``Content-Length`` says so, else as soon as the received
  bytes pass the limit (a chunked body is never buffered beyond it).
* :func:`read_json_object` accepts only the listed media types (415 otherwise, a missing
  ``Content-Type`` included), refuses invalid UTF-8 or JSON (400), a duplicate key (400
  naming the key's path, never a value), ``NaN``/``Infinity`` (400) and anything but an
  object (422).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from carepath_runtime.http_errors import ProblemError
from carepath_runtime.problems import problem

JSON = "application/json"
FHIR_JSON = "application/fhir+json"
MIB = 1024 * 1024

# path -> the body limit in bytes for that request.
LimitFor = Callable[[str], int]


class BodyLimitMiddleware:
    """413 for a request body over ``limit_for(path)`` bytes, before the app parses it."""

    def __init__(self, app: ASGIApp, limit_for: LimitFor) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _too_large(limit, scope, receive, send)
            return
        # Read the body up to the limit (a chunked body may still be too long), then replay it.
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                chunks.clear()
                replay: list[Message] = [message]
                break
            body = message.get("body", b"")
            size += len(body)
            if size > limit:
                await _too_large(limit, scope, receive, send)
                return
            chunks.append(body)
            more = message.get("more_body", False)
        else:
            replay = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replaying() -> Message:
            return replay.pop(0) if replay else await receive()

        await self.app(scope, replaying, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _too_large(limit: int, scope: Scope, receive: Receive, send: Send) -> None:
    response = problem(413, f"the request body is larger than {limit} bytes",
                       headers={"Connection": "close"})
    await response(scope, receive, send)


def limits_by_prefix(default: int, prefixes: Sequence[tuple[str, int]] = ()) -> LimitFor:
    """The limit of the first matching path prefix, else ``default``."""

    def limit_for(path: str) -> int:
        for prefix, limit in prefixes:
            if path.startswith(prefix):
                return limit
        return default

    return limit_for


def media_type(request: Request) -> str | None:
    raw = request.headers.get("content-type")
    if raw is None:
        return None
    return raw.split(";", 1)[0].strip().lower() or None


def require_media(request: Request, accepted: Sequence[str]) -> None:
    """415 unless the request's ``Content-Type`` is one of ``accepted``."""
    if media_type(request) not in accepted:
        raise ProblemError(415, "Content-Type must be " + " or ".join(accepted),
                           headers={"Accept-Post": ", ".join(accepted)})


class _Duplicates(dict[str, Any]):
    """A decoded JSON object that had a key more than once (the first such key kept)."""

    duplicate: str


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out and not isinstance(out, _Duplicates):
            out = _Duplicates(out)
            out.duplicate = k
        out[k] = v
    return out


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _find_duplicate(value: Any, path: str) -> str | None:
    if isinstance(value, _Duplicates):
        return _join(path, value.duplicate)
    if isinstance(value, dict):
        for k, v in value.items():
            found = _find_duplicate(v, _join(path, k))
            if found:
                return found
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found = _find_duplicate(v, f"{path}[{i}]")
            if found:
                return found
    return None


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def parse_json(raw: bytes) -> Any:
    """Strictly decoded JSON (see the module docstring); :class:`ProblemError` otherwise."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProblemError(400, "the body is not UTF-8 text") from exc
    try:
        data = json.loads(text, object_pairs_hook=_pairs, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise ProblemError(400, f"the body is not valid JSON: {exc.msg} at line {exc.lineno} "
                                f"column {exc.colno}") from exc
    except (ValueError, RecursionError) as exc:
        raise ProblemError(400, "the body is not valid JSON (NaN, Infinity or nesting too "
                                "deep)") from exc
    duplicate = _find_duplicate(data, "")
    if duplicate is not None:
        raise ProblemError(400, "the body has a duplicate key", [
            {"field": duplicate, "reason": "duplicate key: each key may appear once"}])
    return data


async def read_json_object(request: Request, accepted: Sequence[str] = (JSON,)
                           ) -> dict[str, Any]:
    """The body as a JSON object, strictly parsed; :class:`ProblemError` otherwise."""
    require_media(request, accepted)
    data = parse_json(await request.body())
    if not isinstance(data, dict):
        raise ProblemError(422, "invalid request",
                           [{"field": "(body)", "reason": "must be a JSON object"}])
    return data
