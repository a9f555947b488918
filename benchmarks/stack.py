"""The four Carepath services and the benchmark's receiver, as real processes on one namespace.

Modelled on ``tests/support/processes.py`` (``start_stack``), with two differences: the
webhook receiver is :mod:`benchmarks.receiver` (it timestamps arrivals), and a service can be
started under :mod:`benchmarks.profiled` (section timers and cProfile) instead of plainly.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

SERVICES = ("intake", "pathway", "referrals", "notifications")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Proc:
    name: str
    argv: list[str]
    env: dict[str, str]
    port: int
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, health_path: str = "/health", timeout: float = 90.0) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv, env={**os.environ, **self.env}, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; "
                                   f"see {self.log_path}")
            try:
                r = httpx.get(self.url + health_path, timeout=2.0)
                if r.status_code == 200:
                    return
                last = r.text[:200]
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.2)
        raise TimeoutError(f"{self.name} not healthy after {timeout}s: {last}")

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self, timeout: float = 40.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@dataclass
class Stack:
    namespace: str
    procs: dict[str, Proc] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Proc:
        return self.procs[name]

    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self.procs.items() if p.proc is not None}

    def stop(self) -> None:
        for p in reversed(list(self.procs.values())):
            p.stop()


def start_stack(
    namespace: str,
    kafka: str,
    redis_url: str,
    log_dir: Path,
    *,
    log_level: str = "INFO",
    profile_dir: Path | None = None,
    cprofile: bool = False,
    extra_env: dict[str, str] | None = None,
) -> Stack:
    """Start receiver, intake, pathway, referrals and notifications; wait until healthy."""
    receiver_port = free_port()
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka,
        "REDIS_URL": redis_url,
        "CAREPATH_NAMESPACE": namespace,
        "CAREPATH_WEBHOOK_URL": f"http://127.0.0.1:{receiver_port}/webhook",
        "CAREPATH_LOG_LEVEL": log_level,
        **(extra_env or {}),
    }
    stack = Stack(namespace)
    stack.procs["receiver"] = Proc(
        "receiver", [sys.executable, "-m", "benchmarks.receiver", "--port", str(receiver_port)],
        env, receiver_port, log_dir / f"{namespace}-receiver.log",
    )
    for name in SERVICES:
        port = free_port()
        module = f"carepath_{name}.main"
        argv = [sys.executable, "-m", module]
        if profile_dir is not None and name != "intake":
            argv = [sys.executable, "-m", "benchmarks.profiled", module,
                    "--out", str(profile_dir / name), *(["--cprofile"] if cprofile else [])]
        stack.procs[name] = Proc(
            name, argv, {**env, f"{name.upper()}_PORT": str(port)}, port,
            log_dir / f"{namespace}-{name}.log",
        )
    try:
        stack["receiver"].start(health_path="/count")
        for name in SERVICES:
            stack[name].start()
    except Exception:
        stack.stop()
        raise
    return stack
