"""Run one Carepath service under section timers and cProfile (for ``--profile`` runs).

``python -m benchmarks.profiled carepath_pathway.main --out DIR/pathway``

Before the service module is imported, the shared seams every handler goes through are
wrapped with wall-clock timers:

* ``decode``: ``Envelope.from_headers`` + ``parse_body`` (CloudEvents headers, body model);
* ``handler``: the service's handler of one record (``carepath_runtime.consumer.run_handler``:
  its own effect, or deciding the change to apply);
* ``state_store``: ``StateStore.apply_many``, a batch of changes (Redis WATCH/MGET/MULTI/EXEC
  round trips + folds); inside it ``fold``, each change's pure fold (domain logic, models,
  building outbound events);
* ``publish_all``: the awaited ``acks=all`` publishes of a batch's outbound events;
* ``webhook``: the signed HTTP call (notifications);
* ``commit``: marking a message done for the offset commit (per message it is the commit
  itself; with the batching ``Committer`` it includes a flush when one is due);
  ``commit_flush``: the batched OffsetCommit round trips; ``mark_published``: the state
  store's published markers of a batch;
* ``record_age_at_poll``: how old a poll's first record is when the consumer is handed it
  (its timestamp is the upstream send: the publish, the broker and the fetch); ``batch``: the
  consumer's whole handling of a poll;
* ``gc_gen0`` .. ``gc_gen2``: the garbage collector's pauses, per generation;
* ``cycle``: the time from one handler start to the next (gaps over 1 s left out). On a hop
  with a backlog this is the full cost of one message, FastStream and aiokafka included; on
  a hop that outruns its input it includes waiting for the next message.

On SIGUSR1 the service writes ``DIR.sections.json`` (and, with ``--cprofile``, ``DIR.prof``:
cProfile's CPU time of every function), and keeps running; SIGTERM then stops it as usual.
cProfile slows a service down (about 1.5-2x); the section timers alone cost microseconds.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import runpy
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson


class Sections:
    def __init__(self) -> None:
        self.total: dict[str, float] = {}
        self.count: dict[str, int] = {}
        self.longest: dict[str, float] = {}
        self.long_pauses: list[tuple[float, float]] = []
        self.last_start: float | None = None
        self.cycles: list[float] = []

    def add(self, name: str, seconds: float) -> None:
        self.total[name] = self.total.get(name, 0.0) + seconds
        self.count[name] = self.count.get(name, 0) + 1
        self.longest[name] = max(seconds, self.longest.get(name, 0.0))

    def handler_started(self) -> None:
        now = time.perf_counter()
        if self.last_start is not None:
            self.cycles.append(now - self.last_start)
        self.last_start = now

    def summary(self) -> dict[str, Any]:
        # A gap over 1 s is idle time between bursts, not the cost of a message.
        busy = sorted(c for c in self.cycles if c < 1.0)
        out: dict[str, Any] = {
            name: {
                "calls": self.count[name],
                "total_s": round(self.total[name], 3),
                "mean_ms": round(self.total[name] / self.count[name] * 1000, 3),
                "max_ms": round(self.longest[name] * 1000, 3),
            }
            for name in sorted(self.total)
        }
        if self.long_pauses:
            out["gc_long_pauses"] = {"unix_s_and_ms": self.long_pauses}
        if busy:
            out["cycle"] = {
                "samples": len(busy),
                "mean_ms": round(sum(busy) / len(busy) * 1000, 3),
                "p50_ms": round(busy[len(busy) // 2] * 1000, 3),
            }
        return out


SECTIONS = Sections()


def timed_async(name: str, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return await fn(*args, **kwargs)
        finally:
            SECTIONS.add(name, time.perf_counter() - start)

    return wrapper


def timed_sync(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            SECTIONS.add(name, time.perf_counter() - start)

    return wrapper


def _wrap(owner: Any, attr: str, name: str) -> None:
    """Time ``owner.attr`` as section ``name``, if it exists (seams move as the code changes)."""
    fn = getattr(owner, attr, None)
    if fn is None:
        return
    import inspect

    timed = timed_async(name, fn) if inspect.iscoroutinefunction(fn) else timed_sync(name, fn)
    setattr(owner, attr, timed)


def install() -> None:
    """Wrap the shared seams; must run before any service module is imported."""
    from carepath_contracts import envelope
    from carepath_runtime import consumer as consumer_module
    from carepath_runtime import kafka_broker, state_store

    consumer: Any = consumer_module
    broker_module: Any = kafka_broker
    store_class: Any = state_store.StateStore

    original_from_headers = envelope.Envelope.from_headers.__func__  # type: ignore[attr-defined]

    def from_headers(cls: Any, headers: Any) -> Any:
        start = time.perf_counter()
        try:
            return original_from_headers(cls, headers)
        finally:
            SECTIONS.add("decode", time.perf_counter() - start)

    envelope.Envelope.from_headers = classmethod(from_headers)  # type: ignore[method-assign,assignment]
    _wrap(consumer, "parse_body", "decode")
    # The commit seam: per-message ``_commit`` (older code) or the batching ``Committer``.
    _wrap(consumer, "_commit", "commit")
    committer = getattr(consumer, "Committer", None)
    if committer is not None:
        _wrap(committer, "done", "commit")
        _wrap(committer, "flush", "commit_flush")
    _wrap(broker_module, "publish_all", "publish_all")
    _wrap(store_class, "mark_published_many", "mark_published")
    _wrap(store_class, "apply_many", "state_store")
    _wrap(store_class, "run_fold", "fold")

    # How old a poll's first record is when the consumer gets it (its Kafka timestamp is the
    # upstream producer's send: the publish, the broker and the fetch), and the whole batch.
    batch_consumer: Any = getattr(consumer, "_SubscriptionConsumer", None)
    if batch_consumer is not None:
        consume_batch = batch_consumer.consume_batch

        async def aged(self: Any, msg: Any) -> Any:
            records = list(getattr(msg, "raw_message", None) or ())
            stamps = [r.timestamp for r in records if getattr(r, "timestamp", None)]
            if stamps:
                SECTIONS.add("record_age_at_poll", max(0.0, time.time() - min(stamps) / 1000))
            start = time.perf_counter()
            try:
                return await consume_batch(self, msg)
            finally:
                SECTIONS.add("batch", time.perf_counter() - start)

        batch_consumer.consume_batch = aged

    # The garbage collector's pauses, per generation (a full collection stops the service).
    import gc

    gc_started: list[float] = []

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_started[:] = [time.perf_counter()]
        elif gc_started:
            took = time.perf_counter() - gc_started[0]
            SECTIONS.add(f"gc_gen{info.get('generation', '?')}", took)
            if took > 0.005:  # when the long pauses were (start-up, or under traffic)
                SECTIONS.long_pauses.append((round(time.time(), 3), round(took * 1000, 1)))

    gc.callbacks.append(on_gc)

    inner = timed_async("handler", consumer.run_handler)

    async def counted(*args: Any, **kwargs: Any) -> Any:
        SECTIONS.handler_started()
        return await inner(*args, **kwargs)

    consumer.run_handler = counted

    try:
        from carepath_notifications import webhook_sender
    except ImportError:
        return
    _wrap(webhook_sender, "send_webhook", "webhook")


def profiled_argv(profile_dir: Path, cprofile: bool) -> Callable[[str, str], list[str]]:
    """A ``service_argv`` hook for ``carepath_testkit.processes.start_stack``: every service
    but intake runs under this module, writing to ``profile_dir/<name>``."""

    def argv(name: str, module: str) -> list[str]:
        if name == "intake":
            return [sys.executable, "-m", module]
        return [sys.executable, "-m", "benchmarks.profiled", module,
                "--out", str(profile_dir / name), *(["--cprofile"] if cprofile else [])]

    return argv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("module")
    parser.add_argument("--out", required=True)
    parser.add_argument("--cprofile", action="store_true", help="also collect cProfile stats")
    args = parser.parse_args()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    install()
    profiler = cProfile.Profile()

    def dump(_signum: int, _frame: Any) -> None:
        if args.cprofile:
            profiler.disable()
            profiler.dump_stats(str(out) + ".prof")
            profiler.enable()
        Path(str(out) + ".sections.json").write_bytes(
            orjson.dumps(SECTIONS.summary(), option=orjson.OPT_INDENT_2)
        )

    signal.signal(signal.SIGUSR1, dump)
    sys.argv = [args.module]
    if args.cprofile:
        profiler.enable()
    runpy.run_module(args.module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
