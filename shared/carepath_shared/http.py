"""HTTP pieces every service shares: health and readiness, validation error shape."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from faststream.kafka import KafkaBroker
from pydantic import ValidationError


def field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """('body', 'facet_injections', 0, 'relief_percent') -> 'facet_injections[0].relief_percent'."""
    out = ""
    for part in loc:
        if part in ("body",) and not out:
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(body)"


def error_list(exc: ValidationError | RequestValidationError) -> list[dict[str, str]]:
    errors = exc.errors()
    return [
        {"field": field_path(tuple(e.get("loc", ()))), "reason": str(e.get("msg", "invalid"))}
        for e in errors
    ]


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
