"""What the benchmark ran on: machine, versions, load and git state."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

from benchmarks.memory import find_pid

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("faststream", "aiokafka", "pydantic", "pydantic-core", "redis", "orjson", "httpx",
            "uvicorn", "fastapi", "structlog", "psutil")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def kafka_version() -> str:
    pid = find_pid("kafka.Kafka")
    if pid is not None:
        try:
            cmd = " ".join(psutil.Process(pid).cmdline())
            m = re.search(r"/kafka/(\d+\.\d+\.\d+)/libs", cmd) or re.search(
                r"kafka_2\.\d+-(\d+\.\d+\.\d+)", cmd)
            if m:
                return m.group(1)
        except psutil.Error:
            pass
    m = re.search(r'KAFKA_VERSION="\$\{KAFKA_VERSION:-([0-9.]+)\}"',
                  (ROOT / "deploy/kafka/kafka.sh").read_text())
    return (m.group(1) + " (from deploy/kafka/kafka.sh)") if m else "unknown"


def redis_version(redis_url: str) -> str:
    import redis

    r = redis.Redis.from_url(redis_url)
    try:
        info: Any = r.info("server")
        return str(info.get("redis_version", "unknown"))
    except redis.RedisError as exc:
        return f"unknown ({type(exc).__name__})"
    finally:
        r.close()


def git_state() -> dict[str, Any]:
    def run(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    changed = [line for line in run("status", "--porcelain").splitlines()
               if line and "benchmarks/" not in line and "bench-results" not in line]
    return {"commit": run("rev-parse", "--short", "HEAD") or "unknown",
            "uncommitted_changes_outside_benchmarks": len(changed)}


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def busy_elsewhere(seconds: float = 1.0) -> dict[str, Any]:
    """Machine CPU use over ``seconds`` before the run, and the busiest other processes."""
    procs = list(psutil.process_iter(["pid", "name"]))
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.cpu_percent(None)
    total = psutil.cpu_percent(interval=seconds)
    top: list[tuple[float, str]] = []
    me = os.getpid()
    for p in procs:
        try:
            if p.pid != me:
                top.append((p.cpu_percent(None), str(p.info["name"])))
        except psutil.Error:
            continue
    top.sort(reverse=True)
    return {"cpu_percent_all_cores": total,
            "top_processes": [{"name": n, "cpu_percent": c} for c, n in top[:5] if c > 0]}


def describe(redis_url: str) -> dict[str, Any]:
    freq = psutil.cpu_freq()
    return {
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "usable_cores": len(os.sched_getaffinity(0)),
        "cpu_mhz": round(freq.current) if freq else None,
        "memory_gb": round(psutil.virtual_memory().total / 1024**3, 1),
        "os": f"{platform.system()} {platform.release()}",
        "virtualized": _hypervisor(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "busy_at_start": busy_elsewhere(),
        "versions": {**versions(), "kafka": kafka_version(),
                     "redis_server": redis_version(redis_url)},
        "git": git_state(),
        "executable": sys.executable,
    }


def _hypervisor() -> bool:
    try:
        return "hypervisor" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
