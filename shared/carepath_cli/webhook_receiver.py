"""A small local webhook receiver: verifies Standard Webhooks signatures and records calls.

Used by `make run` (so a POSTed episode visibly produces a webhook call) and by the tests.
``GET /received`` lists what arrived; ``--fail-every N`` answers 503 to every Nth request to
exercise retries.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import orjson
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from carepath_shared.webhook_verify import WebhookVerificationError, verify

DEFAULT_SECRET = "whsec_Y2FyZXBhdGgtZGV2LXNlY3JldC1rZXktMDEyMzQ1"


def create_app(secret: str, fail_every: int = 0) -> FastAPI:
    app = FastAPI(title="carepath-webhook-receiver")
    received: list[dict[str, Any]] = []
    counter = {"n": 0, "rejected": 0, "failed": 0}

    @app.post("/webhook")
    async def webhook(request: Request) -> JSONResponse:
        body = await request.body()
        counter["n"] += 1
        if fail_every and counter["n"] % fail_every == 0:
            counter["failed"] += 1
            return JSONResponse({"error": "induced failure"}, 503)
        try:
            verify(secret, dict(request.headers), body)
        except WebhookVerificationError as exc:
            counter["rejected"] += 1
            return JSONResponse({"error": str(exc)}, 400)
        event = orjson.loads(body)
        received.append({"webhook_id": request.headers["webhook-id"], "event": event})
        print(orjson.dumps({"received": event.get("type"), "id": event.get("id")}).decode(),
              flush=True)
        return JSONResponse({"ok": True})

    @app.get("/received")
    async def list_received() -> JSONResponse:
        return JSONResponse({"received": received, **counter})

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument(
        "--secret", default=os.environ.get("CAREPATH_WEBHOOK_SECRET", DEFAULT_SECRET)
    )
    parser.add_argument("--fail-every", type=int, default=0)
    args = parser.parse_args()
    uvicorn.run(create_app(args.secret, args.fail_every), host="127.0.0.1", port=args.port,
                log_level="warning")


if __name__ == "__main__":
    main()
