"""One 3-node Kafka cluster (own loopback ports, own RUN_DIR) for the fault tests that need
it: the broker-kill test and the multi-instance test. Started once per session, wiped after.

The multi-instance test runs on it rather than on the shared broker so that nothing else on
a shared development broker (another session's topic clean-up) can touch its topics."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.clusters import kafka_cluster


@dataclass(frozen=True)
class KafkaCluster:
    bootstrap: str
    run_dir: Path


@pytest.fixture(scope="session")
def own_kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    run_dir = Path(tmp_path_factory.mktemp("kafka-cluster"))
    with kafka_cluster(run_dir) as bootstrap:
        yield KafkaCluster(bootstrap, run_dir)
