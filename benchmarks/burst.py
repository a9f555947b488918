"""The load-held phase: a burst of 2,000 POSTs with 64 in flight against intake.

Intake must answer each with 202, or with 429/503 carrying ``Retry-After`` when it sheds
load, never anything else and never a dropped connection; and every accepted episode must get
its referrals. The phase starts its own stack on a fresh namespace, fires the burst (one
``Idempotency-Key`` per episode, no retries: what is measured is intake's first answer), then
waits until every accepted episode's referrals are in Redis.

Reported: answers by status, how many refusals lacked ``Retry-After`` (must be 0), other
failures (must be 0), p50/p99/max response time, burst throughput, and the accepted episodes
still missing referrals when the wait ended (must be 0).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis

from benchmarks.stats import percentile
from carepath_contracts.episode import parse_episode
from carepath_pathway.domain import evaluate, get_profile
from carepath_referrals.plan_store import episode_index_key
from carepath_testkit.episodes import random_episode
from carepath_testkit.processes import start_stack

SHED = frozenset({429, 503})


def _expected(ep: dict[str, Any]) -> int:
    return len(evaluate(parse_episode(ep), get_profile("seed")).recommendations)


async def _burst(url: str, episodes: list[dict[str, Any]], concurrency: int
                 ) -> tuple[Counter[str], list[float], list[str], int]:
    answers: Counter[str] = Counter()
    latencies: list[float] = []
    accepted: list[str] = []
    missing_retry_after = 0
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for ep in episodes:
        queue.put_nowait(ep)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal missing_retry_after
        while not queue.empty():
            ep = queue.get_nowait()
            t0 = time.perf_counter()
            try:
                r = await client.post(url + "/episodes", json=ep,
                                      headers={"Idempotency-Key": f"burst-{ep['episode_id']}",
                                               "Authorization": "Bearer dev-ehr-token"})
                status = str(r.status_code)
                if r.status_code in SHED and not r.headers.get("retry-after"):
                    missing_retry_after += 1
                if r.status_code == 202:
                    accepted.append(ep["episode_id"])
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            latencies.append(time.perf_counter() - t0)
            answers[status] += 1

    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return answers, latencies, accepted, missing_retry_after


async def _referral_count(redis_url: str, ns: str, episode_ids: list[str]) -> dict[str, int]:
    r = aioredis.Redis.from_url(redis_url)
    try:
        async with r.pipeline(transaction=False) as pipe:
            for ep in episode_ids:
                pipe.scard(episode_index_key(ns, ep))
            counts = await pipe.execute()
        return dict(zip(episode_ids, (int(c) for c in counts), strict=True))
    finally:
        await r.aclose()


async def run_burst(bootstrap: str, redis_url: str, *, namespace: str, log_dir: Path,
                    n: int = 2000, concurrency: int = 64, seed: int = 7,
                    settle_s: float = 300.0, log_level: str = "INFO") -> dict[str, Any]:
    from carepath_runtime.kafka_admin import create_topics

    await create_topics(bootstrap, namespace)
    stack = await asyncio.to_thread(start_stack, namespace, bootstrap, redis_url, log_dir,
                                    log_level=log_level, timeout=120)
    try:
        rng = random.Random(seed)
        episodes = [random_episode(rng, f"burst-{i:05d}") for i in range(n)]
        want = {ep["episode_id"]: _expected(ep) for ep in episodes}
        t0 = time.perf_counter()
        answers, latencies, accepted, missing_ra = await _burst(
            stack["intake"].url, episodes, concurrency)
        burst_s = time.perf_counter() - t0
        deadline = time.monotonic() + settle_s
        short: list[str] = list(accepted)
        t1 = time.perf_counter()
        while short and time.monotonic() < deadline:
            counts = await _referral_count(redis_url, namespace, short)
            short = [ep for ep in short if counts[ep] < want[ep]]
            if short:
                await asyncio.sleep(1.0)
        drained_s = time.perf_counter() - t1
    finally:
        await asyncio.to_thread(stack.stop)
    ok_statuses = {"202", "429", "503"}
    return {
        "posts": n,
        "concurrency": concurrency,
        "answers": dict(answers),
        "accepted": len(accepted),
        "shed": sum(answers[s] for s in ("429", "503")),
        "refusals_without_retry_after": missing_ra,
        "other_failures": sum(v for k, v in answers.items() if k not in ok_statuses),
        "latency_ms": {
            "p50": round(percentile(sorted(latencies), 50) * 1000, 1),
            "p99": round(percentile(sorted(latencies), 99) * 1000, 1),
            "max": round(max(latencies) * 1000, 1),
        },
        "burst_s": round(burst_s, 2),
        "answers_per_s": round(n / burst_s, 1),
        "accepted_missing_referrals": len(short),
        "referrals_drained_s": round(drained_s, 1),
    }


def render(section: dict[str, Any]) -> list[str]:
    lat = section["latency_ms"]
    return [
        f"\nBURST  {section['posts']} POSTs to intake, {section['concurrency']} in flight "
        "(load held: 202, or 429/503 with Retry-After)",
        f"answers {section['answers']}; refusals without Retry-After "
        f"{section['refusals_without_retry_after']}; other failures "
        f"{section['other_failures']}",
        f"response time p50 {lat['p50']} ms, p99 {lat['p99']} ms, max {lat['max']} ms; "
        f"{section['answers_per_s']} answers/s",
        f"accepted {section['accepted']}: missing referrals "
        f"{section['accepted_missing_referrals']} (drained in "
        f"{section['referrals_drained_s']} s)",
    ]
