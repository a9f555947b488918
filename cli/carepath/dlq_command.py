"""``carepath dlq list|show|redrive --service NAME [--since T] [--kind K]``: every dead letter.

Dead letters live in two places:

* ``<ns>.dlq.<service>`` Kafka topics (pathway, referrals, notifications): records a consumer
  gave up on, with the original value, key and headers plus ``dlq_*`` headers (kind, cause,
  group, original topic/partition/offset, attempts, time). A record is named
  ``<partition>:<offset>`` of its dead-letter topic.
* notification delivery jobs that ran out of attempts (Redis, ``<ns>:notify:dead``), named by
  job id (``--service notifications`` lists both; their kind is ``delivery``).

``redrive`` puts a record back where it came from: the original value, key and headers (the
same CloudEvents id) on the original topic, so the consumer's idempotent effects apply: an
event already folded in changes nothing, one that never was is folded in once. Each redrive
is audited in the Redis stream ``<ns>:dlq:audit`` (who, when, which record, where to), and
the record is marked redriven (``<ns>:dlq:redriven:<service>``), so a second ``redrive``
skips it unless ``--again``. A notification job is redriven through the delivery queue
(same ``webhook-id``), which also publishes ``carepath.notification.redriven.v1``.

Exit status: 0 done; 1 a named record was not found or was skipped; 2 bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson
import redis.asyncio as aioredis

from carepath_contracts.topics import Topics
from carepath_runtime.settings import Settings, get_settings

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_USAGE = 2
SERVICES = ("pathway", "referrals", "notifications")
DELIVERY_KIND = "delivery"


@dataclass(frozen=True)
class DeadLetter:
    id: str  # "<partition>:<offset>" on the DLQ topic, or a notification job id
    service: str
    kind: str
    cause: str
    failed_at: datetime | None
    event_id: str | None
    event_type: str | None
    original_topic: str | None
    attempts: int | None
    redriven: bool
    key: bytes | None = None
    value: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()

    def row(self) -> dict[str, Any]:
        return {
            "id": self.id, "service": self.service, "kind": self.kind,
            "event_id": self.event_id, "event_type": self.event_type,
            "original_topic": self.original_topic, "attempts": self.attempts,
            "failed_at": self.failed_at.isoformat() if self.failed_at else None,
            "redriven": self.redriven, "cause": self.cause,
        }


def parse_since(text: str | None) -> datetime | None:
    if text is None:
        return None
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _dlq_topic(topics: Topics, service: str) -> str:
    return str(getattr(topics, f"dlq_{service}"))


def _redriven_key(ns: str, service: str) -> str:
    return f"{ns}:dlq:redriven:{service}"


def audit_key(ns: str) -> str:
    return f"{ns}:dlq:audit"


def _from_record(service: str, rec: Any, redriven: set[str]) -> DeadLetter:
    headers = {k: v for k, v in (rec.headers or ())}

    def h(name: str) -> str | None:
        v = headers.get(name)
        return v.decode() if isinstance(v, bytes) else None

    failed = h("dlq_failed_at")
    attempts = h("dlq_attempts")
    rid = f"{rec.partition}:{rec.offset}"
    return DeadLetter(
        id=rid, service=service, kind=h("dlq_kind") or "unknown", cause=h("dlq_cause") or "",
        failed_at=datetime.fromisoformat(failed) if failed else None,
        event_id=h("ce_id"), event_type=h("ce_type"), original_topic=h("dlq_original_topic"),
        attempts=int(attempts) if attempts and attempts.isdigit() else None,
        redriven=rid in redriven, key=rec.key, value=rec.value,
        headers=tuple(rec.headers or ()),
    )


async def read_topic_dead_letters(settings: Settings, redis: aioredis.Redis, ns: str,
                                  service: str) -> list[DeadLetter]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    topic = _dlq_topic(Topics(ns), service)
    raw: Any = await redis.smembers(_redriven_key(ns, service))
    redriven = {m.decode() if isinstance(m, bytes) else str(m) for m in raw}
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=settings.kafka_bootstrap_servers,
                                group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", request_timeout_ms=15000)
    await consumer.start()
    out: list[DeadLetter] = []
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        if not tps:
            return []
        ends = await consumer.end_offsets(tps)
        await consumer.seek_to_beginning(*tps)
        remaining = {tp for tp in tps if ends[tp] > await consumer.position(tp)}
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=2000)
            if not batch:
                break
            for tp, recs in batch.items():
                out.extend(_from_record(service, r, redriven) for r in recs)
                if recs and recs[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    return out


async def read_job_dead_letters(settings: Settings, redis: aioredis.Redis, ns: str
                                ) -> list[DeadLetter]:
    from carepath_notifications.cli import fetch_dead_letters

    rows = await fetch_dead_letters(redis, settings, ns, None, 1_000_000)
    return [
        DeadLetter(
            id=str(r["job_id"]), service="notifications", kind=DELIVERY_KIND,
            cause=str(r["reason"] or ""),
            failed_at=datetime.fromisoformat(r["dead_at"]) if r["dead_at"] else None,
            event_id=r["event_id"], event_type=r["event_type"], original_topic=None,
            attempts=r["attempts"], redriven=bool(r["redriven"]),
        )
        for r in rows
    ]


async def collect(settings: Settings, redis: aioredis.Redis, ns: str, service: str,
                  since: datetime | None = None, kind: str | None = None) -> list[DeadLetter]:
    found = await read_topic_dead_letters(settings, redis, ns, service)
    if service == "notifications":
        found += await read_job_dead_letters(settings, redis, ns)
    return [d for d in found
            if (since is None or (d.failed_at is not None and d.failed_at >= since))
            and (kind is None or d.kind == kind)]


async def redrive(settings: Settings, redis: aioredis.Redis, ns: str,
                  letters: list[DeadLetter], again: bool = False, dry_run: bool = False
                  ) -> tuple[list[str], list[str]]:
    """Put ``letters`` back on their original topics (or the delivery queue); audit each."""
    from faststream.kafka import KafkaBroker

    done: list[str] = []
    skipped: list[str] = []
    jobs = [d.id for d in letters if d.kind == DELIVERY_KIND]
    records = [d for d in letters if d.kind != DELIVERY_KIND]
    operator = getpass.getuser()
    if jobs:
        from carepath_notifications.cli import redrive_dead_letters

        report = await redrive_dead_letters(redis, settings, ns, jobs, None, dry_run)
        done += report.redriven
        skipped += report.skipped
        if not dry_run:
            for job_id in report.redriven:
                await _audit(redis, ns, "notifications", job_id, None, None, operator)
    if not records:
        return done, skipped
    broker = KafkaBroker(settings.kafka_bootstrap_servers, enable_idempotence=True,
                         acks="all", logger=None)
    await broker.start()
    try:
        for d in records:
            if (d.redriven and not again) or d.original_topic is None:
                skipped.append(d.id)
                continue
            if dry_run:
                done.append(d.id)
                continue
            headers = {k: v.decode() for k, v in d.headers if not k.startswith("dlq_")}
            await broker.publish(d.value or b"", d.original_topic, key=d.key,
                                 headers=headers)
            await redis.sadd(_redriven_key(ns, d.service), d.id)
            await _audit(redis, ns, d.service, d.id, d.event_id, d.original_topic, operator)
            done.append(d.id)
    finally:
        await broker.stop()
    return done, skipped


async def _audit(redis: aioredis.Redis, ns: str, service: str, dead_letter_id: str,
                 event_id: str | None, to_topic: str | None, operator: str) -> None:
    await redis.xadd(audit_key(ns), {
        "action": "redrive", "service": service, "dead_letter": dead_letter_id,
        "event_id": event_id or "", "to_topic": to_topic or "delivery-queue",
        "operator": operator, "at": datetime.now(UTC).isoformat(),
    })


async def _run(args: argparse.Namespace, out: TextIO) -> int:
    settings = get_settings()
    ns = args.namespace or settings.namespace
    redis = aioredis.Redis.from_url(settings.redis_url, decode_responses=False)
    try:
        letters = await collect(settings, redis, ns, args.service, parse_since(args.since),
                                args.kind)
        if args.dlq_action == "list":
            for d in letters:
                out.write(orjson.dumps(d.row()).decode() + "\n")
            out.write(f"{len(letters)} dead letter(s) of {args.service} in {ns!r}\n")
            return EXIT_OK
        if args.dlq_action == "show":
            by_id = {d.id: d for d in letters}
            missing = 0
            for wanted in args.ids:
                hit = by_id.get(wanted)
                if hit is None:
                    out.write(f"not found\t{wanted}\n")
                    missing += 1
                    continue
                row = hit.row()
                row["key"] = hit.key.decode(errors="replace") if hit.key else None
                row["headers"] = {k: v.decode(errors="replace") for k, v in hit.headers
                                  if not k.startswith("dlq_")}
                row["value_bytes"] = len(hit.value or b"")
                out.write(orjson.dumps(row, option=orjson.OPT_INDENT_2).decode() + "\n")
            return EXIT_PARTIAL if missing else EXIT_OK
        chosen = letters if args.all_ else [d for d in letters if d.id in set(args.ids)]
        unknown = sorted(set(args.ids) - {d.id for d in chosen})
        done, skipped = await redrive(settings, redis, ns, chosen, args.again, args.dry_run)
        verb = "would redrive" if args.dry_run else "redriven"
        for i in done:
            out.write(f"{verb}\t{i}\n")
        for i in [*skipped, *unknown]:
            out.write(f"skipped\t{i}\n")
        out.write(f"{len(done)} {verb}, {len(skipped) + len(unknown)} skipped\n")
        return EXIT_PARTIAL if skipped or unknown else EXIT_OK
    finally:
        await redis.aclose()


def dlq_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    if args.dlq_action == "redrive" and bool(args.ids) == args.all_:
        print("carepath dlq redrive: name dead-letter ids, or --all (not both)", file=sys.stderr)
        return EXIT_USAGE
    if args.dlq_action == "show" and not args.ids:
        print("carepath dlq show: name at least one dead-letter id", file=sys.stderr)
        return EXIT_USAGE
    return asyncio.run(_run(args, out))


def add_dlq(sub: Any) -> None:
    p = sub.add_parser(
        "dlq", help="list, show and redrive the dead letters of any service",
        description="Dead letters of a service: list them, show one, or redrive them "
                    "(same event id, audited).",
    )
    actions = p.add_subparsers(dest="dlq_action", required=True, metavar="ACTION")
    for name, helptext in (("list", "list dead letters"), ("show", "show dead letters"),
                           ("redrive", "put dead letters back on their original topic")):
        a = actions.add_parser(name, help=helptext)
        a.add_argument("--service", required=True, choices=SERVICES)
        a.add_argument("--since", default=None, help="only those failed at or after (ISO 8601)")
        a.add_argument("--kind", default=None,
                       help="undecodable, rejected, handler_failed or delivery")
        a.add_argument("--namespace", default=None)
        if name in ("show", "redrive"):
            a.add_argument("ids", nargs="*", metavar="ID", help="<partition>:<offset> or job id")
        if name == "redrive":
            a.add_argument("--all", action="store_true", dest="all_",
                           help="every dead letter that matches")
            a.add_argument("--again", action="store_true",
                           help="also those redriven before")
            a.add_argument("--dry-run", action="store_true")
        a.set_defaults(handler=dlq_command)
