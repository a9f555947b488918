"""The destination guard in the running service (real Kafka, Redis and processes, loopback).

* A file subscription to a loopback receiver that is not allowlisted: the service does not
  start (exit 78, one log line naming the subscription and the setting, never the URL).
* A stored subscription whose destination is no longer allowed (the operator removed it from
  the allowlist and restarted): each job fails at connect time, once, for good: a dead letter
  and ``notification.failed`` with cause ``destination_refused``; the receiver hears nothing.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from notify_support import (
    COORDINATOR,
    SECRET,
    Jobs,
    allowlist,
    base_env,
    new_namespace,
    referral_created,
    start_notifications,
    start_receiver,
    webhook_sub,
    write_subscriptions,
)

from carepath_contracts.envelope import Envelope
from carepath_contracts.events import NOTIFICATION_FAILED
from carepath_contracts.topics import Topics
from carepath_runtime.kafka_broker import make_broker, publish_all
from carepath_runtime.settings import Settings
from support.observe import received_webhooks, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.redis]


def test_a_refused_file_subscription_stops_the_service_from_starting(
        kafka_bootstrap: str, redis_url: str, tmp_path: Path) -> None:
    ns = new_namespace(kafka_bootstrap, "nsf")
    receiver = start_receiver(ns, "off-list")
    try:
        url = f"{receiver.url}/webhook"
        path = write_subscriptions(tmp_path / "subs.json", [webhook_sub("probe", url)])
        env = {**base_env(ns, kafka_bootstrap, redis_url), "CAREPATH_SUBSCRIPTIONS_FILE": path,
               "NOTIFICATIONS_PORT": "0"}
        proc = subprocess.run([sys.executable, "-m", "carepath_notifications.main"],
                              env=env, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 78, proc.stdout[-2000:] + proc.stderr[-2000:]
        lines = [orjson.loads(line) for line in proc.stdout.splitlines()
                 if line.startswith("{")]
        [refusal] = [x for x in lines if x.get("event") == "webhook_destination_refused"]
        assert refusal["subscription"] == "probe"
        assert refusal["setting"] == "CAREPATH_WEBHOOK_ALLOWLIST"
        assert "allowlisted" in refusal["reason"]  # plain http to a loopback receiver
        assert url not in proc.stdout + proc.stderr
        assert received_webhooks(receiver.url)["n"] == 0
    finally:
        receiver.stop()


async def _failed_events(bootstrap: str, topic: str, want: int, timeout: float = 60
                         ) -> list[dict[str, Any]]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    out: list[dict[str, Any]] = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline and len(out) < want:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for rec in records:
                    headers = {k: v.decode() for k, v in rec.headers}
                    if headers["ce_type"] == NOTIFICATION_FAILED:
                        out.append(orjson.loads(rec.value))
    finally:
        await consumer.stop()
    return out


def test_a_destination_refused_at_connect_time_is_dead_at_once(
        kafka_bootstrap: str, redis_url: str) -> None:
    ns = new_namespace(kafka_bootstrap, "nsc")
    receiver = start_receiver(ns, "was-allowed")
    env = base_env(ns, kafka_bootstrap, redis_url)
    service = start_notifications(ns, {**env, **allowlist(receiver)})
    jobs = Jobs(redis_url, ns)
    try:
        created = httpx.post(f"{service.url}/subscriptions", headers=COORDINATOR, timeout=10,
                             json={"id": "was-allowed", "event_types": ["carepath.referral.*"],
                                   "channel": "webhook", "secret": SECRET,
                                   "url": f"{receiver.url}/webhook"})
        assert created.status_code == 201, created.text
        service.stop()
        service = start_notifications(ns, env)  # the allowlist entry is gone
        topics = Topics(ns)
        events = [referral_created(topics.referrals, i, "radiology", "sc") for i in range(3)]

        async def feed() -> None:
            broker = make_broker(Settings(kafka_bootstrap_servers=kafka_bootstrap), "feed")
            await broker.start()
            try:
                await publish_all(broker, events)
            finally:
                await broker.stop()

        asyncio.run(feed())
        ids = [Envelope.from_headers(e.headers).id for e in events]
        assert wait_until(lambda: all(jobs.status("was-allowed", i) == "dead" for i in ids),
                          timeout=60), [jobs.status("was-allowed", i) for i in ids]
        for event_id in ids:
            assert jobs.field("was-allowed", event_id, "attempts") == "1"  # no retry loop
            reason = jobs.field("was-allowed", event_id, "dead_reason") or ""
            assert "destination refused" in reason and receiver.url not in reason
        failed = asyncio.run(_failed_events(kafka_bootstrap, topics.notification_attempts, 3))
        assert sorted(f["event_id"] for f in failed) == sorted(ids)
        assert {f["cause"] for f in failed} == {"destination_refused"}
        assert received_webhooks(receiver.url)["n"] == 0
    finally:
        service.stop()
        receiver.stop()
        jobs.close()
