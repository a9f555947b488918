"""A lean webhook receiver for the pipeline benchmark: verifies, timestamps, counts.

Runs as its own process (``python -m benchmarks.receiver --port P``), a bare ASGI app under
uvicorn, so the receiving side costs as little as possible. Each verified call is recorded
with its arrival time (``time.time()``), event type, episode id and referral id;
``GET /count`` answers the numbers so far (in all and per event type) and ``GET /arrivals``
the whole list.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
import uvicorn

from carepath_runtime.webhook_verify import WebhookVerificationError, verify

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class Receiver:
    def __init__(self, secret: str) -> None:
        self.secret = secret
        # (arrival unix time, event type, episode id, referral id, webhook id)
        self.arrivals: list[tuple[float, str, str, str, str]] = []
        self.by_type: dict[str, int] = {}
        self.rejected = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        if scope["method"] == "POST":
            await self._webhook(scope, receive, send)
        elif scope["path"] == "/arrivals":
            await _answer(send, 200, {"arrivals": self.arrivals, "rejected": self.rejected})
        else:
            await _answer(send, 200, {"count": len(self.arrivals), "by_type": self.by_type,
                                      "rejected": self.rejected})

    async def _webhook(self, scope: Scope, receive: Receive, send: Send) -> None:
        arrived = time.time()
        chunks: list[bytes] = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            verify(self.secret, headers, body)
        except WebhookVerificationError:
            self.rejected += 1
            await _answer(send, 400, {"error": "signature"})
            return
        event = orjson.loads(body)
        data = event.get("data") or {}
        event_type = str(event.get("type"))
        self.by_type[event_type] = self.by_type.get(event_type, 0) + 1
        self.arrivals.append(
            (arrived, event_type, str(data.get("episode_id")), str(data.get("referral_id")),
             headers.get("webhook-id", ""))
        )
        await _answer(send, 200, {"ok": True})


async def _answer(send: Send, status: int, payload: dict[str, Any]) -> None:
    body = orjson.dumps(payload)
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())],
    })
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", default=os.environ.get("CAREPATH_WEBHOOK_SECRET"))
    args = parser.parse_args()
    if not args.secret:
        parser.error("no signing secret: pass --secret or set CAREPATH_WEBHOOK_SECRET")
    uvicorn.run(Receiver(args.secret), host="127.0.0.1", port=args.port,
                log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
