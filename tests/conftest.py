"""Fixtures shared by every tier.

Real infrastructure: Kafka and Redis are found through KAFKA_BOOTSTRAP_SERVERS / REDIS_URL,
else the project's own broker and redis-server on loopback (started by `make test`; started
here too if absent), else testcontainers where a Docker engine exists. Under CI=true a test
that needs them FAILS when they cannot be reached; elsewhere it is skipped with the reason.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(what: str, why: str) -> None:
    message = f"{what} unreachable: {why}"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: tests needing it must not skip)", pytrace=False)
    pytest.skip(message)


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def _docker_engine() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True).returncode == 0


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        yield configured
        return
    if not _port_open("127.0.0.1", 9092):
        if _docker_engine():
            from testcontainers.kafka import KafkaContainer  # type: ignore[import-untyped]

            with KafkaContainer().with_kraft() as kafka:
                yield kafka.get_bootstrap_server()
            return
        proc = subprocess.run(
            ["bash", str(ROOT / "deploy/kafka/kafka.sh"), "start"], capture_output=True, text=True
        )
        if proc.returncode != 0:
            unavailable("Kafka", proc.stderr[-2000:] or proc.stdout[-2000:])
    from carepath_runtime.kafka_admin import wait_for_kafka

    try:
        asyncio.run(wait_for_kafka("127.0.0.1:9092", timeout=60))
    except TimeoutError as exc:
        unavailable("Kafka", str(exc))
    yield "127.0.0.1:9092"


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    configured = os.environ.get("REDIS_URL")
    if configured:
        yield configured
        return
    if not _port_open("127.0.0.1", 6379):
        if _docker_engine():
            from testcontainers.redis import RedisContainer  # type: ignore[import-untyped]

            with RedisContainer() as redis:
                host = redis.get_container_host_ip()
                yield f"redis://{host}:{redis.get_exposed_port(6379)}/0"
            return
        proc = subprocess.run(
            ["bash", str(ROOT / "deploy/redis/redis.sh"), "start"], capture_output=True, text=True
        )
        if proc.returncode != 0 or not _port_open("127.0.0.1", 6379):
            unavailable("Redis", proc.stderr[-2000:] or "not listening on 127.0.0.1:6379")
    yield "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="session")
def namespace(kafka_bootstrap: str) -> str:
    """A fresh topic namespace per test session: isolated topics and Redis keys."""
    from carepath_runtime.kafka_admin import create_topics

    ns = f"t{uuid.uuid4().hex[:10]}"
    asyncio.run(create_topics(kafka_bootstrap, ns))
    return ns


def _hypothesis_profiles() -> None:
    from hypothesis import settings

    # CI runs are reproducible: the same examples every run, so a red run is never a fluke
    # of example generation. Locally, examples vary from run to run and explore further.
    settings.register_profile("ci", derandomize=True, print_blob=True)
    settings.register_profile("thorough", max_examples=5000)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if IN_CI else "default"))


_hypothesis_profiles()


_TEST_NAMESPACE = re.compile(r"^[a-z][a-z0-9]*[0-9a-f]{8,12}$")


async def _topics(bootstrap: str) -> set[str]:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def _drop_namespaces(bootstrap: str, redis_url: str, topics: set[str]) -> None:
    import redis.asyncio as aioredis
    from aiokafka.admin import AIOKafkaAdminClient

    namespaces = {t.split(".", 1)[0] for t in topics}
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    await admin.start()
    try:
        names = sorted(topics)
        for i in range(0, len(names), 50):
            await admin.delete_topics(names[i : i + 50])
    finally:
        await admin.close()
    client = aioredis.Redis.from_url(redis_url)
    try:
        for ns in namespaces:
            batch = [k async for k in client.scan_iter(match=f"{ns}:*", count=1000)]
            for i in range(0, len(batch), 500):
                await client.delete(*batch[i : i + 500])
    finally:
        await client.aclose()


#: Namespaces whose topics this test process created (see ``_track_created_namespaces``).
_CREATED: set[str] = set()


def _track_created_namespaces() -> None:
    """Record every namespace this process creates topics for, so that clean-up touches only
    those: another test session sharing the broker keeps its topics."""
    from carepath_runtime import kafka_admin

    original = kafka_admin.create_topics
    if getattr(original, "_tracked", False):
        return

    async def create_topics(bootstrap: str, namespace: str, **kwargs: Any) -> list[str]:
        _CREATED.add(namespace)
        return await original(bootstrap, namespace, **kwargs)

    create_topics._tracked = True  # type: ignore[attr-defined]
    kafka_admin.create_topics = create_topics  # type: ignore[assignment]


# Before any test module is collected, so that their ``from ... import create_topics`` binds
# the tracking wrapper.
_track_created_namespaces()


@pytest.fixture(scope="session", autouse=True)
def _clean_up_test_namespaces() -> Iterator[None]:
    """Delete the topics and Redis keys this session's tests created, when it ends.

    Every test that needs Kafka works in a fresh namespace; without this a long-lived dev
    broker would keep thousands of partitions from earlier runs. Only namespaces that look
    generated (letters + hex) and that this process created topics for are touched, never
    those of another session running against the same broker.
    """
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    yield
    if os.environ.get("CAREPATH_KEEP_TEST_DATA") or not _CREATED:
        return
    try:
        created = {t for t in asyncio.run(_topics(bootstrap))
                   if t.split(".", 1)[0] in _CREATED and _TEST_NAMESPACE.match(t.split(".", 1)[0])}
        if created:
            asyncio.run(_drop_namespaces(bootstrap, redis_url, created))
    except Exception as exc:  # hygiene only: never fail a run over it
        print(f"test namespace clean-up skipped: {exc!r}")
