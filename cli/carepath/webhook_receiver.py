"""A small local webhook receiver: verifies Standard Webhooks signatures and records calls.

Used by `make run` (so a POSTed episode visibly produces a webhook call) and by the tests.

* ``POST /webhook`` and ``POST /webhook/<name>``: verify, record, answer 200. Failure
  injection applies here, before anything is recorded (a failed request was not received):
  ``--fail-every N`` answers ``--fail-status`` to every Nth request; ``--fail-rate P`` to each
  request with probability P (``--seed`` makes the choice repeatable), for the first
  ``--fail-for-requests`` requests and/or ``--fail-for-seconds`` seconds after the first
  request (neither given: for ever). ``--retry-after`` adds that header to failures.
* ``POST /status/<code>[?retry_after=S]``: always answers ``code`` (a dead endpoint).
* ``POST /slow/<seconds>``: answers 504 only after that long (a hanging endpoint: senders
  with a shorter timeout give up first).
* ``POST /control``: JSON with any of ``fail_rate``, ``fail_every``, ``fail_for_requests``,
  ``fail_for_seconds``, ``fail_status``, ``retry_after``; restarts the failure window.
* ``GET /received``: what arrived: ``received`` (every verified call, duplicates included,
  with ``webhook_id``, ``path`` and ``event``), and counters ``n`` (requests), ``failed``
  (induced failures), ``rejected`` (bad signatures), ``duplicates`` (calls whose webhook-id
  had already been received) and ``unique``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from carepath_runtime.webhook_verify import WebhookVerificationError, decode_secret, verify


@dataclass
class FailurePlan:
    """When the receiver answers with an induced failure instead of receiving."""

    fail_every: int = 0
    fail_rate: float = 0.0
    fail_for_requests: int = 0
    fail_for_seconds: float = 0.0
    fail_status: int = 503
    retry_after: str | None = None
    seed: int | None = None
    _rng: random.Random = field(default_factory=random.Random, repr=False)
    _started: float | None = None
    _seen: int = 0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def restart(self) -> None:
        self._started, self._seen = None, 0

    def fails(self, now: float) -> bool:
        """Whether this request (counted from the window's start) gets a failure."""
        if self._started is None:
            self._started = now
        self._seen += 1
        in_window = (
            (self.fail_for_requests <= 0 or self._seen <= self.fail_for_requests)
            and (self.fail_for_seconds <= 0 or now - self._started < self.fail_for_seconds)
        )
        if not in_window:
            return False
        if self.fail_every and self._seen % self.fail_every == 0:
            return True
        return self.fail_rate > 0 and self._rng.random() < self.fail_rate


def create_app(secret: str, fail_every: int = 0, plan: FailurePlan | None = None) -> FastAPI:
    app = FastAPI(title="carepath-webhook-receiver")
    failures = plan or FailurePlan(fail_every=fail_every)
    received: list[dict[str, Any]] = []
    seen: set[str] = set()
    counter = {"n": 0, "rejected": 0, "failed": 0, "duplicates": 0}

    def induced(status: int, retry_after: str | None) -> JSONResponse:
        counter["failed"] += 1
        headers = {"Retry-After": retry_after} if retry_after else None
        return JSONResponse({"error": "induced failure"}, status, headers=headers)

    async def receive(request: Request, path: str) -> JSONResponse:
        body = await request.body()
        counter["n"] += 1
        if failures.fails(time.monotonic()):
            return induced(failures.fail_status, failures.retry_after)
        try:
            verify(secret, dict(request.headers), body)
        except WebhookVerificationError as exc:
            counter["rejected"] += 1
            return JSONResponse({"error": str(exc)}, 400)
        event = orjson.loads(body)
        webhook_id = request.headers["webhook-id"]
        if webhook_id in seen:
            counter["duplicates"] += 1
        seen.add(webhook_id)
        received.append({"webhook_id": webhook_id, "path": path, "event": event,
                         "traceparent": request.headers.get("traceparent")})
        print(orjson.dumps({"received": event.get("type"), "id": event.get("id"),
                            "path": path}).decode(), flush=True)
        return JSONResponse({"ok": True})

    @app.post("/webhook")
    async def webhook(request: Request) -> JSONResponse:
        return await receive(request, "/webhook")

    @app.post("/webhook/{name}")
    async def named_webhook(name: str, request: Request) -> JSONResponse:
        return await receive(request, f"/webhook/{name}")

    @app.post("/status/{code}")
    async def fixed_status(code: int, request: Request,
                           retry_after: str | None = None) -> JSONResponse:
        await request.body()
        counter["n"] += 1
        return induced(code, retry_after)

    @app.post("/slow/{seconds}")
    async def slow(seconds: float, request: Request) -> JSONResponse:
        await request.body()
        counter["n"] += 1
        await asyncio.sleep(min(max(seconds, 0.0), 300.0))
        return induced(504, None)

    @app.post("/control")
    async def control(request: Request) -> JSONResponse:
        changes = orjson.loads(await request.body() or b"{}")
        for name in ("fail_every", "fail_rate", "fail_for_requests", "fail_for_seconds",
                     "fail_status", "retry_after"):
            if name in changes:
                setattr(failures, name, changes[name])
        failures.restart()
        return JSONResponse({"ok": True})

    @app.get("/received")
    async def list_received() -> JSONResponse:
        return JSONResponse({"received": received, **counter, "unique": len(seen)})

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8099)
    # No default: the secret is generated per installation (deploy/run-services.sh keeps
    # it in .run/webhook-secret, mode 0600) or per test.
    parser.add_argument(
        "--secret", default=os.environ.get("CAREPATH_WEBHOOK_SECRET"),
        help="the signing secret (default $CAREPATH_WEBHOOK_SECRET; required)",
    )
    parser.add_argument("--fail-every", type=int, default=0)
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument("--fail-for-requests", type=int, default=0)
    parser.add_argument("--fail-for-seconds", type=float, default=0.0)
    parser.add_argument("--fail-status", type=int, default=503)
    parser.add_argument("--retry-after", default=None)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    if not args.secret:
        parser.error("no signing secret: pass --secret or set CAREPATH_WEBHOOK_SECRET")
    try:
        decode_secret(args.secret)
    except ValueError as exc:
        parser.error(f"bad signing secret: {exc}")
    plan = FailurePlan(
        fail_every=args.fail_every, fail_rate=args.fail_rate,
        fail_for_requests=args.fail_for_requests, fail_for_seconds=args.fail_for_seconds,
        fail_status=args.fail_status, retry_after=args.retry_after, seed=args.seed,
    )
    uvicorn.run(create_app(args.secret, plan=plan), host="127.0.0.1", port=args.port,
                log_level="warning", timeout_graceful_shutdown=5)


if __name__ == "__main__":
    main()
