"""HTTP pieces every service shares: health and readiness, validation error shape."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from carepath_contracts.episode import validation_errors
from carepath_runtime.dependency_health import DependencyHealth


def error_list(exc: ValidationError | RequestValidationError) -> list[dict[str, str]]:
    """The 4xx error list, naming each field (one implementation with the CLI's), without
    echoing the offending values back."""
    return validation_errors(exc, show_input=False)


def install_health(app: FastAPI, health: DependencyHealth) -> None:
    """``GET /health``: 200 ``ok`` or 503 ``degraded`` naming the dependencies at fault.

    It reads the state the background probe keeps (:mod:`carepath_runtime.dependency_health`)
    and never probes on the request path, so it answers at once whatever Kafka does.
    """

    @app.get("/health")
    async def _health() -> JSONResponse:
        snap = health.snapshot()
        return JSONResponse(snap, status_code=200 if snap["status"] == "ok" else 503)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": "invalid request", "errors": error_list(exc)}, 422)
