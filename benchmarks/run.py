"""``python -m benchmarks.run``: engine, pipeline, raw baseline, memory, profile -> bench-results/.

Every knob is a flag, and most have an environment variable (flags win):

  --episodes N       BENCH_EPISODES        episodes of the saturation phases (default 1000)
  --rates R,R        BENCH_RATES           fixed offered rates, episodes/s (default 10,200,1000)
  --rate-seconds S   BENCH_RATE_SECONDS    a fixed-rate phase sends rate x S episodes, at least
                                           200 and at most N (default 5)
  --engine-episodes  BENCH_ENGINE_EPISODES episodes per engine pass (default 5000)
  --http-episodes    BENCH_HTTP_EPISODES   episodes POSTed to intake in a last phase (default 200)
  --profile-episodes BENCH_PROFILE_EPISODES episodes of the profiling run, 0 skips (default 400)
  --profile-rate R   BENCH_PROFILE_RATE    its offered rate, episodes/s (default 0: saturation)
  --burst-posts N    BENCH_BURST_POSTS     POSTs of the load-held burst, 0 skips (default 2000)
  --burst-concurrency                      requests in flight in the burst (default 64)
  --backfill-episodes BENCH_BACKFILL_EPISODES stored episodes re-evaluated under
                                           --backfill-profile (default 100000, sis), 0 skips
  --backfill-max-seconds BENCH_BACKFILL_MAX_SECONDS the backfill's time budget; over it, the
                                           rate so far and a projection (default 240, 0: none)
  --skip engine,pipeline,baseline,backfill,profile,burst,console
  --cprofile         also cProfile the services in the profiling run
  --out DIR          default bench-results
  --keep             keep the run's topics and Redis keys (default: deleted at the end)

Kafka and Redis come from KAFKA_BOOTSTRAP_SERVERS / REDIS_URL (default the local ones that
``make infra-up`` starts). Each run works in its own namespace (``bench<hex>``) so it never
touches another run's topics, consumer groups or keys.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pstats
import shlex
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from benchmarks import engine, machine, redis_memory, report
from benchmarks.backfill import run_backfill
from benchmarks.baseline import run_baseline
from benchmarks.kafka_io import PRODUCER_SETTINGS, delete_topics
from benchmarks.memory import find_pid
from benchmarks.pipeline import Phase, default_phases, run_pipeline
from carepath_contracts.topics import PARTITIONS, Topics


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--episodes", type=int, default=int(_env("BENCH_EPISODES", "1000")))
    p.add_argument("--rates", default=_env("BENCH_RATES", "10,200,1000"))
    p.add_argument("--rate-seconds", type=float,
                   default=float(_env("BENCH_RATE_SECONDS", "5")))
    p.add_argument("--engine-episodes", type=int,
                   default=int(_env("BENCH_ENGINE_EPISODES", "5000")))
    p.add_argument("--engine-repeats", type=int, default=5)
    p.add_argument("--http-episodes", type=int,
                   default=int(_env("BENCH_HTTP_EPISODES", "200")),
                   help="episodes POSTed to intake over HTTP in a last phase; 0 skips")
    p.add_argument("--http-concurrency", type=int, default=8)
    p.add_argument("--profile-episodes", type=int,
                   default=int(_env("BENCH_PROFILE_EPISODES", "400")))
    p.add_argument("--profile-rate", type=float,
                   default=float(_env("BENCH_PROFILE_RATE", "0")),
                   help="the profiling run's offered rate, episodes/s (default 0: saturation); "
                        "a low rate shows where one message's latency goes")
    p.add_argument("--cprofile", action="store_true")
    p.add_argument("--burst-posts", type=int, default=int(_env("BENCH_BURST_POSTS", "2000")))
    p.add_argument("--burst-concurrency", type=int, default=64)
    # The backfill phase (benchmarks/backfill.py).
    p.add_argument("--backfill-episodes", type=int,
                   default=int(_env("BENCH_BACKFILL_EPISODES", "100000")))
    p.add_argument("--backfill-profile", default=_env("BENCH_BACKFILL_PROFILE", "sis"))
    p.add_argument("--backfill-max-seconds", type=float,
                   default=float(_env("BENCH_BACKFILL_MAX_SECONDS", "240")))
    p.add_argument("--skip", default=_env("BENCH_SKIP", ""))
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--console-referrals", type=int,
                   default=int(_env("BENCH_CONSOLE_REFERRALS", "5000")))
    p.add_argument("--stall-timeout", type=float, default=90.0,
                   help="give up a phase after this many seconds without progress")
    p.add_argument("--log-level", default=_env("BENCH_SERVICE_LOG_LEVEL", "INFO"),
                   help="the services' CAREPATH_LOG_LEVEL (default INFO, as make run)")
    p.add_argument("--out", default=_env("BENCH_OUT", "bench-results"))
    p.add_argument("--keep", action="store_true")
    return p.parse_args(argv)


async def preflight(bootstrap: str, redis_url: str) -> None:
    import redis.asyncio as aioredis

    from carepath_runtime.kafka_admin import wait_for_kafka

    await wait_for_kafka(bootstrap, timeout=60)
    r = aioredis.Redis.from_url(redis_url)
    try:
        await r.ping()
    finally:
        await r.aclose()


async def cleanup(bootstrap: str, redis_url: str, namespaces: list[str],
                  extra_topics: list[str]) -> None:
    import redis.asyncio as aioredis

    topics = [name for ns in namespaces for name, _ in Topics(ns).all()] + extra_topics
    try:
        await delete_topics(bootstrap, topics)
    except Exception as exc:  # cleanup is best effort
        print(f"warning: could not delete topics: {exc!r}", file=sys.stderr)
    r = aioredis.Redis.from_url(redis_url)
    try:
        for ns in namespaces:
            batch: list[Any] = []
            async for k in r.scan_iter(match=f"{ns}:*", count=1000):
                batch.append(k)
                if len(batch) >= 1000:
                    await r.delete(*batch)
                    batch = []
            if batch:
                await r.delete(*batch)
    finally:
        await r.aclose()


def cprofile_top(path: Path, limit: int = 12) -> list[dict[str, Any]]:
    stats: Any = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    rows = []
    for (filename, line, func), (_cc, nc, tt, ct, _callers) in stats.items():
        if func == "<method 'poll' of 'select.epoll' objects>":
            continue  # idle: the event loop waiting for I/O
        short = filename.split("site-packages/")[-1].split("/work/main/")[-1]
        rows.append({"function": f"{short}:{line}({func})"[-90:], "calls": nc,
                     "tottime_s": round(tt, 3), "cumtime_s": round(ct, 3)})
    rows.sort(key=lambda r: -float(r["tottime_s"]))
    return rows[:limit]


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    out_dir = Path(args.out)
    log_dir = out_dir / "logs"
    run_id = uuid.uuid4().hex[:8]
    started = time.time()
    await preflight(bootstrap, redis_url)

    result: dict[str, Any] = {
        "started_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "command": "python -m benchmarks.run " + shlex.join(sys.argv[1:]),
        "machine": machine.describe(redis_url),
        "settings": {
            "episodes": args.episodes,
            "rates_per_s": rates,
            "rate_phase_seconds": args.rate_seconds,
            "seed": args.seed,
            "partitions_per_topic": PARTITIONS,
            "producer": ", ".join(f"{k}={v}" for k, v in PRODUCER_SETTINGS.items()),
            "service_log_level": args.log_level,
            "kafka": bootstrap,
            "redis": redis_url,
        },
    }
    namespaces: list[str] = []
    extra_topics: list[str] = []
    infra_pids = {name: pid for name, pid in
                  (("kafka (shared)", find_pid("kafka.Kafka")),
                   ("redis (shared)", find_pid("redis-server"))) if pid is not None}
    try:
        if "engine" not in skip:
            print(f"engine: {args.engine_episodes} episodes x {args.engine_repeats} passes "
                  "on one core...", flush=True)
            result["engine"] = await asyncio.to_thread(
                engine.run_engine, args.engine_episodes, args.engine_repeats, args.seed)
        phases = default_phases(args.episodes, rates, args.rate_seconds)
        if args.http_episodes > 0:
            phases.append(Phase("http", args.http_episodes, None, transport="http",
                                http_concurrency=args.http_concurrency))
        if "pipeline" not in skip:
            # Never ending in hex: tests/conftest.py's clean-up deletes namespaces that end
            # in 8-12 hex digits and appear during a test session, other people's included.
            ns = f"bench{run_id}pipe"
            namespaces.append(ns)
            print(f"pipeline: namespace {ns}, phases "
                  + ", ".join(f"{p.label} x {p.episodes}" for p in phases), flush=True)
            result["pipeline"] = await run_pipeline(
                bootstrap, redis_url, phases, seed=args.seed, log_dir=log_dir,
                log_level=args.log_level, stall_timeout=args.stall_timeout, namespace=ns,
                extra_pids=infra_pids,
            )
            # Redis memory per episode, over the keys the pipeline phases left behind.
            result["redis_memory"] = await redis_memory.measure(
                redis_url, ns, sum(ph["episodes"] for ph in result["pipeline"]["phases"]))
        if "baseline" not in skip:
            ns = f"bench{run_id}raw"
            sizes = _hop_sizes(result.get("pipeline"))
            print(f"baseline: raw relay chain, output bytes per hop {sizes}", flush=True)
            base = await run_baseline(
                bootstrap, namespace=ns, n=args.episodes,
                phases=[(p.name, p.episodes, p.rate) for p in phases
                        if p.transport == "kafka"],
                out_bytes=sizes,
                seed=args.seed, log_dir=log_dir, stall_timeout=args.stall_timeout,
            )
            extra_topics += base.pop("topics")
            result["baseline"] = base
        if "console" not in skip:
            from benchmarks import console

            print(f"console: {args.console_referrals} open referrals, first render", flush=True)
            result["console"] = await asyncio.to_thread(console.run, bootstrap, redis_url,
                                                        log_dir, args.console_referrals)
        if "pipeline" in result and "baseline" in result:
            result["comparison"] = report.compare(result["pipeline"], result["baseline"])
        if "backfill" not in skip and args.backfill_episodes > 0:
            ns = f"bench{run_id}backfill"
            namespaces.append(ns)
            result["backfill"] = await run_backfill(
                bootstrap, redis_url, episodes=args.backfill_episodes,
                profile=args.backfill_profile, seed=args.seed, log_dir=log_dir, namespace=ns,
                stall_timeout=args.stall_timeout, log_level=args.log_level,
                max_seconds=args.backfill_max_seconds or None,
            )
        if "profile" not in skip and args.profile_episodes > 0:
            ns = f"bench{run_id}prof"
            namespaces.append(ns)
            prof_dir = out_dir / "profile"
            prof_rate = args.profile_rate or None
            print(f"profile: {args.profile_episodes} episodes at "
                  f"{'saturation' if prof_rate is None else f'{prof_rate:g}/s'} with section "
                  f"timers{' and cProfile' if args.cprofile else ''}", flush=True)
            prof = await run_pipeline(
                bootstrap, redis_url, [Phase("prof", args.profile_episodes, prof_rate)],
                seed=args.seed, log_dir=log_dir, log_level=args.log_level,
                stall_timeout=args.stall_timeout, namespace=ns, profile_dir=prof_dir,
                cprofile=args.cprofile,
            )
            result["profile"] = _profile_section(prof, prof_dir, args.cprofile)
        if "burst" not in skip and args.burst_posts > 0:
            from benchmarks.burst import run_burst

            ns = f"bench{run_id}burst"
            namespaces.append(ns)
            print(f"burst: {args.burst_posts} POSTs, {args.burst_concurrency} in flight",
                  flush=True)
            result["burst"] = await run_burst(
                bootstrap, redis_url, namespace=ns, log_dir=log_dir, n=args.burst_posts,
                concurrency=args.burst_concurrency, seed=args.seed, log_level=args.log_level)
    finally:
        if not args.keep:
            await cleanup(bootstrap, redis_url, namespaces, extra_topics)
    result["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["duration_s"] = round(time.time() - started, 1)
    return result


def _hop_sizes(pipeline: dict[str, Any] | None) -> list[int]:
    """Relay output sizes per hop: the pipeline's mean record sizes (or typical ones)."""
    sizes = {"recommendations_mean": 4400.0, "referral_created_mean": 330.0}
    if pipeline:
        measured = pipeline["phases"][0]["sizes_bytes"]
        sizes.update({k: v for k, v in measured.items() if v})
    webhook = sizes["referral_created_mean"]
    return [int(sizes["recommendations_mean"]), int(sizes["referral_created_mean"]),
            int(webhook)]


def _profile_section(prof: dict[str, Any], prof_dir: Path, with_cprofile: bool) -> dict[str, Any]:
    sections: dict[str, Any] = {}
    top: dict[str, Any] = {}
    for svc in ("pathway", "referrals", "notifications"):
        path = prof_dir / f"{svc}.sections.json"
        if path.exists():
            sections[svc] = orjson.loads(path.read_bytes())
        prof_path = prof_dir / f"{svc}.prof"
        if with_cprofile and prof_path.exists():
            top[svc] = cprofile_top(prof_path)
    phase = prof["phases"][0]
    out: dict[str, Any] = {
        "note": f"wall-clock ms per call of each seam, {phase['phase']} run at "
                f"{phase['offered']} of {phase['episodes']} episodes (busy rates "
                f"{phase['hop_busy_rate']})",
        "sections": sections,
        "hop_latency": phase["hop_latency"],
    }
    if top:
        out["cprofile_top"] = top
    return out


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    result = asyncio.run(main_async(args))
    json_path, txt_path = report.write(result, Path(args.out))
    print()
    print(txt_path.read_text())
    print(f"wrote {json_path} and {txt_path} in {result['duration_s']} s")


if __name__ == "__main__":
    main()
