"""Intake answers fast and truthfully: 503 + Retry-After when a dependency is away or the
request runs out of time, 429 + Retry-After when it sheds load, always a problem document;
``/health`` reads the background state and never probes on the request path."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from redis.exceptions import ConnectionError as RedisConnectionError

from carepath_intake.availability import AvailabilityMiddleware, release_quietly
from carepath_runtime.dependency_health import DependencyHealth
from carepath_runtime.http import install_health


class Probes:
    def __init__(self) -> None:
        self.calls = 0
        self.answer = True

    async def probe(self) -> bool:
        self.calls += 1
        return self.answer


def make_app(health: DependencyHealth, **kw: Any) -> tuple[FastAPI, dict[str, Any]]:
    app = FastAPI()
    state: dict[str, Any] = {"gate": asyncio.Event(), "released": 0}
    install_health(app, health)

    @app.post("/episodes")
    async def post() -> JSONResponse:
        return JSONResponse({"status": "accepted"}, 202)

    @app.post("/redis-down")
    async def redis_down() -> JSONResponse:
        raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379")

    @app.post("/hangs")
    async def hangs() -> JSONResponse:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            async def release() -> None:
                state["released"] += 1
            await release_quietly(release)
            raise
        return JSONResponse({}, 202)

    @app.post("/slow")
    async def slow() -> JSONResponse:
        await state["gate"].wait()
        return JSONResponse({"status": "accepted"}, 202)

    app.add_middleware(AvailabilityMiddleware, health=health, **kw)
    return app, state


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


def assert_problem(r: httpx.Response, status: int) -> None:
    assert r.status_code == status
    assert r.headers["content-type"].startswith("application/problem+json")
    assert int(r.headers["retry-after"]) >= 1
    body = r.json()
    assert body["status"] == status and body["type"].startswith("https://")


async def test_refuses_at_once_when_kafka_is_known_down() -> None:
    kafka, redis = Probes(), Probes()
    health = DependencyHealth("intake", {"kafka": kafka.probe, "redis": redis.probe},
                              fail_threshold=1)
    app, _ = make_app(health, timeout_s=2.0)
    async with client(app) as c:
        assert (await c.post("/episodes")).status_code == 202
        kafka.answer = False
        await health.probe_once()
        r = await c.post("/episodes")
        assert_problem(r, 503)
        assert r.json()["dependency"] == "kafka"
        h = await c.get("/health")
        assert h.status_code == 503 and h.json()["degraded"] == ["kafka"]
        # Redis down: only a request with an Idempotency-Key (Redis keeps those) is refused.
        kafka.answer, redis.answer = True, False
        await health.probe_once()
        assert (await c.post("/episodes")).status_code == 202
        assert_problem(await c.post("/episodes", headers={"Idempotency-Key": "k"}), 503)


async def test_transient_error_and_timeout_are_503_not_500() -> None:
    health = DependencyHealth("intake", {"redis": Probes().probe})
    app, state = make_app(health, timeout_s=0.7)
    async with client(app) as c:
        r = await c.post("/redis-down")
        assert_problem(r, 503)
        assert r.json()["dependency"] == "redis"
        assert "6379" not in r.text  # no internals echoed
        assert health.degraded() == ["redis"]  # the failure itself is evidence
        await health.probe_once()
        assert health.degraded() == []  # and the next good probe clears it
        r = await c.post("/hangs")
        assert_problem(r, 503)
        assert state["released"] == 1  # the key was released: a retry proceeds at once


async def test_sheds_load_beyond_max_inflight_with_429() -> None:
    health = DependencyHealth("intake", {})
    app, state = make_app(health, timeout_s=30.0, max_inflight=4)
    async with client(app) as c:
        held = [asyncio.create_task(c.post("/slow")) for _ in range(4)]
        await asyncio.sleep(0.2)
        assert_problem(await c.post("/episodes"), 429)
        state["gate"].set()
        assert [r.status_code for r in await asyncio.gather(*held)] == [202] * 4
        assert (await c.post("/episodes")).status_code == 202


async def test_health_reads_background_state_without_probing() -> None:
    kafka = Probes()
    health = DependencyHealth("intake", {"kafka": kafka.probe})
    app, _ = make_app(health)
    async with client(app) as c:
        for _ in range(20):
            assert (await c.get("/health")).status_code == 200
    assert kafka.calls == 0
