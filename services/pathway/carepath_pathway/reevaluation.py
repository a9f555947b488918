"""Re-evaluate every stored episode under another profile (a site adopting new thresholds).

``carepath-pathway reevaluate --profile sis`` (or :func:`reevaluate_all`) walks the pathway's
own episode states in Redis (``SCAN <ns>:pathway:state:{*}``) and folds a re-evaluation into
each one through the same typed store the Kafka handler uses
(:func:`carepath_pathway.episode_store.episode_store`), then publishes the outcome like any
evaluation: a ``pathway.recommendations`` event (referrals updates the care plan: unchanged
steps keep their referral, withdrawn ones are cancelled, new ones get a referral) and a
``pathway.status`` record. The episode keeps the
profile (``EpisodeState.profile``): its later submissions and outcomes are evaluated under it.

Why walk the store rather than publish a request event per episode: the states are the
pathway's own data, re-evaluating needs nothing but them, and it adds no public event type.
What keeps it safe while the service runs:

* **Concurrent with the live consumer.** Each fold is a WATCH/MULTI transaction on the
  episode's key: if an outcome lands on the same episode at the same moment, one of the two
  retries on the other's result, and neither is lost. Whichever folds second carries the
  first one's unpublished events out ahead of its own (the per-key outbox), so consumers see
  each episode's evaluations in ``evaluation_seq`` order (first occurrences; a repeat keeps
  its ``ce_id`` and is de-duplicated).
* **At least once, effects once.** The input id of an episode's re-evaluation is
  ``reevaluate:<request id>``. Running the same request again (after a crash, or to be sure)
  skips every episode it already re-evaluated and published, and finishes the rest; the
  events of one it folded but did not get to publish go out then, with the same ids.
* **Bounded.** At most ``concurrency`` episodes are in flight; each one's publishes are
  awaited (``acks=all``) before its state is marked published.

A request id defaults to one derived from the profile and the minute; pass ``--request-id``
to resume a run. Re-evaluating under the profile an episode already has is not skipped: it
is a fresh evaluation (new ``evaluation_seq``) that keeps every still-recommended step's id.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import orjson

from carepath_contracts.envelope import Envelope, derive_id
from carepath_pathway.domain import Profile, get_profile
from carepath_pathway.episode_state import EpisodeState, on_reevaluation
from carepath_pathway.episode_store import EpisodeStore, episode_store
from carepath_pathway.handlers import outbound_events
from carepath_runtime.kafka_broker import OutboundEvent, publish_all
from carepath_runtime.log import get_logger
from carepath_runtime.service import Runtime, make_runtime
from carepath_runtime.settings import Settings, get_settings
from carepath_runtime.state_store import run_and_publish

# The (never published) type of the per-episode trigger: the recommendation and status
# events' ids derive from its id, and their causation header names it.
REEVALUATION = "carepath.pathway.reevaluation.v1"
SOURCE = "/carepath/pathway/reevaluation"

log = get_logger(__name__)


@dataclass
class ReevaluationResult:
    request_id: str
    profile: str
    scanned: int = 0
    reevaluated: int = 0  # folded and published by this run
    already_done: int = 0  # re-evaluated by an earlier run of the same request
    failed: list[str] = field(default_factory=list)  # episode ids (retry with the same id)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"request_id": self.request_id, "profile": self.profile,
                "scanned": self.scanned, "reevaluated": self.reevaluated,
                "already_done": self.already_done, "failed": len(self.failed),
                "seconds": round(self.seconds, 2)}


def default_request_id(profile: Profile, now: datetime | None = None) -> str:
    when = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M")
    return f"{profile.name}-{when}"


def trigger_envelope(request_id: str, episode_id: str) -> Envelope:
    """The trigger of one episode's re-evaluation; the whole request shares a correlation id."""
    return Envelope.new(
        event_type=REEVALUATION,
        source=SOURCE,
        event_id=derive_id(REEVALUATION, request_id, episode_id),
        correlation_id=derive_id(REEVALUATION, request_id),
    )


async def reevaluate_episode(
    runtime: Runtime, store: EpisodeStore, profile: Profile, request_id: str, episode_id: str
) -> bool:
    """Fold one episode's re-evaluation once and publish it. False: nothing to do."""
    trigger = trigger_envelope(request_id, episode_id)

    def fold(state: EpisodeState | None) -> tuple[EpisodeState | None, list[OutboundEvent]]:
        if state is None:  # deleted meanwhile
            return None, []
        new_state, result = on_reevaluation(state, profile)
        return new_state, outbound_events(runtime, trigger, episode_id, new_state, result)

    outputs = await run_and_publish(
        store, episode_id, f"reevaluate:{request_id}", fold, partial(publish_all, runtime.broker)
    )
    return bool(outputs)


async def episode_ids(store: EpisodeStore, redis: Any, count: int = 1000) -> Any:
    """Every episode id with a stored state (SCAN: no blocking, may repeat one; harmless)."""
    async for raw in redis.scan_iter(match=store.state_key_pattern(), count=count):
        yield store.key_of(raw.decode())


async def reevaluate_all(
    runtime: Runtime,
    profile: Profile,
    request_id: str,
    *,
    concurrency: int = 32,
    on_progress: Callable[[ReevaluationResult], None] | None = None,
    store: EpisodeStore | None = None,
) -> ReevaluationResult:
    """Re-evaluate every stored episode under ``profile``; the broker must be started."""
    store = store or episode_store(runtime)
    result = ReevaluationResult(request_id=request_id, profile=profile.name)
    queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=concurrency * 4)
    started = time.monotonic()

    async def worker() -> None:
        while (episode_id := await queue.get()) is not None:
            try:
                if await reevaluate_episode(runtime, store, profile, request_id, episode_id):
                    result.reevaluated += 1
                else:
                    result.already_done += 1
            except Exception as exc:  # one episode's failure does not stop the others
                result.failed.append(episode_id)
                log.warning("reevaluation_failed", episode_id=episode_id,
                            error=f"{type(exc).__name__}: {str(exc)[:200]}")
            if on_progress is not None and (result.reevaluated + result.already_done) % 1000 == 0:
                on_progress(result)

    workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
    try:
        async for episode_id in episode_ids(store, runtime.redis):
            result.scanned += 1
            await queue.put(episode_id)
        for _ in workers:
            await queue.put(None)
        await asyncio.gather(*workers)
    finally:
        for w in workers:
            w.cancel()
    result.seconds = time.monotonic() - started
    log.info("reevaluation_finished", **result.as_dict())
    return result


async def run(settings: Settings, profile_name: str, request_id: str | None,
              concurrency: int) -> ReevaluationResult:
    profile = get_profile(profile_name)
    runtime = make_runtime("pathway-reevaluation", settings)
    await runtime.redis.ping()
    await runtime.broker.start()
    try:
        return await reevaluate_all(
            runtime, profile, request_id or default_request_id(profile), concurrency=concurrency,
            on_progress=lambda r: print(f"{r.reevaluated + r.already_done} of "
                                        f"{r.scanned} scanned", flush=True),
        )
    finally:
        await runtime.broker.stop()
        await runtime.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="carepath-pathway reevaluate",
        description="Re-evaluate every stored episode under another threshold profile.")
    parser.add_argument("--profile", required=True, help="seed, consensus-2020 or sis")
    parser.add_argument("--request-id", default=None,
                        help="the same id resumes a run: episodes it did are skipped")
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args(argv)
    try:
        get_profile(args.profile)
    except ValueError as exc:
        parser.error(str(exc))
    from carepath_runtime.log import configure_logging

    settings = get_settings()
    configure_logging("pathway-reevaluation", settings.carepath_log_level)
    result = asyncio.run(run(settings, args.profile, args.request_id, args.concurrency))
    print(orjson.dumps(result.as_dict()).decode(), flush=True)
    return 1 if result.failed else 0
