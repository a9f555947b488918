"""Schemathesis against each service's OpenAPI document on the running stack.

The four services run as processes (real Kafka and Redis, development tokens), and
schemathesis (from PyPI) generates requests from each service's ``/openapi.json``: the
documented examples, the coverage phase (boundary and invalid values for every parameter and
body) and random fuzzing, within a fixed budget (``--max-examples`` per operation, a fixed
seed). Every answer must be no server error (5xx), carry a documented status code and
content type, and match the documented schema. ``/stream`` (an endless SSE response) is left
out. The four runs go in parallel; the whole test takes well under two minutes.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from carepath_testkit.processes import Stack
from support.namespaces import drop_namespace, private_namespace
from support.processes import start_stack

pytestmark = [pytest.mark.kafka, pytest.mark.redis, pytest.mark.e2e]

CHECKS = ",".join(("not_a_server_error", "status_code_conformance",
                   "content_type_conformance", "response_schema_conformance"))
# The caller each service is fuzzed as: one that may use its whole API.
CALLERS = {"intake": "dev-ehr-token", "pathway": "dev-coordinator-token",
           "referrals": "dev-coordinator-token", "notifications": "dev-coordinator-token"}
MAX_EXAMPLES = {"intake": 8, "pathway": 8, "referrals": 3, "notifications": 6}


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, redis_url: str) -> Iterator[Stack]:
    from carepath_runtime.kafka_admin import create_topics

    ns = private_namespace("fuzz")
    asyncio.run(create_topics(kafka_bootstrap, ns))
    s = start_stack(ns, kafka_bootstrap, redis_url)
    yield s
    s.stop()
    asyncio.run(drop_namespace(kafka_bootstrap, redis_url, ns))


def schemathesis(url: str, token: str, examples: int, report: Path) -> list[str]:
    return [
        str(Path(sys.executable).with_name("schemathesis")), "run", f"{url}/openapi.json",
        "--header", f"Authorization: Bearer {token}",
        "--checks", CHECKS,
        "--max-examples", str(examples),
        "--phases", "examples,coverage,fuzzing",
        "--seed", "20261201",
        "--workers", "1",
        "--request-timeout", "20",
        "--suppress-health-check", "all",
        "--exclude-path", "/stream",
        "--no-color",
        "--report", "junit", "--report-junit-path", str(report),
    ]


def test_no_operation_answers_a_server_error_or_outside_its_schema(
        stack: Stack, tmp_path: Path) -> None:
    runs = {}
    env = {**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_TELEMETRY": "false"}
    for name, token in CALLERS.items():
        argv = schemathesis(stack[name].url, token, MAX_EXAMPLES[name],
                            tmp_path / f"{name}.xml")
        runs[name] = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      env=env, text=True)
    failed = {}
    for name, proc in runs.items():
        out, _ = proc.communicate(timeout=240)
        if proc.returncode != 0:
            failed[name] = out[-6000:]
        else:
            assert " passed" in out and "generated" in out, out[-2000:]
    assert not failed, "\n\n".join(f"== {n}\n{o}" for n, o in failed.items())
