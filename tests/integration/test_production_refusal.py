"""Each service, started with CAREPATH_ENV=production and development settings, exits 78 with
one log line per offending setting, before it connects to anything."""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest

from carepath_runtime.production_guard import EXIT_CONFIG


@pytest.mark.parametrize("service", ["intake", "pathway", "referrals", "notifications"])
def test_a_service_refuses_to_start_naming_the_setting(service: str) -> None:
    env = {"PATH": "/usr/bin:/bin", "CAREPATH_ENV": "production",
           # nothing listens here: the refusal comes before any connection
           "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9", "REDIS_URL": "redis://127.0.0.1:9/0"}
    proc = subprocess.run([sys.executable, "-m", f"carepath_{service}.main"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == EXIT_CONFIG, proc.stdout[-1500:] + proc.stderr[-1500:]
    lines = [orjson.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")]
    refused = {x["setting"] for x in lines if x["event"] == "production_refused"}
    assert refused == {"CAREPATH_API_TOKENS_FILE", "KAFKA_SECURITY_PROTOCOL", "REDIS_URL"}
    assert all(x["service"] == service for x in lines)
