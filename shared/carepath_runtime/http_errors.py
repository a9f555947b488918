"""Every HTTP error of every service as an RFC 9457 problem (``application/problem+json``).

:func:`install_problem_handlers` maps, on one FastAPI app:

* :class:`ProblemError` (raised by our adapters) to its problem;
* FastAPI/Starlette ``HTTPException`` (routing's 404 and 405 included) to the problem of its
  status, keeping its headers (``Allow``, ``WWW-Authenticate``);
* ``RequestValidationError`` (path, query and header parameters) to 422 naming each field,
  without the submitted value;
* anything unhandled to a 500 problem that carries no exception text (the log gets its type).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from carepath_contracts.episode import validation_errors
from carepath_runtime.log import get_logger
from carepath_runtime.problems import problem

log = get_logger(__name__)


class ProblemError(Exception):
    """Raise to answer with a problem: ``status``, our own ``detail`` and field ``errors``."""

    def __init__(
        self,
        status: int,
        detail: str,
        errors: Sequence[Mapping[str, str]] | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        slug: str | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors
        self.headers = headers
        self.slug = slug
        self.extra = extra

    def response(self) -> Response:
        return problem(self.status, self.detail, self.errors, slug=self.slug,
                       headers=self.headers, **self.extra)


# Starlette's own texts for routing errors; anything else an HTTPException carries is ours.
_ROUTING_DETAILS = {404: "no such resource", 405: "method not allowed on this resource"}


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _problem(_: Request, exc: ProblemError) -> Response:
        return exc.response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else None
        if detail in ("Not Found", "Method Not Allowed"):
            detail = _ROUTING_DETAILS.get(exc.status_code, detail)
        return problem(exc.status_code, detail, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> Response:
        return problem(422, "invalid request", validation_errors(exc, show_input=False))

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> Response:
        log.error("unhandled_error", error_type=type(exc).__name__, method=request.method,
                  route=_route_of(request))
        return problem(500, "the server could not complete the request")


def _route_of(request: Request) -> str:
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "(unrouted)"
