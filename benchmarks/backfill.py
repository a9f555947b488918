"""Backfill: N stored episodes re-evaluated under another profile, start to last care plan.

Method (see docs/benchmarks.md):

* a fresh namespace; the four services run as real processes (webhooks off: no
  subscription, so notifications consumes and matches nothing);
* N episodes are *stored* in the pathway's state store, as the Kafka handler stores them
  after a first evaluation under the ``seed`` profile: state (episode, active
  recommendations, ``evaluation_seq`` 1), the input in ``seen`` and the published marker.
  To seed 100,000 quickly, up to ``templates`` distinct episodes of the mix are evaluated
  for real and the rest are clones of them under new ids (the active recommendation ids are
  recomputed for each clone, exactly as ``reconcile`` derives them); the referrals service
  holds no care plan for them yet, so each re-evaluation *creates* its care plan (one
  ``careplan.updated``, four ``referral.created`` and four ``audit.recorded`` on average);
* the clock starts, then the product's own command runs as its own process:
  ``carepath-pathway reevaluate --profile <profile>``
  (:mod:`carepath_pathway.reevaluation`); it walks the stored states and publishes one
  recommendation event per episode; referrals folds each into a care plan;
* the phase ends when the care-plans topic holds N records; its time is from the start of
  the command to the Kafka timestamp of the last care-plan record (CreateTime, stamped by
  referrals when it publishes). With a time budget (``max_seconds``) a phase that runs over
  stops the command there and reports the care plans updated so far, their rate, and the
  time all N would take at that rate.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis
from tqdm import tqdm

from benchmarks.kafka_io import wait_for
from benchmarks.memory import RssSampler
from benchmarks.stats import rate
from carepath_contracts.envelope import derive_id
from carepath_contracts.events import EPISODE_SUBMITTED
from carepath_contracts.topics import Topics
from carepath_runtime.state_store import StateStore, StoredState
from carepath_testkit.episodes import episode_mix
from carepath_testkit.kafka_reading import end_offsets, read_range
from carepath_testkit.processes import start_stack


def stored_states(n: int, *, seed: int, prefix: str, templates: int = 2000
                  ) -> Any:
    """(episode id, pathway state dict) of ``n`` episodes evaluated once under ``seed``."""
    from carepath_contracts.episode import parse_episode
    from carepath_pathway.domain import get_profile
    from carepath_pathway.domain.reconcile import recommendation_id
    from carepath_pathway.episode_state import on_submitted

    profile = get_profile("seed")
    bases = []
    for raw in episode_mix(min(n, templates), seed=seed, prefix=f"{prefix}-t"):
        state, _ = on_submitted(None, parse_episode(raw), profile)
        bases.append(state.dump())
    for i in range(n):
        base = bases[i % len(bases)]
        episode_id = f"{prefix}-{i:07d}"
        data = {**base, "episode": {**base["episode"], "episode_id": episode_id},
                "active": {step: recommendation_id(episode_id, step, 1)
                           for step in base["active"]}}
        yield episode_id, data


async def seed_store(redis_url: str, namespace: str, n: int, *, seed: int,
                     batch: int = 1000) -> float:
    """Write ``n`` stored episodes; returns the seconds it took."""
    started = time.monotonic()
    client = aioredis.Redis.from_url(redis_url)
    store = StateStore(client, namespace, "pathway")
    try:
        pipe = client.pipeline(transaction=False)
        pending = 0
        for episode_id, data in stored_states(n, seed=seed, prefix=f"{namespace}-ep"):
            input_id = derive_id(EPISODE_SUBMITTED, episode_id, "bench-seed")
            state: StoredState[dict[str, Any]] = StoredState(
                data=data, version=1, last_input=input_id, seen=[input_id])
            pipe.set(store.state_key(episode_id), state.to_bytes())
            pipe.set(store.published_key(episode_id), input_id.encode())
            pending += 1
            if pending >= batch:
                await pipe.execute()
                pending = 0
        if pending:
            await pipe.execute()
    finally:
        await client.aclose()
    return time.monotonic() - started


def _spawn(argv: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, env=env)


async def _last_timestamp_ms(bootstrap: str, topic: str) -> int:
    """The Kafka timestamp of the newest record of ``topic`` (the last of each partition)."""
    ends = await end_offsets(bootstrap, [topic])
    starts = {tp: max(0, e - 1) for tp, e in ends.items()}
    records = await read_range(bootstrap, ends, starts)
    return max((int(r.timestamp) for r in records), default=0)


async def run_backfill(
    bootstrap: str,
    redis_url: str,
    *,
    episodes: int,
    profile: str,
    seed: int,
    log_dir: Path,
    namespace: str,
    concurrency: int = 32,
    stall_timeout: float = 90.0,
    max_seconds: float | None = None,
    log_level: str = "INFO",
) -> dict[str, Any]:
    from carepath_runtime.kafka_admin import create_topics

    topics = Topics(namespace)
    await create_topics(bootstrap, namespace)
    print(f"backfill: seeding {episodes:,} stored episodes in {namespace}", flush=True)
    seed_seconds = await seed_store(redis_url, namespace, episodes, seed=seed)
    stack = await asyncio.to_thread(
        start_stack, namespace, bootstrap, redis_url, log_dir, log_level=log_level,
        extra_env={"CAREPATH_WEBHOOK_URL": ""},  # no subscription: no webhooks
        receiver_module="benchmarks.receiver", receiver_health="/count", timeout=90.0,
    )
    request_id = f"bench-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "REDIS_URL": redis_url,
           "CAREPATH_NAMESPACE": namespace, "CAREPATH_LOG_LEVEL": "WARNING"}
    argv = [sys.executable, "-m", "carepath_pathway.main", "reevaluate", "--profile", profile,
            "--request-id", request_id, "--concurrency", str(concurrency)]
    try:
        async def care_plans() -> int:
            ends = await end_offsets(bootstrap, [topics.care_plans])
            return sum(ends.values())

        bar = tqdm(total=episodes, desc="backfill care plans", unit="episode",
                   dynamic_ncols=True, mininterval=1.0)

        def progress(n: int) -> None:
            bar.n = min(n, episodes)
            bar.refresh()

        started = time.time()
        command = await asyncio.to_thread(_spawn, argv, env,
                                          log_dir / f"{namespace}-reevaluate.log")
        finished: dict[str, Any] = {}

        def wait_command() -> None:
            finished["out"], _ = command.communicate()
            finished["at"] = time.time()

        waiter = asyncio.create_task(asyncio.to_thread(wait_command))
        pids = {**stack.pids(), "reevaluate command": command.pid}
        with RssSampler(pids) as sampler:
            _, complete = await wait_for(
                care_plans, episodes, stall_timeout=stall_timeout, on_progress=progress,
                deadline=time.monotonic() + max_seconds if max_seconds else None)
            if not complete and command.poll() is None:
                command.terminate()  # over budget: stop the command, report what was done
            await waiter
        bar.close()
        out = finished.get("out") or b""
        command_done = float(finished["at"])
        last_plan = await _last_timestamp_ms(bootstrap, topics.care_plans) / 1000
        last_rec = await _last_timestamp_ms(bootstrap, topics.recommendations) / 1000
        plans = await care_plans()
        recs = sum((await end_offsets(bootstrap, [topics.recommendations])).values())
    finally:
        await asyncio.to_thread(stack.stop)
    summary: dict[str, Any] = {}
    lines = out.decode().strip().splitlines()
    if lines and lines[-1].startswith("{"):
        summary = orjson.loads(lines[-1])
    seconds = last_plan - started
    done = min(plans, episodes)
    per_s = rate(done, started, last_plan)
    return {
        "namespace": namespace,
        "episodes": episodes,
        "profile": profile,
        "command": "carepath-pathway reevaluate --profile " + profile
                   + f" --concurrency {concurrency}",
        "complete": bool(complete and plans >= episodes and command.returncode == 0),
        "max_seconds": max_seconds,
        "care_plans_updated": done,
        "command_exit_code": command.returncode,
        "command_summary": summary,
        "seed_seconds": round(seed_seconds, 1),
        "seconds_to_last_care_plan": round(seconds, 1),
        "episodes_per_s": per_s,
        # Over budget: how long all N would take at the rate measured.
        "projected_seconds_for_all": round(episodes / per_s, 1) if per_s else None,
        "pathway": {
            "recommendations_published": recs,
            "command_seconds": round(command_done - started, 1),
            "seconds_to_last_recommendation": round(last_rec - started, 1),
            "episodes_per_s": rate(min(recs, episodes), started, last_rec),
        },
        "memory": sampler.summary(),
    }


def main() -> None:  # pragma: no cover - manual runs
    import argparse

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--episodes", type=int, default=1000)
    p.add_argument("--profile", default="sis")
    args = p.parse_args()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    from benchmarks.run import cleanup

    ns = f"bench{uuid.uuid4().hex[:8]}backfill"
    try:
        result = asyncio.run(run_backfill(bootstrap, redis_url, episodes=args.episodes,
                                          profile=args.profile, seed=7,
                                          log_dir=Path("bench-results/logs"), namespace=ns))
    finally:
        asyncio.run(cleanup(bootstrap, redis_url, [ns], []))
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
