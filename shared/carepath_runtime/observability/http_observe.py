"""An ASGI middleware: one span and the HTTP metrics per request, by route template.

The route is the template FastAPI matched (``/episodes/{episode_id}/careplan``), never the raw
path, so neither a metric label nor a span attribute carries an id. Unmatched paths count as
``(unmatched)``. ``/metrics`` and ``/health`` are measured but not traced.
"""

from __future__ import annotations

import time
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from carepath_runtime.observability.metrics import HTTP_REQUESTS, HTTP_SECONDS, status_class

_UNTRACED = frozenset({"/metrics", "/health"})


def _route_of(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "(unmatched)"


class ObserveHTTP:
    def __init__(self, app: ASGIApp, service: str, tracer_provider: Any) -> None:
        self.app = app
        self.service = service
        self.tracer = trace.get_tracer("carepath.http", tracer_provider=tracer_provider)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope.get("method", "GET")
        status = {"code": 500}
        started = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = int(message["status"])
            await send(message)

        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        traced = scope.get("path") not in _UNTRACED
        span_cm: Any = (
            self.tracer.start_as_current_span(
                f"{method}", kind=SpanKind.SERVER, context=propagate.extract(headers))
            if traced else None
        )
        span = span_cm.__enter__() if span_cm is not None else None
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = _route_of(scope)
            code = status["code"]
            if span is not None:
                span.update_name(f"{method} {route}")
                span.set_attribute("http.request.method", method)
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", code)
                if code >= 500:
                    span.set_status(Status(StatusCode.ERROR))
                span_cm.__exit__(None, None, None)
            HTTP_REQUESTS.labels(self.service, method, route, status_class(code)).inc()
            HTTP_SECONDS.labels(self.service, method, route).observe(
                time.perf_counter() - started)
