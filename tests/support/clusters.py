"""Clusters a test starts and stops itself: a 3-master Redis Cluster and a 3-node Kafka
cluster on loopback ports of their own (never the shared 9092/6379), in their own RUN_DIR.

Each is started by the project's script (deploy/redis/redis.sh cluster-start,
deploy/kafka/kafka.sh cluster-start) with KAFKA_BOOTSTRAP_SERVERS/REDIS_URL unset for that
call, as the scripts would otherwise use the external ones.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REDIS_CLUSTER_PORTS = (17000, 17001, 17002)
KAFKA_BROKER_PORTS = (29092, 29093, 29094)
KAFKA_CONTROLLER_PORTS = (29192, 29193, 29194)


def _script_env(run_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL")}
    env["RUN_DIR"] = str(run_dir)
    env["REDIS_CLUSTER_PORTS"] = " ".join(map(str, REDIS_CLUSTER_PORTS))
    env["KAFKA_CLUSTER_PORTS"] = " ".join(map(str, KAFKA_BROKER_PORTS))
    env["KAFKA_CLUSTER_CONTROLLER_PORTS"] = " ".join(map(str, KAFKA_CONTROLLER_PORTS))
    return env


def run_script(script: str, command: str, run_dir: Path, *args: str,
               timeout: float = 300) -> str:
    proc = subprocess.run(["bash", str(ROOT / script), command, *args],
                          env=_script_env(run_dir), capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        pytest.fail(f"{script} {command} failed ({proc.returncode}):\n{proc.stderr[-3000:]}",
                    pytrace=False)
    return proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""


@contextmanager
def redis_cluster(run_dir: Path) -> Iterator[str]:
    """A fresh 3-master Redis Cluster; yields its ``redis+cluster://`` URL."""
    run_script("deploy/redis/redis.sh", "cluster-reset", run_dir)
    url = run_script("deploy/redis/redis.sh", "cluster-start", run_dir)
    try:
        yield url
    finally:
        run_script("deploy/redis/redis.sh", "cluster-reset", run_dir)


@contextmanager
def kafka_cluster(run_dir: Path) -> Iterator[str]:
    """A fresh 3-node KRaft cluster; yields its bootstrap servers."""
    run_script("deploy/kafka/kafka.sh", "cluster-reset", run_dir)
    bootstrap = run_script("deploy/kafka/kafka.sh", "cluster-start", run_dir, timeout=400)
    try:
        yield bootstrap
    finally:
        run_script("deploy/kafka/kafka.sh", "cluster-reset", run_dir)
