"""What a service knows about its dependencies, kept up to date in the background.

A probe task pings Redis and Kafka once per ``interval_s`` (each bounded by
``probe_timeout_s``) and records the answer; ``GET /health`` and intake's fast refusal read
that record and never probe on the request path, so they answer at once whatever Kafka does.

Consumers and workers that are waiting out a dependency say so (:meth:`waiting_on`); the
dependency is then reported as degraded even between probes, naming what it waits for.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from carepath_runtime.log import get_logger
from carepath_runtime.transient import KAFKA, REDIS

log = get_logger(__name__)

Probe = Callable[[], Awaitable[bool]]


@dataclass
class DependencyState:
    up: bool = True
    since: float = 0.0  # monotonic time of the last change
    checked: float = 0.0  # monotonic time of the last probe
    error: str | None = None
    failed_probes: int = 0  # consecutive


class DependencyHealth:
    def __init__(self, service: str, probes: dict[str, Probe], interval_s: float = 1.0,
                 probe_timeout_s: float = 1.0, fail_threshold: int = 2) -> None:
        self.service = service
        # A probe that fails once on a busy machine is not an outage: only this many failed
        # probes in a row mark a dependency down (a caller's transient error does at once).
        self.fail_threshold = max(1, fail_threshold)
        self._probes = probes
        self.interval_s = interval_s
        self.probe_timeout_s = probe_timeout_s
        now = time.monotonic()
        self.state = {name: DependencyState(since=now) for name in probes}
        self._waiting: dict[str, int] = {name: 0 for name in probes}
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self.stopping = False  # set when the service shuts down: waits give up

    # ---- reading -------------------------------------------------------------------------

    def is_up(self, name: str) -> bool:
        st = self.state.get(name)
        return st is None or st.up

    def degraded(self) -> list[str]:
        down = {n for n, st in self.state.items() if not st.up}
        return sorted(down | {n for n, c in self._waiting.items() if c > 0})

    def all_up(self) -> bool:
        return all(st.up for st in self.state.values())

    def snapshot(self) -> dict[str, Any]:
        now = time.monotonic()
        deps = {
            name: {
                "up": st.up,
                "for_s": round(now - st.since, 1),
                "waiting": self._waiting.get(name, 0),
                **({"error": st.error} if st.error and not st.up else {}),
            }
            for name, st in self.state.items()
        }
        degraded = self.degraded()
        return {
            "service": self.service,
            "status": "degraded" if degraded else "ok",
            "degraded": degraded,
            # The booleans older callers read.
            **{name: st.up for name, st in self.state.items()},
            "dependencies": deps,
            "checked_s_ago": round(now - min((st.checked for st in self.state.values()),
                                             default=now), 1),
        }

    # ---- writing -------------------------------------------------------------------------

    def _set(self, name: str, up: bool, error: str | None = None) -> None:
        st = self.state.get(name)
        if st is None:
            return
        st.checked = time.monotonic()
        if st.up != up:
            st.up, st.since = up, st.checked
            log.warning("dependency_down" if not up else "dependency_up",
                        dependency=name, **({"error": error[:200]} if error else {}))
            self._changed.set()
            self._changed = asyncio.Event()
        st.error = error

    def report_down(self, name: str, error: str) -> None:
        """A caller saw ``name`` fail transiently (the next probe confirms or clears it)."""
        self._set(name, False, error)

    def report_up(self, name: str) -> None:
        """A caller that waited for ``name`` got through: it answers again."""
        st = self.state.get(name)
        if st is not None:
            st.failed_probes = 0
        self._set(name, True)

    @contextlib.contextmanager
    def waiting_on(self, name: str) -> Iterator[None]:
        self._waiting[name] = self._waiting.get(name, 0) + 1
        try:
            yield
        finally:
            self._waiting[name] -= 1

    async def wait_changed(self, timeout: float) -> None:
        """Until some dependency changes state, or ``timeout`` seconds."""
        event = self._changed
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await event.wait()

    # ---- probing -------------------------------------------------------------------------

    async def probe_once(self) -> None:
        async def one(name: str, probe: Probe) -> None:
            error: str | None = None
            try:
                async with asyncio.timeout(self.probe_timeout_s):
                    ok = bool(await probe())
                if not ok:
                    error = "probe failed"
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                ok, error = False, f"{type(exc).__name__}: {exc}"
            st = self.state[name]
            if ok:
                st.failed_probes = 0
                self._set(name, True)
                return
            st.failed_probes += 1
            if st.failed_probes >= self.fail_threshold:
                self._set(name, False, error)

        await asyncio.gather(*(one(n, p) for n, p in self._probes.items()))

    async def _loop(self) -> None:
        while True:
            started = time.monotonic()
            await self.probe_once()
            await asyncio.sleep(max(0.05, self.interval_s - (time.monotonic() - started)))

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="dependency-health")

    async def stop(self) -> None:
        self.stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


def standard_probes(broker: Any, redis: Any, probe_timeout_s: float) -> dict[str, Probe]:
    async def redis_probe() -> bool:
        return bool(await redis.ping())

    async def kafka_probe() -> bool:
        return bool(await broker.ping(timeout=probe_timeout_s))

    return {REDIS: redis_probe, KAFKA: kafka_probe}
