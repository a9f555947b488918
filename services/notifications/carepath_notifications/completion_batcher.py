"""Group commit of delivery outcomes: the attempts that finish while one call is on its way to
Redis are recorded together by the next call (one script call, one round trip).

A worker with many attempts in flight finishes them at nearly the same time; recording each
with its own call costs a round trip, a command's framing and a socket write apiece. Here an
outcome that finds no call out goes at once, alone (nothing waits for company); outcomes that
arrive while a call is out wait for it and then leave together in the next one.

Each caller gets its own :class:`Completion`, or the exception its call raised (a Redis outage
reaches every caller of that batch, and each retries as it would alone). A caller that is
cancelled while its batch is out does not withdraw its outcome: the batch still records it,
which is what the attempt (already sent) needs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from carepath_notifications.job_queue import Completion, CompletionRequest

CompleteMany = Callable[[Sequence[CompletionRequest]], Awaitable[list[Completion]]]


class CompletionBatcher:
    def __init__(self, complete_many: CompleteMany, max_batch: int = 64) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._complete_many = complete_many
        self.max_batch = max_batch
        self._pending: list[tuple[CompletionRequest, asyncio.Future[Completion]]] = []
        self._busy = False  # a call is out (the first caller's own, or the drainer's)
        self._drainer: asyncio.Task[None] | None = None
        self.calls = 0  # round trips made (for tests and logs)

    async def complete(self, request: CompletionRequest) -> Completion:
        if self._busy:
            future: asyncio.Future[Completion] = asyncio.get_running_loop().create_future()
            self._pending.append((request, future))
            return await future
        self._busy = True
        try:
            self.calls += 1
            [result] = await self._complete_many([request])
            return result
        finally:
            self._hand_over()

    def _hand_over(self) -> None:
        """The call out returned: the outcomes that queued meanwhile go next, together."""
        if self._pending:
            self._drainer = asyncio.create_task(self._drain(), name="notify-complete")
        else:
            self._busy = False

    async def _drain(self) -> None:
        batch: list[tuple[CompletionRequest, asyncio.Future[Completion]]] = []
        try:
            while self._pending:
                batch = self._pending[:self.max_batch]
                del self._pending[:len(batch)]
                self.calls += 1
                try:
                    results = await self._complete_many([request for request, _ in batch])
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                else:
                    for (_, future), result in zip(batch, results, strict=True):
                        if not future.done():
                            future.set_result(result)
                batch = []
        finally:
            # Cancelled (the loop is closing): nobody will record these; let their callers go.
            for _, future in [*batch, *self._pending]:
                if not future.done():
                    future.cancel()
            self._pending.clear()
            self._drainer = None
            self._busy = False
