"""The console with a 5,000-referral worklist: time to first render in Chromium, page latency.

Seeds one team's open referrals straight into the referrals service's Redis read model (the
keys :class:`PlanStore` mirrors; building them through the pipeline would measure the pipeline
again), starts the real referrals service and the console, signs in through the console's
development sign-in, and measures

* ``first_render_ms``: navigation start to the first page of cards on screen, in Debian's
  Chromium driven by Playwright (median and max of a few loads);
* ``api_page_ms``: the console's ``/api/worklist`` for the first and a late page (p50/p95).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

from carepath_runtime.kafka_admin import create_topics
from carepath_runtime.settings import Settings
from carepath_testkit.processes import ServiceProcess, free_port, module_argv

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


async def seed(redis_url: str, ns: str, n: int, team: str = "interventional_pain") -> None:
    import redis.asyncio as aioredis

    from carepath_referrals.domain.referral import new_referral
    from carepath_referrals.domain.routing import RoutingDecision
    from carepath_referrals.plan_store import PlanStore
    from carepath_runtime.service import make_runtime

    rt = make_runtime("bench-console", Settings(carepath_namespace=ns, redis_url=redis_url))
    store = PlanStore(rt)
    r = aioredis.Redis.from_url(redis_url)
    now = datetime.now(UTC)
    try:
        pipe = r.pipeline(transaction=False)
        for i in range(n):
            decision = RoutingDecision(step="ablation.rfa", team=team, queue=f"{team}.default",
                                       priority="urgent" if i % 10 == 0 else "routine",
                                       due_at=now + timedelta(hours=i % 400 - 24))
            ref = new_referral(episode_id=f"bench-ep-{i:05d}", recommendation_id=f"rec-{ns}-{i}",
                               decision=decision, now=now, rationale="seeded for the benchmark")
            rid = ref.referral_id
            pipe.set(store.referral_key(ref.episode_id, rid),
                     orjson.dumps(ref.model_dump(mode="json")))
            pipe.hset(store.episode_of, rid, ref.episode_id)
            pipe.sadd(store.team_index(team), rid)
            pipe.sadd(store.all_index, rid)
            if i % 500 == 499:
                await pipe.execute()
                pipe = r.pipeline(transaction=False)
        await pipe.execute()
    finally:
        await r.aclose()
        await rt.redis.aclose()


async def drop(redis_url: str, ns: str) -> None:
    import redis.asyncio as aioredis

    r = aioredis.Redis.from_url(redis_url)
    try:
        batch = [k async for k in r.scan_iter(match=f"{ns}:*", count=1000)]
        for i in range(0, len(batch), 500):
            await r.delete(*batch[i:i + 500])
    finally:
        await r.aclose()


def _pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return round(s[min(len(s) - 1, int(q * len(s)))], 1)


def run(bootstrap: str, redis_url: str, log_dir: Path, n: int = 5000,
        loads: int = 5) -> dict[str, Any]:
    ns = f"benchconsole{uuid.uuid4().hex[:6]}"
    asyncio.run(create_topics(bootstrap, ns))
    asyncio.run(seed(redis_url, ns, n))
    env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "REDIS_URL": redis_url,
           "CAREPATH_NAMESPACE": ns, "CAREPATH_LOG_LEVEL": "WARNING"}
    rport, cport = free_port(), free_port()
    referrals = ServiceProcess("referrals", module_argv("carepath_referrals.main"), rport,
                               {**env, "REFERRALS_PORT": str(rport)},
                               log_dir / f"{ns}-referrals.log")
    console = ServiceProcess("console", module_argv("carepath_console.main"), cport,
                             {**env, "CONSOLE_PORT": str(cport), "REFERRALS_PORT": str(rport),
                              "NOTIFICATIONS_PORT": str(free_port())},
                             log_dir / f"{ns}-console.log")
    out: dict[str, Any] = {"open_referrals": n, "page_size": 50}
    try:
        referrals.start(timeout=120)
        console.start(timeout=120)
        client = httpx.Client(base_url=console.url, timeout=60,
                              headers={"Origin": console.url})
        me = client.post("/auth/dev", json={"subject": "pain@example.org"})
        me.raise_for_status()
        for label, number in (("first_page", 1), ("page_80", 80)):
            times = []
            for _ in range(10):
                t0 = time.perf_counter()
                r = client.get("/api/worklist", params={"queue": "open", "page": number})
                r.raise_for_status()
                times.append((time.perf_counter() - t0) * 1000)
            body = r.json()
            assert body["total"] == n, body["total"]
            out[f"api_{label}_ms"] = {"p50": _pct(times, 0.5), "p95": _pct(times, 0.95)}
        if not Path(CHROMIUM).exists():
            out["first_render_ms"] = "skipped: /usr/bin/chromium missing (deploy/chromium.sh)"
            return out
        os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        from playwright.sync_api import sync_playwright

        sid = client.cookies.get("carepath-session")
        renders = []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
            # bypass_csp: Playwright's wait_for_function evaluates a string (the app's CSP
            # forbids eval); the page itself is unchanged.
            ctx = browser.new_context(base_url=console.url, bypass_csp=True)
            ctx.add_cookies([{"name": "carepath-session", "value": str(sid),
                              "url": console.url, "httpOnly": True, "sameSite": "Strict"}])
            page = ctx.new_page()
            for _ in range(loads):
                page.goto("/worklist?queue=open&sort=due")
                page.wait_for_function("document.body.dataset.rendered", timeout=120_000)
                cards = page.locator("li.card").count()
                assert cards == min(50, n), cards
                renders.append(page.evaluate(
                    "Number(document.body.dataset.rendered) - performance.timeOrigin"))
            browser.close()
        out["first_render_ms"] = {"median": round(statistics.median(renders), 1),
                                  "max": round(max(renders), 1), "loads": loads}
        return out
    finally:
        console.stop()
        referrals.stop()
        asyncio.run(drop(redis_url, ns))
        from benchmarks.kafka_io import delete_topics
        from carepath_contracts.topics import Topics

        asyncio.run(delete_topics(bootstrap, [t for t, _ in Topics(ns).all()]))
