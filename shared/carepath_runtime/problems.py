"""RFC 9457 problem details: the one error shape of every Carepath HTTP API.

Every 4xx and 5xx answer is ``application/problem+json``::

    {"type": "https://carepath.dev/problems/invalid-request", "title": "Invalid request",
     "status": 422, "detail": "...", "errors": [{"field": "region", "reason": "..."}]}

``errors`` is present when fields are to blame; it holds at most ``MAX_ERRORS`` items and,
when more were found, ``errors_truncated`` counts the rest. A problem never carries a value the
caller submitted: ``detail`` and ``reason`` are written by us, ``field`` is a path of names and
list indexes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi.responses import JSONResponse

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "https://carepath.dev/problems/"
MAX_ERRORS = 20

# status -> (type slug, title) for the answers we give without a more specific slug.
_DEFAULTS: dict[int, tuple[str, str]] = {
    400: ("bad-request", "Bad request"),
    401: ("unauthenticated", "Authentication required"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    409: ("conflict", "Conflict"),
    413: ("payload-too-large", "Payload too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("invalid-request", "Invalid request"),
    429: ("too-many-requests", "Too many requests"),
    500: ("internal-error", "Internal server error"),
    503: ("unavailable", "Service unavailable"),
}


class ProblemJSONResponse(JSONResponse):
    media_type = PROBLEM_MEDIA_TYPE


def problem_body(
    status: int,
    detail: str | None = None,
    errors: Sequence[Mapping[str, str]] | None = None,
    *,
    slug: str | None = None,
    title: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The problem document for ``status`` (see the module docstring)."""
    default_slug, default_title = _DEFAULTS.get(status, ("error", "Error"))
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + (slug or default_slug),
        "title": title or default_title,
        "status": status,
    }
    if detail is not None:
        body["detail"] = detail
    if errors is not None:
        items = [dict(e) for e in errors[:MAX_ERRORS]]
        body["errors"] = items
        if len(errors) > MAX_ERRORS:
            body["errors_truncated"] = len(errors) - MAX_ERRORS
    body.update(extra)
    return body


def problem(
    status: int,
    detail: str | None = None,
    errors: Sequence[Mapping[str, str]] | None = None,
    *,
    slug: str | None = None,
    title: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> ProblemJSONResponse:
    """An ``application/problem+json`` answer."""
    return ProblemJSONResponse(
        problem_body(status, detail, errors, slug=slug, title=title, **extra),
        status_code=status,
        headers=dict(headers) if headers else None,
    )
