"""The notifications delivery hop alone: a Redis queue of N due webhook jobs drained by the
real :class:`DeliveryWorker` (real queue, destination guard, signer and webhook client) into
:mod:`benchmarks.receiver` on loopback, against the same receiver driven by a bare client.

``python -m benchmarks.notify_drain --jobs 4000 --endpoint-concurrency 1,8 [--delay-ms D]``

* **receiver bound**: pre-signed POSTs over kept-alive connections, ``C`` in flight, no queue,
  no guard, no signing per request: what the receiver takes at that concurrency;
* **drain**: N jobs enqueued for one webhook subscription, then one worker with the endpoint
  limit ``L`` drains them. Its rate is N over the time from the worker's start to the last
  arrival; CPU is this process's (the worker's) CPU seconds per webhook. Attempt events go to
  a stub broker (no Kafka: the pipeline benchmark measures the hop with it).

With ``--delay-ms`` the receiver holds every answer that long (a receiver that does work), so
the figures show whether the rate is the receiver's (about ``L / delay``) or ours.

Upstream hops play no part, so the figure is the delivery path's own (the pipeline's busy rate
of the notifications hop is capped by what referrals feeds it). Redis keys live under a
namespace ``bench<hex>drain`` and are deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis.asyncio as aioredis
import uvicorn
from pydantic import SecretStr

from benchmarks.receiver import Receive, Receiver, Scope, Send
from carepath_contracts.topics import Topics
from carepath_notifications.destination_resolver import DestinationGuard
from carepath_notifications.domain.destination_guard import Allowlist
from carepath_notifications.domain.jobs import DeliveryJob
from carepath_notifications.domain.retry_policy import RetryPolicy
from carepath_notifications.domain.signing import build_headers
from carepath_notifications.domain.subscriptions import Subscription
from carepath_notifications.job_queue import JobQueue
from carepath_notifications.main import make_senders
from carepath_notifications.subscription_store import SubscriptionStore
from carepath_notifications.webhook_client import DirectWebhookClient
from carepath_notifications.worker import DeliveryWorker, WorkerConfig
from carepath_runtime.log import configure_logging
from carepath_runtime.settings import Settings
from carepath_testkit.processes import ServiceProcess, free_port, module_argv, new_webhook_secret

CREATED = "carepath.referral.created.v1"


class SlowReceiver(Receiver):
    """:class:`benchmarks.receiver.Receiver` that holds each webhook's answer ``delay_s``."""

    def __init__(self, secret: str, delay_s: float) -> None:
        super().__init__(secret)
        self.delay_s = delay_s

    async def _webhook(self, scope: Scope, receive: Receive, send: Send) -> None:
        await asyncio.sleep(self.delay_s)
        await super()._webhook(scope, receive, send)


class StubBroker:
    """Takes the attempt events the worker publishes and drops them."""

    published = 0

    async def publish(self, *_: Any, **__: Any) -> None:
        self.published += 1


def notice(i: int, run: str) -> bytes:
    return orjson.dumps({
        "id": f"{run}-ev{i}", "type": CREATED, "source": "/carepath/referrals",
        "time": "2026-01-02T03:04:05+00:00",
        "data": {"episode_id": f"{run}-ep{i // 4}", "referral_id": f"{run}-ref{i}",
                 "team": "radiology", "priority": "routine", "step": "imaging"},
    })


async def receiver_count(client: httpx.AsyncClient, url: str) -> int:
    return int((await client.get(f"{url}/count", timeout=10)).json()["count"])


async def wait_count(url: str, target: int, timeout: float = 300.0) -> float:
    """Poll the receiver until it has ``target`` arrivals; the time of the last one."""
    async with httpx.AsyncClient() as client:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await receiver_count(client, url) >= target:
                arrivals = (await client.get(f"{url}/arrivals", timeout=60)).json()["arrivals"]
                return max(float(a[0]) for a in arrivals)
            await asyncio.sleep(0.05)
    raise TimeoutError(f"receiver did not get {target} webhooks in {timeout} s")


async def receiver_bound(url: str, secret: str, n: int, concurrency: int, run: str
                         ) -> dict[str, Any]:
    client = DirectWebhookClient(timeout_s=10.0, connect_timeout_s=2.0, max_idle=concurrency)
    async with httpx.AsyncClient() as c:
        base = await receiver_count(c, url)
    bodies = [notice(i, run) for i in range(n)]
    requests = [(b, build_headers(secret, f"msg_{run}{i}", int(time.time()), b))
                for i, b in enumerate(bodies)]
    it = iter(requests)

    async def lane() -> None:
        for body, headers in it:
            await client.post(f"{url}/webhook", body, headers)

    started = time.time()
    cpu = time.process_time()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    cpu = time.process_time() - cpu
    last = await wait_count(url, base + n)
    await client.aclose()
    return {"what": f"receiver bound, {concurrency} in flight", "webhooks": n,
            "per_s": round(n / (last - started), 1),
            "client_cpu_ms_per_webhook": round(1000 * cpu / n, 3)}


async def drain(redis_url: str, url: str, secret: str, n: int, limit: int, max_inflight: int,
                run: str) -> dict[str, Any]:
    namespace = f"bench{run}drain"
    redis = aioredis.Redis.from_url(redis_url)
    settings = Settings(redis_url=redis_url)
    sub = Subscription(id="drain", subscriber="bench", kind="system", event_types=["*"],
                       channel="webhook", url=f"{url}/webhook", secret=SecretStr(secret))
    port = url.rsplit(":", 1)[1]
    guard = DestinationGuard(Allowlist.parse(f"127.0.0.1:{port}"))
    store = SubscriptionStore(redis, namespace, [sub], guard=guard)
    queue = JobQueue(redis, namespace, limit)
    client = DirectWebhookClient(timeout_s=10.0, connect_timeout_s=2.0, max_idle=max_inflight)
    broker = StubBroker()
    worker = DeliveryWorker(queue, store, make_senders(settings, client, guard),
                            RetryPolicy(max_attempts=8, base_delay_s=1.0, max_delay_s=300.0),
                            Topics(namespace), broker,  # type: ignore[arg-type]
                            WorkerConfig(max_inflight=max_inflight))
    try:
        async with httpx.AsyncClient() as c:
            base = await receiver_count(c, url)
        now = int(time.time() * 1000)
        jobs = [DeliveryJob.new(event_id=f"{run}-ev{i}", event_type=CREATED,
                                subscription_id=sub.id, channel="webhook", endpoint=sub.id,
                                body=notice(i, run), now_ms=now) for i in range(n)]
        for i in range(0, n, 500):
            await queue.enqueue_many(jobs[i:i + 500])
        started = time.time()
        cpu = time.process_time()
        worker.start()
        last = await wait_count(url, base + n)
        cpu = time.process_time() - cpu
        await worker.stop()
        return {"what": f"drain, endpoint limit {limit}, {max_inflight} in flight in all",
                "webhooks": n, "per_s": round(n / (last - started), 1),
                "worker_cpu_ms_per_webhook": round(1000 * cpu / n, 3),
                "attempt_events": broker.published, "delivered": worker.delivered}
    finally:
        await client.aclose()
        keys = [k async for k in redis.scan_iter(match=f"{namespace}:*", count=1000)]
        for i in range(0, len(keys), 1000):
            await redis.delete(*keys[i:i + 1000])
        await redis.aclose()


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    configure_logging("notifications", "INFO")  # as the service runs (per-job lines DEBUG)
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    secret = new_webhook_secret()
    port = free_port()
    receiver = ServiceProcess(
        "receiver", module_argv("benchmarks.notify_drain", "receiver", "--port", str(port),
                                "--delay-ms", str(args.delay_ms)), port,
        {"CAREPATH_WEBHOOK_SECRET": secret}, Path(args.log_dir) / "drain-receiver.log")
    await asyncio.to_thread(receiver.start, "/count", 60.0)
    results: list[dict[str, Any]] = []
    try:
        for repeat in range(args.repeats):
            for c in args.receiver_concurrency:
                run = uuid.uuid4().hex[:6] + "x"
                results.append(await receiver_bound(receiver.url, secret, args.jobs, c, run))
                print(orjson.dumps({**results[-1], "repeat": repeat}).decode(), flush=True)
            for limit in args.endpoint_concurrency:
                run = uuid.uuid4().hex[:6] + "x"
                results.append(await drain(redis_url, receiver.url, secret, args.jobs, limit,
                                           args.max_inflight, run))
                print(orjson.dumps({**results[-1], "repeat": repeat}).decode(), flush=True)
    finally:
        await asyncio.to_thread(receiver.stop)
    return results


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def serve_receiver(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.notify_drain receiver")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--delay-ms", type=float, default=0.0)
    args = p.parse_args(argv)
    secret = os.environ["CAREPATH_WEBHOOK_SECRET"]
    app = SlowReceiver(secret, args.delay_ms / 1000) if args.delay_ms else Receiver(secret)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["receiver"]:
        serve_receiver(argv[1:])
        return
    p = argparse.ArgumentParser(prog="python -m benchmarks.notify_drain", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=4000)
    p.add_argument("--endpoint-concurrency", type=_ints, default=[1, 8])
    p.add_argument("--receiver-concurrency", type=_ints, default=[1, 8])
    p.add_argument("--max-inflight", type=int, default=64)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--delay-ms", type=float, default=0.0,
                   help="the receiver holds each answer this long (default 0)")
    p.add_argument("--log-dir", default="bench-results/logs")
    args = p.parse_args(argv)
    asyncio.run(main_async(args))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
