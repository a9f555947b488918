"""Fault: on a 3-node KRaft cluster, the leader of the episodes topic's partitions is
SIGKILLed while episodes flow, then restarted.

Topics get replication factor 3 and min.insync.replicas 2 because the bootstrap servers
reveal three brokers (nothing is configured for it). With acks=all and idempotent producers a
write acknowledged before the kill is on a surviving in-sync replica, so nothing is lost; the
consumers' state store and deterministic ids keep redeliveries from duplicating anything.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from carepath_contracts.topics import EPISODES
from carepath_testkit.processes import Stack
from support.clusters import run_script
from support.flow import Feed, settle
from support.observe import wait_until
from support.processes import start_stack

pytestmark = [pytest.mark.kafka, pytest.mark.redis, pytest.mark.fault,
              pytest.mark.timeout(900)]  # starts its own 3-node cluster

N_EPISODES = 90


@pytest.fixture(scope="module")
def run_dir(own_kafka_cluster: Any) -> Path:
    return Path(own_kafka_cluster.run_dir)


@pytest.fixture(scope="module")
def bootstrap(own_kafka_cluster: Any) -> str:
    return str(own_kafka_cluster.bootstrap)


async def _describe(bootstrap: str, topic: str) -> tuple[int, dict[int, int], dict[str, str]]:
    """(brokers, partition -> leader, topic configs) of ``topic``."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    await admin.start()
    try:
        brokers = len((await admin.describe_cluster())["brokers"])
        (desc,) = await admin.describe_topics([topic])
        leaders = {p["partition"]: p["leader"] for p in desc["partitions"]}
        replicas = {len(p["replicas"]) for p in desc["partitions"]}
        assert replicas == {3}, f"replication factor {replicas}"
        res: Any = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic)])
        configs = {c[0]: c[1] for c in res[0].resources[0][4]}
        return brokers, leaders, configs
    finally:
        await admin.close()


@pytest.fixture(scope="module")
def stack(bootstrap: str, redis_url: str) -> Iterator[Stack]:
    from carepath_runtime.kafka_admin import create_topics

    ns = f"kc{uuid.uuid4().hex[:8]}"
    asyncio.run(create_topics(bootstrap, ns))
    s = start_stack(ns, bootstrap, redis_url)
    yield s
    s.stop()


def test_topics_replicate_three_ways_on_three_brokers(bootstrap: str, stack: Stack) -> None:
    brokers, leaders, configs = asyncio.run(
        _describe(bootstrap, EPISODES.name(stack.namespace)))
    assert brokers == 3
    assert len(leaders) == EPISODES.partitions
    assert configs["min.insync.replicas"] == "2"


def test_sigkill_the_episodes_leader_loses_and_duplicates_nothing(
    bootstrap: str, stack: Stack, redis_url: str, run_dir: Path
) -> None:
    feed = Feed.of([stack["intake"].url], N_EPISODES, "kafka-cluster", "ep-kc", pause=0.05)
    feed.start()
    assert feed.wait_posted(N_EPISODES // 3, timeout=120)

    _, leaders, _ = asyncio.run(_describe(bootstrap, EPISODES.name(stack.namespace)))
    assert -1 not in leaders.values()
    victim = max(set(leaders.values()), key=list(leaders.values()).count)
    pid = int((run_dir / "kafka-cluster" / f"node-{victim}" / "kafka.pid").read_text())
    killed_at = time.monotonic()
    os.kill(pid, signal.SIGKILL)  # no controlled shutdown: leadership moves on session expiry

    def moved() -> bool:
        try:
            _, now, _ = asyncio.run(_describe(bootstrap, EPISODES.name(stack.namespace)))
        except Exception:
            return False
        return victim not in now.values() and -1 not in now.values()

    assert wait_until(moved, timeout=60, interval=1.0), "leadership did not move"
    failover_s = time.monotonic() - killed_at
    time.sleep(2.0)
    run_script("deploy/kafka/kafka.sh", "cluster-start-node", run_dir, str(victim))
    restarted_s = time.monotonic() - killed_at

    feed.join(timeout=300)
    assert not feed.errors, feed.errors[:3]
    assert len(feed.posted) == N_EPISODES

    out = settle(redis_url, stack.namespace, feed.expected, stack["receiver"].url)
    print(f"\nkafka cluster kill: broker {victim} leading {list(leaders.values()).count(victim)}"
          f"/{len(leaders)} episode partitions; leaders moved in {failover_s:.1f}s, node back "
          f"in {restarted_s:.1f}s; {out.referrals} referrals, lost {len(out.lost)}, "
          f"duplicated {len(out.duplicated)}, webhooks {sum(out.webhook_counts.values())}")
    assert out.lost == {}, list(out.lost.items())[:5]
    assert out.duplicated == {}, list(out.duplicated.items())[:5]
    assert out.extra == {}, list(out.extra.items())[:5]
    assert out.referrals == sum(len(v) for v in feed.expected.values())
    assert set(out.webhook_counts) == out.referral_ids
    assert max(out.webhook_counts.values()) == 1
