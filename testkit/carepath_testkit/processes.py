"""The Carepath services and a webhook receiver as real processes on one namespace.

:class:`ServiceProcess` runs any ``argv`` and waits on an HTTP health path; :func:`start_stack`
starts the receiver and the four services with the environment that points them at one
Kafka, one Redis and one namespace.
"""

from __future__ import annotations

import base64
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from signal import SIGKILL, SIGTERM

import httpx

SERVICES = ("intake", "pathway", "referrals", "notifications")
# The repository's development tokens (the services' default path is relative to the cwd).
DEV_TOKENS = Path(__file__).resolve().parents[2] / "deploy" / "tokens.dev.json"

# (service name, module to run) -> the argv that runs it.
ArgvHook = Callable[[str, str], list[str]]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def module_argv(module: str, *args: str) -> list[str]:
    """``python -m module args`` with this interpreter."""
    return [sys.executable, "-m", module, *args]


@dataclass
class ServiceProcess:
    """One process started from ``argv``, serving HTTP on ``port``, its output in ``log_path``.

    ``start`` may be called again after ``kill`` or ``stop`` (the log is appended to).
    """

    name: str
    argv: list[str]
    port: int
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} was never started"
        return self.proc.pid

    def start(self, health_path: str | None = "/health", timeout: float = 60.0) -> None:
        """Start the process; with a ``health_path``, return once it answers 200 there."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv, env={**os.environ, **self.env}, stdout=log, stderr=subprocess.STDOUT
            )
        if health_path:
            self.wait_healthy(health_path, timeout)

    def wait_healthy(self, path: str = "/health", timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; "
                                   f"see {self.log_path}")
            try:
                r = httpx.get(self.url + path, timeout=2.0)
                if r.status_code == 200:
                    return
                last = r.text[:200]
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.2)
        raise TimeoutError(f"{self.name} not healthy after {timeout}s: {last}")

    def signal(self, sig: int) -> None:
        """Send ``sig`` if the process runs; do not wait."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def kill(self, sig: int = SIGKILL) -> None:
        """Send ``sig`` (SIGKILL: no shutdown hooks) and wait until the process is gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=60)

    def stop(self, timeout: float = 40.0) -> int | None:
        """SIGTERM and wait (the clean shutdown path); SIGKILL after ``timeout``."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def new_webhook_secret() -> str:
    """A fresh ``whsec_`` signing secret (32 random bytes) for one stack or test."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


@dataclass
class Stack:
    """The four services plus a webhook receiver, on one namespace."""

    namespace: str
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    # The secret the default webhook is signed with and the receiver verifies.
    webhook_secret: str = ""

    def __getitem__(self, name: str) -> ServiceProcess:
        return self.services[name]

    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self.services.items() if p.proc is not None}

    def stop(self) -> None:
        """Stop every process, the last started first."""
        for svc in reversed(list(self.services.values())):
            svc.stop()


def start_stack(
    namespace: str,
    kafka: str,
    redis_url: str,
    log_dir: Path,
    *,
    log_level: str = "INFO",
    extra_env: dict[str, str] | None = None,
    receiver_module: str = "carepath.webhook_receiver",
    receiver_health: str = "/received",
    receiver_args: Sequence[str] = (),
    service_argv: ArgvHook | None = None,
    timeout: float = 60.0,
) -> Stack:
    """Start the receiver, then intake, pathway, referrals and notifications; wait until healthy.

    ``receiver_module`` is run with ``--port PORT`` and ``receiver_args``; the services post
    their webhooks to its ``/webhook``. ``service_argv`` chooses how a service is run
    (default: ``python -m carepath_<name>.main``). ``extra_env`` goes to every process, over
    the defaults. Logs go to ``log_dir/<namespace>-<name>.log``. If a process does not come
    up, those already started are stopped and the error is raised.
    """
    receiver_port = free_port()
    extra = dict(extra_env or {})
    # The receiver is on loopback: allowlisted (the SSRF guard refuses loopback otherwise),
    # beside whatever the caller allowlists.
    allow = ",".join(a for a in (f"127.0.0.1:{receiver_port}",
                                 extra.pop("CAREPATH_WEBHOOK_ALLOWLIST", "")) if a)
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka,
        "REDIS_URL": redis_url,
        "CAREPATH_NAMESPACE": namespace,
        "CAREPATH_WEBHOOK_URL": f"http://127.0.0.1:{receiver_port}/webhook",
        "CAREPATH_WEBHOOK_SECRET": new_webhook_secret(),
        "CAREPATH_WEBHOOK_ALLOWLIST": allow,
        "CAREPATH_LOG_LEVEL": log_level,
        "CAREPATH_API_TOKENS_FILE": str(DEV_TOKENS),
        **extra,
    }
    stack = Stack(namespace, webhook_secret=env["CAREPATH_WEBHOOK_SECRET"])
    stack.services["receiver"] = ServiceProcess(
        "receiver",
        module_argv(receiver_module, "--port", str(receiver_port), *receiver_args),
        receiver_port, env, log_dir / f"{namespace}-receiver.log",
    )
    for name in SERVICES:
        port = free_port()
        module = f"carepath_{name}.main"
        argv = service_argv(name, module) if service_argv else module_argv(module)
        stack.services[name] = ServiceProcess(
            name, argv, port, {**env, f"{name.upper()}_PORT": str(port)},
            log_dir / f"{namespace}-{name}.log",
        )
    try:
        stack["receiver"].start(health_path=receiver_health, timeout=timeout)
        for name in SERVICES:
            stack[name].start(timeout=timeout)
    except Exception:
        stack.stop()
        raise
    return stack
