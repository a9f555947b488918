"""Real service processes for end-to-end and fault tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
LOG_DIR = ROOT / ".run" / "test-logs"


@dataclass
class ServiceProcess:
    name: str
    module: str
    port: int
    env: dict[str, str]
    args: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return LOG_DIR / f"{self.env.get('CAREPATH_NAMESPACE', 'x')}-{self.name}.log"

    def start(self, health_path: str | None = "/health", timeout: float = 60.0) -> None:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", self.module, *self.args],
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if health_path:
            self.wait_healthy(health_path, timeout)

    def wait_healthy(self, path: str = "/health", timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}")
            try:
                r = httpx.get(self.url + path, timeout=2.0)
                if r.status_code == 200:
                    return
                last = r.text
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.2)
        raise TimeoutError(f"{self.name} not healthy after {timeout}s: {last}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=60)

    def stop(self) -> int | None:
        """SIGTERM and wait: the clean shutdown path."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Stack:
    """The four services plus a webhook receiver, on one namespace."""

    namespace: str
    services: dict[str, ServiceProcess]

    def __getitem__(self, name: str) -> ServiceProcess:
        return self.services[name]

    def stop(self) -> None:
        for svc in reversed(list(self.services.values())):
            svc.stop()


def start_stack(
    namespace: str, kafka: str, redis_url: str, extra_env: dict[str, str] | None = None,
    receiver_args: list[str] | None = None,
) -> Stack:
    receiver_port = free_port()
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka,
        "REDIS_URL": redis_url,
        "CAREPATH_NAMESPACE": namespace,
        "CAREPATH_WEBHOOK_URL": f"http://127.0.0.1:{receiver_port}/webhook",
        "CAREPATH_RETRY_BACKOFF_MS": "50",
        "CAREPATH_LOG_LEVEL": "INFO",
        **(extra_env or {}),
    }
    services: dict[str, ServiceProcess] = {
        "receiver": ServiceProcess(
            "receiver", "carepath_cli.webhook_receiver", receiver_port, env,
            ["--port", str(receiver_port), *(receiver_args or [])],
        )
    }
    for name in ("intake", "pathway", "referrals", "notifications"):
        port = free_port()
        services[name] = ServiceProcess(
            name, f"carepath_{name}.main", port,
            {**env, f"{name.upper()}_PORT": str(port)},
        )
    stack = Stack(namespace, services)
    try:
        services["receiver"].start(health_path="/received")
        for name in ("intake", "pathway", "referrals", "notifications"):
            services[name].start()
    except Exception:
        stack.stop()
        raise
    return stack
