"""HTTP pieces every service shares: health and readiness, validation error shape."""

from __future__ import annotations

import redis.asyncio as aioredis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from faststream.kafka import KafkaBroker
from pydantic import ValidationError

from carepath_shared.episode import validation_errors


def error_list(exc: ValidationError | RequestValidationError) -> list[dict[str, str]]:
    """The 4xx error list, naming each field (one implementation with the CLI's), without
    echoing the offending values back."""
    return validation_errors(exc, show_input=False)


def install_health(app: FastAPI, broker: KafkaBroker, redis: aioredis.Redis, service: str) -> None:
    @app.get("/health")
    async def health() -> JSONResponse:
        kafka_ok = await broker.ping(timeout=3.0)
        try:
            redis_ok = bool(await redis.ping())
        except Exception:
            redis_ok = False
        ok = kafka_ok and redis_ok
        return JSONResponse(
            {"service": service, "status": "ok" if ok else "degraded",
             "kafka": kafka_ok, "redis": redis_ok},
            status_code=200 if ok else 503,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": "invalid request", "errors": error_list(exc)}, 422)
