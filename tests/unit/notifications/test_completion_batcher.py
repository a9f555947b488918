"""Group commit of delivery outcomes, against a scripted ``complete_many`` (no Redis): an
outcome alone goes at once, outcomes that arrive while a call is out go together in the next,
every caller gets its own answer, an error reaches exactly the callers of its call, and a
caller cancelled meanwhile still has its outcome recorded."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from carepath_notifications.completion_batcher import CompletionBatcher
from carepath_notifications.domain.jobs import DeliveryJob
from carepath_notifications.job_queue import Completion, CompletionRequest


def request(n: int) -> CompletionRequest:
    job = DeliveryJob.new(event_id=f"e{n}", event_type="carepath.referral.created.v1",
                          subscription_id="s1", channel="webhook", endpoint="wh",
                          body=b"{}", now_ms=0)
    return CompletionRequest(job, owner="w1", kind="delivered", now_ms=1, attempt=1)


class Redis:
    """``complete_many`` whose calls stay out until the test lets each one go."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.gates: dict[int, asyncio.Event] = {}
        self.fail: set[int] = set()  # call numbers that raise

    def gate(self, number: int) -> asyncio.Event:
        return self.gates.setdefault(number, asyncio.Event())

    async def complete_many(self, requests: Sequence[CompletionRequest]) -> list[Completion]:
        number = len(self.calls)
        self.calls.append([r.job.event_id for r in requests])
        await self.gate(number).wait()
        if number in self.fail:
            raise ConnectionError("redis away")
        return [Completion(applied=r.job.event_id != "e-stale", next_job=None)
                for r in requests]

    async def release(self, number: int) -> None:
        """Let call ``number`` answer (now if it is out, else as soon as it is made)."""
        self.gate(number).set()
        await settle()


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_an_outcome_alone_goes_at_once_in_a_call_of_its_own() -> None:
    redis = Redis()
    batcher = CompletionBatcher(redis.complete_many)
    waiting = asyncio.create_task(batcher.complete(request(1)))
    await settle()
    assert redis.calls == [["e1"]]  # left without waiting for company
    await redis.release(0)
    assert (await waiting).applied
    assert batcher.calls == 1


async def test_outcomes_that_arrive_while_a_call_is_out_go_together_next() -> None:
    redis = Redis()
    batcher = CompletionBatcher(redis.complete_many)
    first = asyncio.create_task(batcher.complete(request(1)))
    await settle()
    rest = [asyncio.create_task(batcher.complete(request(n))) for n in range(2, 7)]
    await settle()
    assert redis.calls == [["e1"]]  # the others wait for the call that is out
    await redis.release(0)
    await first
    await settle()
    assert redis.calls == [["e1"], ["e2", "e3", "e4", "e5", "e6"]]
    await redis.release(1)
    assert all(done.applied for done in await asyncio.gather(*rest))
    # Nothing is out now: the next outcome goes at once again.
    again = asyncio.create_task(batcher.complete(request(7)))
    await settle()
    assert redis.calls[-1] == ["e7"]
    await redis.release(2)
    await again
    assert batcher.calls == 3


async def test_each_caller_gets_its_own_answer() -> None:
    redis = Redis()
    batcher = CompletionBatcher(redis.complete_many)
    first = asyncio.create_task(batcher.complete(request(1)))
    await settle()
    stale = CompletionRequest(DeliveryJob.new(
        event_id="e-stale", event_type="t", subscription_id="s1", channel="webhook",
        endpoint="wh", body=b"{}", now_ms=0), owner="w1", kind="retry", now_ms=1, attempt=1)
    pair = [asyncio.create_task(batcher.complete(r)) for r in (request(2), stale)]
    await redis.release(0)
    await redis.release(1)
    await first
    answers = await asyncio.gather(*pair)
    assert [a.applied for a in answers] == [True, False]


async def test_a_failed_call_reaches_its_callers_and_no_others() -> None:
    redis = Redis()
    redis.fail = {1}
    batcher = CompletionBatcher(redis.complete_many)
    first = asyncio.create_task(batcher.complete(request(1)))
    await settle()
    doomed = [asyncio.create_task(batcher.complete(request(n))) for n in (2, 3)]
    await redis.release(0)
    assert (await first).applied
    await settle()
    later = asyncio.create_task(batcher.complete(request(4)))  # arrives while call 1 is out
    await redis.release(1)
    for task in doomed:
        with pytest.raises(ConnectionError):
            await task
    await redis.release(2)
    assert (await later).applied
    assert redis.calls == [["e1"], ["e2", "e3"], ["e4"]]


async def test_a_caller_cancelled_meanwhile_still_has_its_outcome_recorded() -> None:
    redis = Redis()
    batcher = CompletionBatcher(redis.complete_many)
    first = asyncio.create_task(batcher.complete(request(1)))
    await settle()
    gone = asyncio.create_task(batcher.complete(request(2)))
    kept = asyncio.create_task(batcher.complete(request(3)))
    await settle()
    gone.cancel()
    await redis.release(0)
    await first
    await redis.release(1)
    assert (await kept).applied
    assert redis.calls[1] == ["e2", "e3"]  # the cancelled caller's outcome went anyway
    assert gone.cancelled()


async def test_batches_are_bounded() -> None:
    redis = Redis()
    batcher = CompletionBatcher(redis.complete_many, max_batch=2)
    first = asyncio.create_task(batcher.complete(request(0)))
    await settle()
    rest = [asyncio.create_task(batcher.complete(request(n))) for n in range(1, 6)]
    for number in range(4):
        await redis.release(number)
    await first
    await asyncio.gather(*rest)
    assert redis.calls == [["e0"], ["e1", "e2"], ["e3", "e4"], ["e5"]]
    with pytest.raises(ValueError):
        CompletionBatcher(redis.complete_many, max_batch=0)
