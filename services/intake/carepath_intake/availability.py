"""Intake answers fast and truthfully when Redis or Kafka is away, and sheds load it cannot take.

:class:`AvailabilityMiddleware` wraps every write (``POST``/``PUT``/``PATCH``/``DELETE``):

* when the background health state (:mod:`carepath_runtime.dependency_health`) says Kafka is
  down (or Redis, for a request with an ``Idempotency-Key``, which Redis keeps), it answers
  ``503`` with ``Retry-After`` at once, without trying;
* when more than ``max_inflight`` writes are already running, ``429`` with ``Retry-After``;
* otherwise the request runs within ``timeout_s`` (2 s by default,
  ``INTAKE_DEPENDENCY_TIMEOUT_S``). Running out of time, or a transient Redis/Kafka error
  (:mod:`carepath_runtime.transient`), is answered ``503`` with ``Retry-After``, never 500 and
  never a dropped connection.

Every answer is an RFC 9457 problem (:func:`carepath_runtime.problems.problem`). A ``503``
means *nothing was accepted*: the route released its ``Idempotency-Key`` (see
:func:`release_quietly`), so the client's retry with the same key proceeds at once. The event
may still reach Kafka after a timed-out publish; it carries the id derived from the key, so
the retry's copy is the same event and the pathway folds it once.

``GET`` requests (``/health`` among them) pass straight through.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from carepath_runtime.dependency_health import DependencyHealth
from carepath_runtime.error_text import describe
from carepath_runtime.log import get_logger
from carepath_runtime.problems import problem
from carepath_runtime.transient import KAFKA, REDIS, is_transient, transient_dependency

log = get_logger(__name__)

ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
RELEASE_TIMEOUT_S = 0.5


class AvailabilityMiddleware:
    def __init__(self, app: ASGIApp, health: DependencyHealth, *, timeout_s: float = 2.0,
                 max_inflight: int = 256, retry_after_s: int = 2) -> None:
        self.app = app
        self.health = health
        self.timeout_s = timeout_s
        self.max_inflight = max_inflight
        self.retry_after_s = retry_after_s
        self.inflight = 0
        self.shed = 0  # counters for logs and tests
        self.refused = 0

    def _unavailable(self, detail: str, dependency: str | None) -> Any:
        self.refused += 1
        extra: dict[str, Any] = {"dependency": dependency} if dependency else {}
        return problem(503, detail, slug="dependency-unavailable",
                       title="Service temporarily unavailable",
                       headers={"Retry-After": str(self.retry_after_s)}, **extra)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") not in WRITES:
            await self.app(scope, receive, send)
            return
        # Redis only holds Idempotency-Keys: a request without one can still be accepted.
        needs = (REDIS, KAFKA) if _has_idempotency_key(scope) else (KAFKA,)
        down = [d for d in needs if not self.health.is_up(d)]
        if down:
            response = self._unavailable(
                "a dependency of intake is unavailable; nothing was accepted, retry later",
                down[0])
            await response(scope, receive, send)
            return
        if self.inflight >= self.max_inflight:
            self.shed += 1
            response = problem(429, "intake is at capacity; nothing was accepted, retry later",
                               slug="overloaded", headers={"Retry-After": "1"})
            await response(scope, receive, send)
            return
        started = False

        async def tracked(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        self.inflight += 1
        try:
            # The route's own time, leaving room to release its Idempotency-Key within the
            # bound when the time ran out (see release_quietly).
            async with asyncio.timeout(max(0.1, self.timeout_s - RELEASE_TIMEOUT_S)):
                await self.app(scope, receive, tracked)
        except TimeoutError:
            if started:
                raise
            log.warning("intake_request_timed_out", timeout_s=self.timeout_s)
            response = self._unavailable(
                f"intake could not complete the request within {self.timeout_s:g} s; "
                "nothing was accepted, retry later", None)
            await response(scope, receive, send)
        except Exception as exc:
            if started or not is_transient(exc):
                raise
            dep = transient_dependency(exc)
            if dep is not None:
                self.health.report_down(dep, describe(exc, 200))
            log.warning("intake_dependency_failed", dependency=dep, error=describe(exc, 200))
            response = self._unavailable(
                "a dependency of intake is unavailable; nothing was accepted, retry later", dep)
            await response(scope, receive, send)
        finally:
            self.inflight -= 1


def _has_idempotency_key(scope: Any) -> bool:
    return any(name == b"idempotency-key" for name, _ in scope.get("headers", ()))


async def release_quietly(release: Callable[[], Awaitable[None]]) -> None:
    """Release an Idempotency-Key after a failed publish, within a short bound.

    Runs even while the request is being cancelled (its time ran out). If Redis cannot be
    reached either, the claim's short lease frees the key instead.
    """
    with contextlib.suppress(Exception):
        async with asyncio.timeout(RELEASE_TIMEOUT_S):
            await release()


_background: set[asyncio.Task[None]] = set()


async def complete_durably(complete: Callable[[], Awaitable[None]], budget_s: float = 30.0
                           ) -> None:
    """Record the stored answer of a published request; if Redis hiccups, keep trying in the
    background (the event is on Kafka: the request was accepted, and its answer is 202)."""
    try:
        async with asyncio.timeout(0.5):
            await complete()
        return
    except Exception as exc:
        log.warning("idempotency_complete_deferred", error=describe(exc, 200))

    async def retry() -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget_s
        delay = 0.1
        while loop.time() < deadline:
            await asyncio.sleep(delay)
            try:
                await complete()
                return
            except Exception:
                delay = min(delay * 2, 2.0)
        log.warning("idempotency_complete_gave_up")

    task = asyncio.create_task(retry())
    _background.add(task)
    task.add_done_callback(_background.discard)


def install_availability(app: Any, health: DependencyHealth, settings: Any) -> None:
    app.add_middleware(
        AvailabilityMiddleware,
        health=health,
        timeout_s=settings.intake_dependency_timeout_s,
        max_inflight=settings.intake_max_inflight,
        retry_after_s=settings.intake_retry_after_s,
    )
