"""Offset commits of a consumer: explicit, per partition, batched, never past a record in
flight."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka import TopicPartition

from carepath_runtime.log import get_logger

log = get_logger("carepath_runtime.consumer")


class Committer:
    """Commits processed offsets in batches, never past an unfinished record.

    A record's offset is marked only after its effect is durable (or it was dead-lettered),
    and commits name those offsets explicitly, so a commit can never cover a record still
    in flight. Committing every ``every`` records or ``interval_s`` seconds instead of per
    record removes a broker round trip from each record; a crash re-delivers at most the
    uncommitted tail, which the idempotent handlers absorb.
    """

    def __init__(self, every: int, interval_s: float) -> None:
        self.every = max(1, every)
        self.interval_s = interval_s
        self._pending: dict[TopicPartition, int] = {}
        self._count = 0
        self._last = time.monotonic()
        self._consumer: Any = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    async def done(self, consumer: Any, tp: TopicPartition, next_offset: int,
                   count: int = 1) -> None:
        """Mark ``tp`` processed up to ``next_offset`` (``count`` records); commit now if
        the batch is full, or soon."""
        self._consumer = consumer
        self._pending[tp] = max(next_offset, self._pending.get(tp, 0))
        self._count += count
        if self.every == 1 or self._count >= self.every:
            await self.flush()  # a full batch: commit before taking more (backpressure)
        elif self._task is None or self._task.done():
            # Commit in the background: explicit offsets of processed records are safe to
            # commit at any time, and the next record need not wait for the round trip.
            due = max(0.0, self.interval_s - (time.monotonic() - self._last))
            self._task = asyncio.create_task(self._flush_later(due))

    async def _flush_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        await self.flush()

    async def flush(self) -> None:
        async with self._lock:
            if not self._pending or self._consumer is None:
                return
            offsets, self._pending = self._pending, {}
            self._count = 0
            self._last = time.monotonic()
            assignment = getattr(self._consumer, "assignment", None)
            if assignment is None:  # FastStream's in-memory test consumer: nothing to commit
                return
            try:
                assigned = assignment()
                # Partitions revoked meanwhile are their new owner's to commit.
                mine = {tp: off for tp, off in offsets.items() if tp in assigned}
                if mine:
                    await self._consumer.commit(mine)
            except Exception as exc:  # rebalance, coordinator moved: redelivery is safe
                log.warning("commit_failed", error=f"{type(exc).__name__}: {exc}")
