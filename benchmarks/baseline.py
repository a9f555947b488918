"""Baseline: the raw aiokafka client on the same broker, with the same discipline.

* **Raw producer**: the episode.submitted records (same bytes and headers) sent by an
  idempotent ``acks=all`` producer with Carepath's settings, pipelined (``send`` futures,
  as fast as the client accepts) and one at a time (``send_and_wait``, which is what an
  awaited publish costs).
* **Raw relay**: ``python -m benchmarks.baseline relay`` consumes one topic and, per record,
  decodes the JSON value, builds an output of a given size, produces it with
  ``send_and_wait`` (Carepath's producer settings, read from ``make_broker``) and only then
  marks the record's offset for commit. It commits with Carepath's discipline (read from
  ``Settings``: every ``carepath_commit_every`` records or ``carepath_commit_interval_ms``,
  explicit offsets; per record if Carepath commits per record): the commit-after-effect
  discipline of Carepath's subscribers, with nothing else. Three relays are chained
  (t0 -> t1 -> t2 -> t3) like Carepath's three consuming hops (pathway, referrals,
  notifications) and run as three processes at once, sized per hop from the pipeline run's
  mean record sizes.
* **Batched raw relay** (``relay --batched``): the same chain, consuming with ``getmany`` (up
  to ``max_records`` per poll), decoding and transforming every record of the batch, handing
  each output to the producer with ``send`` (not awaited one by one), then one ``flush`` and
  one wait for every delivery of the batch, and only then one commit of the batch's offsets.
  This is what a hop costs when it takes its round trips per batch instead of per message:
  the floor a batching Carepath hop is measured against.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from tqdm import tqdm

from benchmarks.kafka_io import (
    PRODUCER_SETTINGS,
    create_plain_topics,
    make_producer,
    read_range,
    send_episodes,
    wait_for,
)
from benchmarks.memory import RssSampler
from benchmarks.stats import busy_rate, latency_summary, rate
from benchmarks.workload import PreparedEpisode, prepare
from carepath_contracts.topics import PARTITIONS
from carepath_testkit.episodes import episode_mix
from carepath_testkit.kafka_reading import end_offsets

# ---------------------------------------------------------------- the relay process

BATCH_RECORDS = 500  # records per getmany of the batched relay


async def relay(bootstrap: str, src: str, dst: str, group: str, out_bytes: int,
                commit_every: int = 1, commit_interval_ms: int = 0) -> None:
    consumer = AIOKafkaConsumer(
        src, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
        auto_offset_reset="earliest", max_poll_records=100, session_timeout_ms=10000,
        heartbeat_interval_ms=1000,
    )
    producer = make_producer(bootstrap)
    await producer.start()
    await consumer.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    pad_len = max(0, out_bytes - 64)
    announced = False
    pending: dict[TopicPartition, int] = {}
    count = 0
    last_commit = time.monotonic()

    async def commit() -> None:
        nonlocal pending, count, last_commit
        if pending:
            offsets, pending = pending, {}
            assigned = consumer.assignment()
            await consumer.commit({tp: o for tp, o in offsets.items() if tp in assigned})
        count, last_commit = 0, time.monotonic()

    try:
        while not stop.is_set():
            if not announced and consumer.assignment():
                print("ready", flush=True)
                announced = True
            try:
                msg = await asyncio.wait_for(consumer.getone(), timeout=0.2)
            except TimeoutError:
                await commit()  # idle: commit what is done
                continue
            # Trivial transform: decode, pick the id, re-encode at the hop's output size.
            body = orjson.loads(msg.value or b"{}")
            out = orjson.dumps({"id": body.get("episode_id") or body.get("id"),
                                "pad": "x" * pad_len})
            await producer.send_and_wait(dst, out, key=msg.key, headers=list(msg.headers))
            # Commit after the effect: this record's offset, now or with the batch.
            pending[TopicPartition(msg.topic, msg.partition)] = msg.offset + 1
            count += 1
            if (commit_every <= 1 or count >= commit_every
                    or (time.monotonic() - last_commit) * 1000 >= commit_interval_ms):
                await commit()
        await commit()
    finally:
        await consumer.stop()
        await producer.stop()


async def batched_relay(bootstrap: str, src: str, dst: str, group: str, out_bytes: int,
                        max_records: int = 500) -> None:
    """``getmany`` -> decode and transform -> ``send`` each -> one flush -> commit the batch."""
    consumer = AIOKafkaConsumer(
        src, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
        auto_offset_reset="earliest", max_poll_records=max_records, session_timeout_ms=10000,
        heartbeat_interval_ms=1000,
    )
    producer = make_producer(bootstrap)
    await producer.start()
    await consumer.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    pad = "x" * max(0, out_bytes - 64)
    announced = False
    try:
        while not stop.is_set():
            if not announced and consumer.assignment():
                print("ready", flush=True)
                announced = True
            batch = await consumer.getmany(timeout_ms=200, max_records=max_records)
            if not batch:
                continue
            deliveries: list[asyncio.Future[Any]] = []
            offsets: dict[TopicPartition, int] = {}
            for tp, records in batch.items():
                for msg in records:
                    body = orjson.loads(msg.value or b"{}")
                    out = orjson.dumps({"id": body.get("episode_id") or body.get("id"),
                                        "pad": pad})
                    deliveries.append(await producer.send(dst, out, key=msg.key,
                                                          headers=list(msg.headers)))
                offsets[tp] = records[-1].offset + 1
            await producer.flush()
            await asyncio.gather(*deliveries)  # every record acknowledged (acks=all)
            # Commit after the effect: the whole batch's offsets in one round trip.
            assigned = consumer.assignment()
            await consumer.commit({tp: o for tp, o in offsets.items() if tp in assigned})
    finally:
        await consumer.stop()
        await producer.stop()


# ---------------------------------------------------------------- the parent side


@dataclass
class RelayChain:
    namespace: str
    bootstrap: str
    out_bytes: Sequence[int]
    log_dir: Path
    commit_every: int = 1
    commit_interval_ms: int = 0
    batched: bool = False
    procs: list[subprocess.Popen[str]] = field(default_factory=list)

    @property
    def prefix(self) -> str:
        return f"{self.namespace}.{'batched' if self.batched else 'relay'}"

    @property
    def topics(self) -> list[str]:
        return [f"{self.prefix}{i}" for i in range(len(self.out_bytes) + 1)]

    def _spawn(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        name = self.prefix.rsplit(".", 1)[-1]
        for hop, size in enumerate(self.out_bytes):
            with open(self.log_dir / f"{self.namespace}-{name}{hop + 1}.log", "ab") as log:
                self.procs.append(subprocess.Popen(
                    [sys.executable, "-m", "benchmarks.baseline", "relay",
                     "--bootstrap", self.bootstrap, "--src", self.topics[hop],
                     "--dst", self.topics[hop + 1],
                     "--group", f"{self.namespace}-{name}{hop + 1}", "--out-bytes", str(size),
                     "--commit-every", str(self.commit_every),
                     "--commit-interval-ms", str(self.commit_interval_ms),
                     *(["--batched"] if self.batched else [])],
                    stdout=subprocess.PIPE, stderr=log, text=True, env=os.environ.copy(),
                ))

    async def start(self, timeout: float = 60.0) -> None:
        await create_plain_topics(self.bootstrap, self.topics, PARTITIONS)
        await asyncio.to_thread(self._spawn)
        for proc in self.procs:
            line = await asyncio.wait_for(asyncio.to_thread(_readline, proc), timeout)
            if line.strip() != "ready":
                raise RuntimeError(f"relay did not start: {line!r}")

    def pids(self) -> dict[str, int]:
        name = "batched relay" if self.batched else "relay"
        return {f"{name}{i + 1}": p.pid for i, p in enumerate(self.procs)}

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _readline(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    return proc.stdout.readline()


async def run_relay_phase(
    chain: RelayChain, name: str, episodes: list[PreparedEpisode], offered: float | None,
    *, stall_timeout: float,
) -> dict[str, Any]:
    topics = chain.topics
    start = await end_offsets(chain.bootstrap, topics[1:])
    last_topic_start = sum(v for tp, v in start.items() if tp.topic == topics[-1])

    async def count() -> int:
        ends = await end_offsets(chain.bootstrap, [topics[-1]])
        return sum(ends.values()) - last_topic_start

    label = "saturation" if offered is None else f"{offered:g}/s"
    kind = "batched" if chain.batched else "raw relay"
    bar = tqdm(total=len(episodes), desc=f"{kind} {label:>9}", unit="msg",
               dynamic_ncols=True, mininterval=1.0)

    def progress(n: int) -> None:
        bar.n = min(n, len(episodes))
        bar.refresh()

    producer = make_producer(chain.bootstrap)
    await producer.start()
    try:
        sent = await send_episodes(producer, topics[0], episodes, offered)
    finally:
        await producer.stop()
    _, complete = await wait_for(count, len(episodes), stall_timeout=stall_timeout,
                                 on_progress=progress)
    bar.close()
    stop = await end_offsets(chain.bootstrap, topics[1:])
    records = await read_range(chain.bootstrap, start, stop)
    sent_ms = {ep: t * 1000 for ep, t in sent.sent_at.items()}
    ts: list[dict[str, int]] = [{} for _ in topics[1:]]
    index = {t: i for i, t in enumerate(topics[1:])}
    for r in records:
        if r.key in sent_ms:
            ts[index[r.topic]].setdefault(r.key, r.timestamp_ms)
    hops: dict[str, Any] = {}
    busy: dict[str, float] = {}
    prev: dict[str, float] = sent_ms
    for i, hop_ts in enumerate(ts):
        lat = [hop_ts[k] - prev[k] for k in hop_ts if k in prev]
        hops[f"hop{i + 1}"] = latency_summary(lat)
        busy[f"hop{i + 1}_msgs_per_s"] = busy_rate(
            len(hop_ts), min(prev.values(), default=0) / 1000,
            max(hop_ts.values(), default=0) / 1000,
        )
        prev = {k: float(v) for k, v in hop_ts.items()}
    final = ts[-1]
    end_to_end = [final[k] - sent_ms[k] for k in final]
    e2e_rate = rate(len(final), sent.first, max(final.values(), default=0) / 1000)
    return {
        "phase": name,
        "offered": "saturation" if offered is None else offered,
        "kept_up": None if offered is None else bool(
            e2e_rate >= 0.9 * min(offered, sent.offered_rate)),
        "messages": len(episodes),
        "complete": complete and len(final) >= len(episodes),
        "throughput": {
            "offered_per_s": sent.offered_rate,
            "end_to_end_msgs_per_s": e2e_rate,
        },
        "hop_busy_rate": busy,
        "latency": {"end_to_end": latency_summary(end_to_end)},
        "hop_latency": hops,
    }


async def raw_producer(bootstrap: str, topic: str, episodes: list[PreparedEpisode],
                       sequential: int) -> dict[str, Any]:
    """Pipelined and one-at-a-time producer rates with Carepath's producer settings."""
    producer = make_producer(bootstrap)
    await producer.start()
    try:
        await send_episodes(producer, topic, episodes[:200], None)  # warm-up
        t0 = time.perf_counter()
        await send_episodes(producer, topic, episodes, None)
        pipelined = len(episodes) / (time.perf_counter() - t0)
        lat: list[float] = []
        t0 = time.perf_counter()
        for ep in episodes[:sequential]:
            s = time.perf_counter()
            from datetime import UTC, datetime

            await producer.send_and_wait(topic, ep.value, key=ep.key,
                                         headers=ep.headers(datetime.now(UTC)))
            lat.append((time.perf_counter() - s) * 1000)
        one_by_one = sequential / (time.perf_counter() - t0)
    finally:
        await producer.stop()
    return {
        "messages": len(episodes),
        "mean_value_bytes": round(sum(len(e.value) for e in episodes) / len(episodes), 1),
        "pipelined_msgs_per_s": round(pipelined, 1),
        "send_and_wait_msgs_per_s": round(one_by_one, 1),
        "send_and_wait_latency": latency_summary(lat),
    }


async def publish_patterns(bootstrap: str, topic: str, value_bytes: int,
                           iterations: int = 150) -> dict[str, Any]:
    """What one message's publishes cost: k records awaited one by one, or sent together and
    awaited once, with ``linger_ms`` 2 (Carepath's setting) and 0. Median ms per message.

    Also the cost of one offset commit (``consumer.commit()`` after each ``getone``).
    """
    value = b"x" * value_bytes
    out: dict[str, Any] = {"value_bytes": value_bytes, "iterations": iterations}
    for linger in (2, 0):
        producer = make_producer(bootstrap, linger_ms=linger)
        await producer.start()
        try:
            for _ in range(30):
                await producer.send_and_wait(topic, value, key=b"warm-up")
            for k in (1, 2, 9):
                one_by_one: list[float] = []
                together: list[float] = []
                for i in range(iterations):
                    key = f"ep-{i}".encode()
                    t0 = time.perf_counter()
                    for _ in range(k):
                        await producer.send_and_wait(topic, value, key=key)
                    one_by_one.append((time.perf_counter() - t0) * 1000)
                    t0 = time.perf_counter()
                    futures = [await producer.send(topic, value, key=key) for _ in range(k)]
                    await asyncio.gather(*futures)
                    together.append((time.perf_counter() - t0) * 1000)
                out[f"linger{linger}_k{k}"] = {
                    "awaited_one_by_one_p50_ms": latency_summary(one_by_one)["p50_ms"],
                    "sent_together_p50_ms": latency_summary(together)["p50_ms"],
                }
        finally:
            await producer.stop()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"{topic}-commit",
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        commits: list[float] = []
        for _ in range(min(300, iterations * 2)):
            await consumer.getone()
            t0 = time.perf_counter()
            await consumer.commit()
            commits.append((time.perf_counter() - t0) * 1000)
        out["commit_per_message"] = latency_summary(commits)
    finally:
        await consumer.stop()
    return out


def carepath_commit_discipline() -> tuple[int, int]:
    """(every, interval ms) of Carepath's offset commits; per message if it has no batching."""
    from carepath_runtime.settings import Settings

    settings = Settings()
    every = int(getattr(settings, "carepath_commit_every", 1))
    interval = int(getattr(settings, "carepath_commit_interval_ms", 0))
    return every, interval


async def run_baseline(
    bootstrap: str,
    *,
    namespace: str,
    n: int,
    phases: list[tuple[str, int, float | None]],
    out_bytes: Sequence[int],
    seed: int,
    log_dir: Path,
    stall_timeout: float = 60.0,
) -> dict[str, Any]:
    """Raw producer, then the relay chain at each (name, messages, rate) phase."""
    producer_topic = f"{namespace}.rawproducer"
    await create_plain_topics(bootstrap, [producer_topic], PARTITIONS)
    sample = [prepare(e) for e in episode_mix(max(n, 200), seed=seed, prefix=f"{namespace}-p")]
    producer = await raw_producer(bootstrap, producer_topic, sample, sequential=min(n, 1000))
    patterns = await publish_patterns(bootstrap, producer_topic, out_bytes[1],
                                      iterations=max(5, min(150, n)))
    every, interval_ms = carepath_commit_discipline()
    chain = RelayChain(namespace, bootstrap, out_bytes, log_dir, every, interval_ms)
    results, memory = await _run_chain(chain, phases, namespace=namespace, seed=seed,
                                       stall_timeout=stall_timeout)
    batched_chain = RelayChain(namespace, bootstrap, out_bytes, log_dir, batched=True)
    batched_results, batched_memory = await _run_chain(
        batched_chain, phases, namespace=namespace, seed=seed, stall_timeout=stall_timeout)
    return {
        "namespace": namespace,
        "relay": {
            "hops": len(out_bytes),
            "output_bytes_per_hop": list(out_bytes),
            "discipline": "getone -> orjson decode/encode -> send_and_wait ("
                          + ", ".join(f"{k}={v}" for k, v in PRODUCER_SETTINGS.items())
                          + ") -> commit the processed offset "
                          + ("per message" if every <= 1 else
                             f"every {every} messages or {interval_ms} ms (as Carepath)"),
            "commit_every": every,
            "commit_interval_ms": interval_ms,
        },
        "producer": producer,
        "publish_patterns": patterns,
        "phases": results,
        "memory": memory,
        "batched": {
            "discipline": f"getmany (up to {BATCH_RECORDS} records) -> orjson decode/encode "
                          "-> send() each, not awaited -> one flush and one wait per batch "
                          "-> commit the batch's offsets",
            "max_records": BATCH_RECORDS,
            "phases": batched_results,
            "memory": batched_memory,
        },
        "topics": [producer_topic, *chain.topics, *batched_chain.topics],
    }


async def _run_chain(chain: RelayChain, phases: list[tuple[str, int, float | None]], *,
                     namespace: str, seed: int, stall_timeout: float
                     ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    results: list[dict[str, Any]] = []
    await chain.start()
    try:
        with RssSampler(chain.pids()) as sampler:
            for name, count, offered in phases:
                episodes = [prepare(e) for e in
                            episode_mix(count, seed=seed, prefix=f"{chain.prefix}-{name}")]
                results.append(await run_relay_phase(chain, name, episodes, offered,
                                                     stall_timeout=stall_timeout))
    finally:
        await asyncio.to_thread(chain.stop)
    return results, sampler.summary()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("relay")
    r.add_argument("--bootstrap", required=True)
    r.add_argument("--src", required=True)
    r.add_argument("--dst", required=True)
    r.add_argument("--group", required=True)
    r.add_argument("--out-bytes", type=int, required=True)
    r.add_argument("--commit-every", type=int, default=1)
    r.add_argument("--commit-interval-ms", type=int, default=0)
    r.add_argument("--batched", action="store_true",
                   help="getmany, send without awaiting each, one flush and commit per batch")
    args = parser.parse_args()
    if args.batched:
        asyncio.run(batched_relay(args.bootstrap, args.src, args.dst, args.group,
                                  args.out_bytes, BATCH_RECORDS))
        return
    asyncio.run(relay(args.bootstrap, args.src, args.dst, args.group, args.out_bytes,
                      args.commit_every, args.commit_interval_ms))


if __name__ == "__main__":
    main()
