"""A tiny run of the benchmark harness (``python -m benchmarks.run``) on the real broker.

Benchmarks are not tests, so nothing here asserts a timing. It checks that the harness runs
end to end and writes a report with every section, that the pipeline delivered every
expected webhook, and that the figures are plausible (present, non-negative, ordered).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.kafka, pytest.mark.redis, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def report(kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
           ) -> tuple[dict[str, Any], str]:
    out = tmp_path_factory.mktemp("bench")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--episodes", "12", "--rates", "40",
         "--rate-seconds", "0.2", "--engine-episodes", "40", "--engine-repeats", "1",
         "--http-episodes", "6", "--profile-episodes", "6", "--stall-timeout", "60",
         "--skip", "console",
         "--out", str(out)],
        cwd=ROOT,
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "REDIS_URL": redis_url},
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((out / "report.json").read_text())
    return data, (out / "report.txt").read_text()


def _non_negative_numbers(value: Any, path: str = "") -> None:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, int | float):
        assert not math.isnan(value), path
        assert value >= 0, f"{path} = {value}"
    elif isinstance(value, dict):
        for k, v in value.items():
            _non_negative_numbers(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _non_negative_numbers(v, f"{path}[{i}]")


def _ordered(summary: dict[str, Any]) -> None:
    assert summary["count"] > 0
    assert summary["p50_ms"] <= summary["p95_ms"] <= summary["p99_ms"] <= summary["max_ms"]


def test_the_report_has_every_section(report: tuple[dict[str, Any], str]) -> None:
    data, text = report
    for section in ("machine", "settings", "engine", "pipeline", "baseline", "comparison",
                    "profile"):
        assert section in data, section
    assert data["machine"]["logical_cores"] >= 1
    assert data["machine"]["versions"]["aiokafka"]
    for heading in ("1. ENGINE", "2. PIPELINE", "3. BASELINE", "COMPARISON", "4. MEMORY",
                    "5. PROFILE"):
        assert heading in text, heading


def test_the_figures_are_plausible(report: tuple[dict[str, Any], str]) -> None:
    data, _ = report
    for section in ("engine", "pipeline", "baseline"):
        _non_negative_numbers(data[section], section)
    assert data["engine"]["evaluate"]["per_second"] > 0
    assert data["engine"]["handler_cpu"]["per_second"] > 0


def test_the_pipeline_delivered_every_expected_webhook(report: tuple[dict[str, Any], str]) -> None:
    data, _ = report
    phases = data["pipeline"]["phases"]
    assert [p["transport"] for p in phases] == ["kafka", "kafka", "http"]
    for phase in phases:
        counts = phase["counts"]
        assert phase["complete"], phase
        assert counts["recommendations"] == phase["episodes"]
        assert counts["referrals_created"] == phase["expected_referrals"]
        assert counts["webhooks_delivered"] == phase["expected_referrals"]
        assert counts["rejected_signatures"] == 0
        for summary in (*phase["latency"].values(), *phase["hop_latency"].values()):
            _ordered(summary)
        assert phase["throughput"]["webhooks_delivered_per_s"] > 0
    assert phases[-1]["intake_http"]["accepted"] == phases[-1]["episodes"]


def test_the_baseline_relayed_every_message(report: tuple[dict[str, Any], str]) -> None:
    data, _ = report
    base = data["baseline"]
    assert base["producer"]["pipelined_msgs_per_s"] > 0
    assert base["producer"]["send_and_wait_msgs_per_s"] > 0
    for phase in base["phases"]:
        assert phase["complete"], phase
        _ordered(phase["latency"]["end_to_end"])
    ratios = data["comparison"]["throughput_at_saturation"]
    assert set(ratios) == {"pathway", "referrals", "notifications", "end_to_end"}
    assert all(r["ratio"] is not None and r["ratio"] > 0 for r in ratios.values())


def test_memory_and_profile_cover_every_service(report: tuple[dict[str, Any], str]) -> None:
    data, _ = report
    procs = data["pipeline"]["memory"]["processes"]
    for name in ("intake", "pathway", "referrals", "notifications"):
        assert procs[name]["peak_mb"] > 0
        assert procs[name]["peak_mb"] >= procs[name]["start_mb"]
    sections = data["profile"]["sections"]
    for name in ("pathway", "referrals", "notifications"):
        assert sections[name]["handler"]["calls"] > 0
        assert sections[name]["commit"]["calls"] > 0
