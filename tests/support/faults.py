"""The fault tier's harness: our own Kafka and Redis (so they can be killed), a retrying
client, and one checker that counts what every experiment must show.

The broker and Redis run from ``deploy/kafka/kafka.sh`` and ``deploy/redis/redis.sh`` on the
fault tier's own ports (``CAREPATH_FAULT_KAFKA_PORT`` 19092, controller 19093,
``CAREPATH_FAULT_REDIS_PORT`` 16379) and their own ``RUN_DIR`` (a temporary directory, or
``CAREPATH_FAULT_RUN_DIR``), never the shared instances. Redis runs as ``redis.sh`` configures
it: AOF on, ``appendfsync everysec``.

The client is what a hospital system does: one ``Idempotency-Key`` per episode, and every
non-2xx answer (or a connection that failed) retried with the same key, after the answer's
``Retry-After`` when it has one, until a 202.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis as redis_sync

from carepath_referrals.plan_store import episode_index_key, referral_key
from carepath_testkit.episodes import random_episode
from carepath_testkit.processes import Stack
from support.episodes import expected_steps
from support.observe import received_webhooks, wait_until

ROOT = Path(__file__).resolve().parents[2]
FIGURES_DIR = ROOT / ".run" / "fault-figures"


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL")}
    env.update(extra)
    return env


@dataclass
class Infra:
    """Our own single-node Kafka and Redis, which experiments may kill and restart."""

    run_dir: Path
    kafka_port: int = 19092
    controller_port: int = 19093
    redis_port: int = 16379
    log: list[str] = field(default_factory=list)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def _env(self) -> dict[str, str]:
        return _clean_env(RUN_DIR=str(self.run_dir), KAFKA_PORT=str(self.kafka_port),
                          KAFKA_CONTROLLER_PORT=str(self.controller_port),
                          REDIS_PORT=str(self.redis_port))

    def _script(self, which: str, action: str) -> None:
        path = ROOT / "deploy" / which / f"{which}.sh"
        proc = subprocess.run(["bash", str(path), action], env=self._env(),
                              capture_output=True, text=True, timeout=240)
        self.log.append(f"{time.strftime('%H:%M:%S')} {which} {action} rc={proc.returncode}")
        if proc.returncode != 0:
            raise RuntimeError(f"{which}.sh {action} failed: {proc.stderr[-1500:]}")

    def start_kafka(self) -> None:
        self._script("kafka", "start")

    def start_redis(self) -> None:
        self._script("redis", "start")

    def stop_kafka(self) -> None:
        """SIGTERM (a clean broker stop), waiting until it is gone."""
        self._script("kafka", "stop")

    def stop_redis(self) -> None:
        self._script("redis", "stop")

    def _pid(self, rel: str) -> int:
        return int((self.run_dir / rel).read_text().strip())

    def kill_kafka(self) -> None:
        pid = self._pid("kafka/kafka.pid")
        os.kill(pid, signal.SIGKILL)
        _wait_gone(pid)

    def kill_redis(self) -> None:
        pid = self._pid("redis/redis.pid")
        os.kill(pid, signal.SIGKILL)
        _wait_gone(pid)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def _wait_gone(pid: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


class RetryingClient:
    """POSTs every episode until it is accepted (202), retrying with the same key."""

    def __init__(self, url: str, episodes: list[dict[str, Any]], pace_s: float = 0.04,
                 workers: int = 4) -> None:
        self.url = url
        self.episodes = episodes
        self.pace_s = pace_s
        self.workers = workers
        self.acknowledged: list[str] = []
        self.answers: Counter[str] = Counter()  # status (or error class) -> count
        self.slowest_s = 0.0
        self._lock = threading.Lock()
        self._next = 0
        self._threads: list[threading.Thread] = []

    def _take(self) -> dict[str, Any] | None:
        with self._lock:
            if self._next >= len(self.episodes):
                return None
            ep = self.episodes[self._next]
            self._next += 1
            return ep

    def _post_until_accepted(self, client: httpx.Client, ep: dict[str, Any]) -> None:
        key = f"fault-{ep['episode_id']}"
        while True:
            t0 = time.monotonic()
            try:
                r = client.post(self.url + "/episodes", json=ep,
                                headers={"Idempotency-Key": key,
                                         "Authorization": "Bearer dev-ehr-token"})
                status, retry_after = str(r.status_code), r.headers.get("retry-after")
            except httpx.HTTPError as exc:
                status, retry_after = type(exc).__name__, None
            elapsed = time.monotonic() - t0
            with self._lock:
                self.answers[status] += 1
                self.slowest_s = max(self.slowest_s, elapsed)
            if status == "202":
                with self._lock:
                    self.acknowledged.append(ep["episode_id"])
                return
            wait = float(retry_after) if retry_after and retry_after.isdigit() else 0.5
            time.sleep(min(wait, 2.0) * random.uniform(0.5, 1.0))

    def _work(self) -> None:
        with httpx.Client(timeout=10) as client:
            while (ep := self._take()) is not None:
                self._post_until_accepted(client, ep)
                time.sleep(self.pace_s)

    def start(self) -> None:
        self._threads = [threading.Thread(target=self._work, daemon=True)
                         for _ in range(self.workers)]
        for t in self._threads:
            t.start()

    def join(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    def started(self) -> int:
        with self._lock:
            return self._next


@dataclass
class Figures:
    """What one experiment shows (the table in docs/reliability.md)."""

    experiment: str
    episodes: int = 0
    acknowledged: int = 0
    referrals_expected: int = 0
    referrals_lost: int = 0
    referrals_duplicated: int = 0
    referrals_unexpected: int = 0
    webhooks_missing: int = 0
    webhook_duplicates: int = 0  # same webhook-id received more than once (extra copies)
    dead_letters: int = 0
    non_2xx_answers: int = 0
    slowest_answer_s: float = 0.0
    seconds: float = 0.0
    answers: dict[str, int] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)

    def write(self) -> None:
        FIGURES_DIR.mkdir(parents=True, exist_ok=True)
        (FIGURES_DIR / f"{self.experiment}.json").write_text(json.dumps(asdict(self), indent=1))


async def _dlq_count(bootstrap: str, namespace: str) -> int:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    await consumer.start()
    try:
        topics = [t for t in await consumer.topics() if t.startswith(f"{namespace}.dlq.")]
        tps = [TopicPartition(t, p) for t in topics
               for p in (consumer.partitions_for_topic(t) or ())]
        if not tps:
            return 0
        ends = await consumer.end_offsets(tps)
        starts = await consumer.beginning_offsets(tps)
        return sum(ends[tp] - starts[tp] for tp in tps)
    finally:
        await consumer.stop()


def dead_letters(infra: Infra, namespace: str) -> int:
    """Records on every dead-letter topic of the namespace, plus dead notification jobs."""
    kafka = asyncio.run(_dlq_count(infra.bootstrap, namespace))
    r = redis_sync.Redis.from_url(infra.redis_url)
    try:
        return kafka + int(r.zcard(f"{namespace}:notify:dead"))
    finally:
        r.close()


class Experiment:
    """Episodes through the stack while ``fault`` runs, then the count of what came out."""

    def __init__(self, name: str, stack: Stack, infra: Infra, n_episodes: int = 200,
                 pace_s: float = 0.04) -> None:
        self.name = name
        self.stack = stack
        self.infra = infra
        rng = random.Random(f"fault-{name}")
        self.episodes = [random_episode(rng, f"ep-{name}-{i:04d}") for i in range(n_episodes)]
        self.expected = {ep["episode_id"]: expected_steps(ep) for ep in self.episodes}
        self.client = RetryingClient(stack["intake"].url, self.episodes, pace_s=pace_s)
        self.notes: dict[str, Any] = {}

    def run(self, fault: Callable[[Experiment], None], *, fault_at: float = 1 / 3,
            settle_s: float = 240.0) -> Figures:
        t0 = time.monotonic()
        dead_before = dead_letters(self.infra, self.stack.namespace)
        self.client.start()
        n = len(self.episodes)
        assert wait_until(lambda: len(self.client.acknowledged) >= int(n * fault_at),
                          timeout=60, interval=0.1), "the flow never got going"
        fault(self)
        assert self.client.join(timeout=120), "the client never got every episode accepted"
        figures = self.check(dead_before, settle_s)
        figures.seconds = round(time.monotonic() - t0, 1)
        figures.notes = self.notes
        figures.write()
        return figures

    def _referrals(self) -> dict[str, list[dict[str, Any]]]:
        """Every episode's referrals (as ``support.observe.referrals_in_redis`` reads them),
        in two pipelined round trips instead of a connection per episode."""
        ns = self.stack.namespace
        r = redis_sync.Redis.from_url(self.infra.redis_url)
        try:
            eps = list(self.expected)
            with r.pipeline(transaction=False) as pipe:
                for ep in eps:
                    pipe.smembers(episode_index_key(ns, ep))
                members = pipe.execute()
            ids = {ep: sorted(m.decode() for m in ms) for ep, ms in zip(eps, members,
                                                                         strict=True)}
            flat = [i for ep in eps for i in ids[ep]]
            keys = [referral_key(ns, ep, i) for ep in eps for i in ids[ep]]
            raws = r.mget(keys) if keys else []
            by_id = {i: json.loads(x) for i, x in zip(flat, raws, strict=True) if x is not None}
            return {ep: [by_id[i] for i in ids[ep] if i in by_id] for ep in eps}
        finally:
            r.close()

    def check(self, dead_before: int, settle_s: float) -> Figures:
        total = sum(len(v) for v in self.expected.values())
        wait_until(lambda: sum(len(v) for v in self._referrals().values()) >= total,
                   timeout=settle_s, interval=1.0)
        refs = self._referrals()
        ids = {str(r["referral_id"]) for v in refs.values() for r in v}

        def webhooks() -> list[dict[str, Any]]:
            got = received_webhooks(self.stack["receiver"].url)["received"]
            return [w for w in got if str(w["event"]["data"].get("referral_id")) in ids]

        wait_until(lambda: len({str(w["event"]["data"]["referral_id"]) for w in webhooks()})
                   >= len(ids), timeout=settle_s, interval=1.0)
        time.sleep(1.0)  # a late repeat still counts
        hooks = webhooks()
        announced = {str(w["event"]["data"]["referral_id"]) for w in hooks}
        per_id = Counter(str(w["webhook_id"]) for w in hooks)
        lost = duplicated = unexpected = 0
        for ep, want in self.expected.items():
            got = Counter(str(r["step"]) for r in refs[ep])
            lost += len(set(want) - set(got))
            duplicated += sum(c - 1 for c in got.values() if c > 1)
            unexpected += len(set(got) - set(want))
        answers = dict(self.client.answers)
        return Figures(
            experiment=self.name,
            episodes=len(self.episodes),
            acknowledged=len(set(self.client.acknowledged)),
            referrals_expected=total,
            referrals_lost=lost,
            referrals_duplicated=duplicated,
            referrals_unexpected=unexpected,
            webhooks_missing=len(ids - announced),
            webhook_duplicates=sum(c - 1 for c in per_id.values() if c > 1),
            dead_letters=dead_letters(self.infra, self.stack.namespace) - dead_before,
            non_2xx_answers=sum(v for k, v in answers.items() if k != "202"),
            slowest_answer_s=round(self.client.slowest_s, 2),
            answers=answers,
        )


def assert_clean(f: Figures, kills: int = 1) -> None:
    """Every experiment's bar: nothing lost, duplicated or invented, every webhook sent, at
    most one same-id webhook repeat per kill, no dead letter."""
    summary = json.dumps(asdict(f))
    assert f.acknowledged == f.episodes, summary
    assert f.referrals_lost == 0, summary
    assert f.referrals_duplicated == 0, summary
    assert f.referrals_unexpected == 0, summary
    assert f.webhooks_missing == 0, summary
    assert f.webhook_duplicates <= kills, summary
    assert f.dead_letters == 0, summary
