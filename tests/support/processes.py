"""The test flavour of :mod:`carepath_testkit.processes`: logs under .run/test-logs, fast retries.

``ServiceProcess`` here takes a module (run as ``python -m module args``) instead of an argv;
``free_port`` and ``Stack`` are re-exported for the tests that import them from here.
"""

from __future__ import annotations

from pathlib import Path

from carepath_testkit import processes as testkit
from carepath_testkit.processes import Stack, free_port, module_argv

__all__ = ["LOG_DIR", "ServiceProcess", "Stack", "free_port", "start_stack"]

ROOT = Path(__file__).resolve().parents[2]
LOG_DIR = ROOT / ".run" / "test-logs"


class ServiceProcess(testkit.ServiceProcess):
    """``python -m module args`` with its log at ``LOG_DIR/<namespace>-<name>.log``."""

    def __init__(self, name: str, module: str, port: int, env: dict[str, str],
                 args: list[str] | None = None) -> None:
        super().__init__(name, module_argv(module, *(args or [])), port, env,
                         LOG_DIR / f"{env.get('CAREPATH_NAMESPACE', 'x')}-{name}.log")


def start_stack(
    namespace: str, kafka: str, redis_url: str, extra_env: dict[str, str] | None = None,
    receiver_args: list[str] | None = None,
) -> Stack:
    """The four services and ``carepath.webhook_receiver``; retry backoff cut to 50 ms."""
    return testkit.start_stack(
        namespace, kafka, redis_url, LOG_DIR,
        extra_env={"CAREPATH_RETRY_BACKOFF_MS": "50", **(extra_env or {})},
        receiver_args=receiver_args or (),
    )
