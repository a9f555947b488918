"""``carepath notifications dead-letters|redrive``: inspect and resend dead-lettered notices.

A notice whose retry budget ran out (or that a receiver refused with a 4xx) is a dead-letter
record in Redis. ``dead-letters`` lists them (oldest first), ``redrive`` puts them back on the
delivery queue with their attempts reset; the running notifications service sends them again,
with the same ``webhook-id`` as before, so a receiver that did get an earlier copy can
de-duplicate. Each redrive also publishes a ``carepath.notification.redriven.v1`` event (via
the service's outbox).

Exit status: 0 done; 1 some named job was not found or not dead; 2 bad usage.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson
import redis.asyncio as aioredis

from carepath_contracts.topics import Topics
from carepath_runtime.redis_client import make_redis
from carepath_runtime.settings import Settings, get_settings

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_USAGE = 2
SOURCE = "/carepath/cli"


@dataclass(frozen=True)
class RedriveReport:
    redriven: list[str]
    skipped: list[str]  # named but not found, or not dead


def _row(job: Any) -> dict[str, Any]:
    dead_at = (datetime.fromtimestamp(job.dead_ms / 1000, UTC).isoformat()
               if job.dead_ms else None)
    return {
        "job_id": job.id,
        "subscription_id": job.subscription_id,
        "event_id": job.event_id,
        "event_type": job.event_type,
        "channel": job.channel,
        "attempts": job.attempts,
        "redriven": job.redriven,
        "last_status": job.last_status,
        "reason": job.dead_reason or job.last_error,
        "dead_at": dead_at,
    }


async def fetch_dead_letters(
    redis: aioredis.Redis, settings: Settings, namespace: str,
    subscription: str | None = None, limit: int = 1000,
) -> list[dict[str, Any]]:
    from carepath_notifications.job_queue import JobQueue

    queue = JobQueue(redis, namespace, settings.carepath_notify_endpoint_concurrency)
    jobs = await queue.dead_letters(limit=max(limit, 1) if subscription is None else 1_000_000)
    rows = [_row(j) for j in jobs if subscription is None or j.subscription_id == subscription]
    return rows[:limit]


async def redrive_dead_letters(
    redis: aioredis.Redis, settings: Settings, namespace: str,
    job_ids: Sequence[str] | None = None, subscription: str | None = None,
    dry_run: bool = False,
) -> RedriveReport:
    """Redrive the named dead jobs (or, with ``job_ids=None``, every dead job, optionally of
    one subscription)."""
    from carepath_notifications.attempt_events import redriven_event
    from carepath_notifications.job_queue import JobQueue

    queue = JobQueue(redis, namespace, settings.carepath_notify_endpoint_concurrency)
    topics = Topics(namespace)
    skipped: list[str] = []
    if job_ids is None:
        jobs = [j for j in await queue.dead_letters(limit=1_000_000)
                if subscription is None or j.subscription_id == subscription]
    else:
        jobs = []
        for job_id in job_ids:
            job = await queue.get(job_id)
            if job is None or job.status != "dead" or (
                subscription is not None and job.subscription_id != subscription
            ):
                skipped.append(job_id)
            else:
                jobs.append(job)
    redriven: list[str] = []
    for job in jobs:
        if dry_run:
            redriven.append(job.id)
            continue
        now = datetime.now(UTC)
        event = redriven_event(topics, job, SOURCE, now)
        if await queue.redrive(job, int(now.timestamp() * 1000), event):
            redriven.append(job.id)
        else:
            skipped.append(job.id)
    return RedriveReport(redriven, skipped)


def _settings_and_ns(namespace: str | None) -> tuple[Settings, str]:
    settings = get_settings()
    return settings, namespace or settings.namespace


async def _with_redis(settings: Settings, fn: Any) -> Any:
    redis = make_redis(settings)
    try:
        return await fn(redis)
    finally:
        await redis.aclose()


def list_dead_letters(
    namespace: str | None = None,
    subscription: str | None = None,
    limit: int = 100,
    as_json: bool = False,
    out: TextIO | None = None,
) -> int:
    """Print dead-lettered notifications, oldest first; return the exit status."""
    out = out or sys.stdout
    settings, ns = _settings_and_ns(namespace)
    rows: list[dict[str, Any]] = asyncio.run(_with_redis(
        settings, lambda r: fetch_dead_letters(r, settings, ns, subscription, limit)
    ))
    if as_json:
        for row in rows:
            out.write(orjson.dumps(row).decode() + "\n")
        return EXIT_OK
    if not rows:
        out.write(f"no dead-lettered notifications in namespace {ns!r}\n")
        return EXIT_OK
    out.write("JOB_ID\tCHANNEL\tEVENT_TYPE\tATTEMPTS\tLAST_STATUS\tDEAD_AT\tREASON\n")
    for row in rows:
        out.write("\t".join(str(row[k]) if row[k] is not None else "-" for k in (
            "job_id", "channel", "event_type", "attempts", "last_status", "dead_at", "reason"
        )) + "\n")
    out.write(f"{len(rows)} dead-lettered notification(s)\n")
    return EXIT_OK


def redrive_command(
    job_ids: Sequence[str] = (),
    all_: bool = False,
    subscription: str | None = None,
    namespace: str | None = None,
    dry_run: bool = False,
    out: TextIO | None = None,
) -> int:
    """Redrive the named dead-lettered jobs, or all (``all_``); return the exit status."""
    out = out or sys.stdout
    if bool(job_ids) == all_:
        print("carepath notifications redrive: name job ids, or --all (not both)",
              file=sys.stderr)
        return EXIT_USAGE
    settings, ns = _settings_and_ns(namespace)
    report: RedriveReport = asyncio.run(_with_redis(
        settings,
        lambda r: redrive_dead_letters(r, settings, ns, None if all_ else list(job_ids),
                                       subscription, dry_run),
    ))
    verb = "would redrive" if dry_run else "redriven"
    for job_id in report.redriven:
        out.write(f"{verb}\t{job_id}\n")
    for job_id in report.skipped:
        out.write(f"skipped (not found or not dead)\t{job_id}\n")
    out.write(f"{len(report.redriven)} {verb}, {len(report.skipped)} skipped\n")
    return EXIT_PARTIAL if report.skipped else EXIT_OK


def add_notifications(sub: Any) -> None:
    """Register ``carepath notifications dead-letters|redrive`` on the CLI's subparsers."""
    import argparse

    p = sub.add_parser(
        "notifications",
        help="list and redrive dead-lettered notifications",
        description="Dead-lettered notifications: list them, or put them back on the queue.",
    )
    actions = p.add_subparsers(dest="notifications_action", required=True, metavar="ACTION")

    dl = actions.add_parser("dead-letters", help="list dead-lettered notifications")
    dl.add_argument("--namespace", default=None)
    dl.add_argument("--subscription", default=None, help="only this subscription's")
    dl.add_argument("--limit", type=int, default=100)
    dl.add_argument("--json", action="store_true", dest="as_json", help="one JSON per line")

    def list_handler(args: argparse.Namespace) -> int:
        return list_dead_letters(args.namespace, args.subscription, args.limit, args.as_json)

    dl.set_defaults(handler=list_handler)

    rd = actions.add_parser("redrive", help="resend dead-lettered notifications")
    rd.add_argument("job_ids", nargs="*", metavar="JOB_ID", help="job ids from dead-letters")
    rd.add_argument("--all", action="store_true", dest="all_", help="every dead letter")
    rd.add_argument("--subscription", default=None, help="only this subscription's")
    rd.add_argument("--namespace", default=None)
    rd.add_argument("--dry-run", action="store_true", help="show what would be redriven")

    def redrive_handler(args: argparse.Namespace) -> int:
        return redrive_command(args.job_ids, args.all_, args.subscription, args.namespace,
                               args.dry_run)

    rd.set_defaults(handler=redrive_handler)
