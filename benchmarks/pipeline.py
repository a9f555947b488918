"""Pipeline: episodes into the episodes topic, referrals and webhooks out, through real services.

Method (see docs/benchmarks.md):

* the four services run as real processes on a fresh namespace
  (:func:`carepath_testkit.processes.start_stack`), with :mod:`benchmarks.receiver` as the
  webhook endpoint; with a profile directory, pathway, referrals and notifications run under
  :mod:`benchmarks.profiled`;
* pre-built ``episode.submitted`` records (shared envelope, deterministic ids, the body model
  intake uses) are published straight to the episodes topic by a producer with Carepath's own
  settings; ``ce_time`` is stamped just before each send. Intake's HTTP layer is *not* on the
  measured path of these phases;
* a last, separate phase POSTs episodes to intake's HTTP API (``Idempotency-Key`` set, a fixed
  number of requests in flight) and measures intake's accept rate and response time; its
  latencies start when the request is sent;
* a phase sends its episodes at a fixed offered rate, or at saturation (as fast as the
  producer accepts them), then waits until the receiver has every expected webhook;
* afterwards the phase's records are read back from the recommendations and referrals
  topics. Latencies are Kafka record timestamps (CreateTime, stamped by the producing
  service when it publishes) and receiver arrival times, minus the episode's ``ce_time``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
from tqdm import tqdm

from benchmarks.kafka_io import (
    SendResult,
    make_producer,
    post_episodes,
    read_range,
    send_episodes,
    wait_for,
)
from benchmarks.memory import RssSampler
from benchmarks.profiled import profiled_argv
from benchmarks.stats import busy_rate, latency_summary, rate
from benchmarks.workload import prepare
from carepath_contracts.events import REFERRAL_CREATED
from carepath_contracts.topics import Topics
from carepath_testkit.episodes import episode_mix
from carepath_testkit.kafka_reading import end_offsets
from carepath_testkit.processes import Stack, start_stack


@dataclass(frozen=True)
class Phase:
    name: str
    episodes: int
    rate: float | None  # None: saturation
    # "kafka": pre-built records straight to the episodes topic; "http": POST /episodes to
    # intake with ``http_concurrency`` requests in flight (then rate is ignored).
    transport: str = "kafka"
    http_concurrency: int = 8

    @property
    def label(self) -> str:
        if self.transport == "http":
            return f"HTTP x{self.http_concurrency}"
        return "saturation" if self.rate is None else f"{self.rate:g}/s"

    @property
    def offered(self) -> float | str:
        if self.transport == "http":
            return f"intake HTTP, {self.http_concurrency} in flight"
        return "saturation" if self.rate is None else self.rate


def expected_referrals(episodes: list[dict[str, Any]]) -> dict[str, int]:
    """Referrals each episode should yield: one per recommendation of a first evaluation."""
    from carepath_contracts.episode import parse_episode
    from carepath_pathway.domain import evaluate, get_profile

    profile = get_profile("seed")
    return {
        str(e["episode_id"]): len(evaluate(parse_episode(e), profile).recommendations)
        for e in episodes
    }


async def _receiver_count(client: httpx.AsyncClient, url: str) -> int:
    """referral.created webhooks received so far (other event types are not counted)."""
    r = await client.get(f"{url}/count", timeout=10)
    return int(r.json()["by_type"].get(REFERRAL_CREATED, 0))


async def run_phase(
    stack: Stack,
    bootstrap: str,
    phase: Phase,
    *,
    seed: int,
    run_id: str,
    stall_timeout: float,
) -> dict[str, Any]:
    topics = Topics(stack.namespace)
    raw = episode_mix(phase.episodes, seed=seed, prefix=f"{run_id}-{phase.name}")
    expected = expected_referrals(raw)
    prepared = [prepare(e) for e in raw]
    want_refs = sum(expected.values())
    watched = [topics.recommendations, topics.referrals]
    start_offsets = await end_offsets(bootstrap, watched)
    receiver = stack["receiver"].url

    async with httpx.AsyncClient() as client:
        base = await _receiver_count(client, receiver)
        bar = tqdm(total=want_refs, desc=f"pipeline {phase.label:>10}", unit="webhook",
                   leave=True, dynamic_ncols=True, mininterval=1.0)
        sent_box = {"n": 0}

        def sent(n: int) -> None:
            sent_box["n"] = n
            bar.set_postfix_str(f"sent {n}/{phase.episodes}", refresh=False)

        def progress(count: int) -> None:
            bar.n = min(want_refs, count - base)
            bar.refresh()

        producer = make_producer(bootstrap)
        await producer.start()
        try:
            if phase.transport == "http":
                send_task = asyncio.create_task(
                    post_episodes(stack["intake"].url, raw, phase.http_concurrency, sent)
                )
            else:
                send_task = asyncio.create_task(
                    send_episodes(producer, topics.episodes, prepared, phase.rate, sent)
                )

            async def count() -> int:
                return await _receiver_count(client, receiver)

            while not send_task.done():
                progress(await count())
                await asyncio.sleep(0.5)
            sent_result = await send_task
        finally:
            await producer.stop()
        final, complete = await wait_for(count, base + want_refs,
                                         stall_timeout=stall_timeout, on_progress=progress)
        finished = time.time()
        bar.close()
        arrivals_all = (await client.get(f"{receiver}/arrivals", timeout=60)).json()
    # Give the last referral/careplan records a moment to be durable before reading back.
    await asyncio.sleep(0.5)
    stop_offsets = await end_offsets(bootstrap, watched)
    records = await read_range(bootstrap, start_offsets, stop_offsets)
    return analyse(phase, sent_result, expected, records, arrivals_all, topics,
                   complete=complete, finished=finished,
                   delivered=final - base,
                   episode_bytes=_mean([len(p.value) for p in prepared]))


def analyse(
    phase: Phase,
    sent: SendResult,
    expected: dict[str, int],
    records: list[Any],
    arrivals_all: dict[str, Any],
    topics: Topics,
    *,
    complete: bool,
    finished: float,
    delivered: int,
    episode_bytes: float | None = None,
) -> dict[str, Any]:
    sent_ms = {ep: t * 1000 for ep, t in sent.sent_at.items()}
    rec_ts: dict[str, int] = {}
    ref_ts: dict[str, int] = {}
    ref_episode: dict[str, str] = {}
    rec_bytes: list[int] = []
    ref_bytes: list[int] = []
    referral_hop_inputs: dict[str, int] = defaultdict(int)
    out_records = 0
    for r in records:
        if r.key not in sent_ms:
            continue
        if r.topic == topics.recommendations:
            rec_ts.setdefault(r.key, r.timestamp_ms)
            rec_bytes.append(len(r.value))
        elif r.topic == topics.referrals and r.headers.get("ce_type") == REFERRAL_CREATED:
            body = orjson.loads(r.value)
            rid = str(body["referral_id"])
            if rid not in ref_ts:
                ref_ts[rid] = r.timestamp_ms
                ref_episode[rid] = r.key
                referral_hop_inputs[r.key] += 1
                ref_bytes.append(len(r.value))
        out_records += 1
    arrivals: dict[str, float] = {}
    duplicates = 0
    for t, event_type, episode_id, rid, _wid in arrivals_all["arrivals"]:
        if episode_id not in sent_ms or event_type != REFERRAL_CREATED:
            continue
        if rid in arrivals:
            duplicates += 1
            continue
        arrivals[rid] = t * 1000

    lat_rec = [rec_ts[e] - sent_ms[e] for e in rec_ts]
    lat_ref = [ref_ts[r] - sent_ms[ref_episode[r]] for r in ref_ts]
    lat_notify = [arrivals[r] - sent_ms[ref_episode[r]] for r in arrivals if r in ref_episode]
    hop_referrals = [ref_ts[r] - rec_ts[ref_episode[r]] for r in ref_ts
                     if ref_episode[r] in rec_ts]
    hop_notify = [arrivals[r] - ref_ts[r] for r in arrivals if r in ref_ts]

    t0 = sent.first
    last_rec = max(rec_ts.values(), default=0) / 1000
    last_ref = max(ref_ts.values(), default=0) / 1000
    last_arrival = max(arrivals.values(), default=0) / 1000
    first_ref = min(ref_ts.values(), default=0) / 1000
    first_rec = min(rec_ts.values(), default=0) / 1000
    episodes_done = {ref_episode[r] for r in arrivals if r in ref_episode}
    want_refs = sum(expected.values())
    result: dict[str, Any] = {
        "phase": phase.name,
        "transport": phase.transport,
        "offered": phase.offered,
        "episodes": phase.episodes,
        "expected_referrals": want_refs,
        "complete": complete and len(arrivals) >= want_refs,
        "counts": {
            "recommendations": len(rec_ts),
            "referrals_created": len(ref_ts),
            "webhooks_delivered": len(arrivals),
            "webhook_duplicates": duplicates,
            "receiver_count_delta": delivered,
            "rejected_signatures": int(arrivals_all.get("rejected", 0)),
        },
        "sizes_bytes": {
            "episode_submitted_mean": episode_bytes,
            "recommendations_mean": _mean(rec_bytes),
            "referral_created_mean": _mean(ref_bytes),
        },
        "throughput": {
            "offered_per_s": sent.offered_rate,
            "send_seconds": round(sent.last - sent.first, 2),
            "phase_seconds": round(finished - t0, 2),
            # over the phase: first send -> last output of the stage
            "episodes_evaluated_per_s": rate(len(rec_ts), t0, last_rec),
            "referrals_created_per_s": rate(len(ref_ts), t0, last_ref),
            "webhooks_delivered_per_s": rate(len(arrivals), t0, last_arrival),
            "episodes_completed_per_s": rate(len(episodes_done), t0, last_arrival),
        },
        "hop_busy_rate": {
            # input messages per second from the hop's first input to its last output
            "pathway_msgs_per_s": busy_rate(len(rec_ts), t0, last_rec),
            "referrals_msgs_per_s": busy_rate(len(referral_hop_inputs), first_rec, last_ref),
            "notifications_msgs_per_s": busy_rate(len(arrivals), first_ref, last_arrival),
        },
        "latency": {
            "intake_to_recommendation": latency_summary(lat_rec),
            "intake_to_referral": latency_summary(lat_ref),
            "intake_to_notification": latency_summary(lat_notify),
        },
        "hop_latency": {
            "pathway": latency_summary(lat_rec),
            "referrals": latency_summary(hop_referrals),
            "notifications": latency_summary(hop_notify),
        },
    }
    if phase.rate is not None and phase.transport == "kafka":
        # Below 90% of the offered rate end to end: a queue built up and latencies are
        # mostly waiting time, growing with the length of the phase.
        done = result["throughput"]["episodes_completed_per_s"]
        result["kept_up"] = bool(done >= 0.9 * min(phase.rate, sent.offered_rate))
    if sent.http_latency_ms:
        result["intake_http"] = {
            "accepted": len(sent.sent_at),
            "accepted_per_s": sent.offered_rate,
            "errors": sent.http_errors,
            "response_latency": latency_summary(sent.http_latency_ms),
        }
    return result


def _mean(values: list[int]) -> float | None:
    return round(sum(values) / len(values), 1) if values else None


def default_phases(
    n: int, rates: list[float], rate_seconds: float, min_rate_episodes: int = 200
) -> list[Phase]:
    """Saturation with ``n`` episodes, then each rate for ``rate_seconds`` (at least
    ``min_rate_episodes`` episodes, at most ``n``)."""
    phases = [Phase("sat", n, None)]
    for r in rates:
        count = min(n, max(int(r * rate_seconds), min_rate_episodes))
        phases.append(Phase(f"r{int(r)}", max(1, count), r))
    return phases


async def run_pipeline(
    bootstrap: str,
    redis_url: str,
    phases: list[Phase],
    *,
    seed: int,
    log_dir: Path,
    log_level: str = "INFO",
    stall_timeout: float = 60.0,
    profile_dir: Path | None = None,
    cprofile: bool = False,
    namespace: str | None = None,
    extra_pids: dict[str, int] | None = None,
    extra_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    from carepath_runtime.kafka_admin import create_topics

    ns = namespace or f"bench{uuid.uuid4().hex[:8]}"
    await create_topics(bootstrap, ns)
    stack = await asyncio.to_thread(
        start_stack, ns, bootstrap, redis_url, log_dir, log_level=log_level, extra_env=extra_env,
        receiver_module="benchmarks.receiver", receiver_health="/count", timeout=90.0,
        service_argv=profiled_argv(profile_dir, cprofile) if profile_dir is not None else None,
    )
    results: list[dict[str, Any]] = []
    try:
        pids = {**stack.pids(), **(extra_pids or {})}
        with RssSampler(pids) as sampler:
            for phase in phases:
                results.append(await run_phase(
                    stack, bootstrap, phase, seed=seed, run_id=ns, stall_timeout=stall_timeout,
                ))
        if profile_dir is not None:
            import signal

            for name in ("pathway", "referrals", "notifications"):
                stack[name].signal(signal.SIGUSR1)
            await asyncio.sleep(3)
    finally:
        await asyncio.to_thread(stack.stop)
    return {
        "namespace": ns,
        "path": "pre-built episode.submitted records published straight to the episodes topic "
                "(intake's HTTP layer is not measured)",
        "log_level": log_level,
        "phases": results,
        "memory": sampler.summary(),
    }
