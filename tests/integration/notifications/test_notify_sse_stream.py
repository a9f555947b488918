"""The live stream on the real broker: snapshot, then deltas; resume with Last-Event-ID with
no gap and no repeat."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from notify_support import (
    COORDINATOR,
    RADIOLOGY,
    SseEvent,
    base_env,
    careplan_event,
    new_namespace,
    sse_events,
    start_notifications,
    status_event,
)

from carepath_contracts.topics import Topics
from carepath_runtime.kafka_broker import OutboundEvent, make_broker, publish_all
from carepath_runtime.settings import Settings
from support.observe import wait_until
from support.processes import ServiceProcess

pytestmark = [pytest.mark.kafka, pytest.mark.redis]

EPISODES = [f"ep-s{i}" for i in range(8)]


@dataclass
class Stream:
    ns: str
    topics: Topics
    service: ServiceProcess
    kafka: str

    def publish(self, events: list[OutboundEvent]) -> None:
        async def go() -> None:
            broker = make_broker(Settings(kafka_bootstrap_servers=self.kafka), "test-sse")
            await broker.start()
            try:
                await publish_all(broker, events)
            finally:
                await broker.stop()

        asyncio.run(go())


@pytest.fixture(scope="module")
def stream(kafka_bootstrap: str, redis_url: str) -> Iterator[Stream]:
    ns = new_namespace(kafka_bootstrap, "nss")
    env = {**base_env(ns, kafka_bootstrap, redis_url), "CAREPATH_STREAM_KEEPALIVE_S": "1"}
    service = start_notifications(ns, env)
    yield Stream(ns, Topics(ns), service, kafka_bootstrap)
    service.stop()


def batch(s: Stream, tag: str, rounds: int) -> list[OutboundEvent]:
    """``rounds`` status updates per episode, and a care-plan update for every other one."""
    out: list[OutboundEvent] = []
    for r in range(rounds):
        for i, ep in enumerate(EPISODES):
            out.append(status_event(s.topics.pathway_status, ep, r, f"st-{tag}-{ep}-{r}"))
            if i % 2 == 0:
                out.append(careplan_event(s.topics.care_plans, ep, r, f"cp-{tag}-{ep}-{r}"))
    return out


def read(s: Stream, *, until: int, headers: dict[str, str], params: dict[str, str] | None = None,
         stop_after_snapshot: bool = False, timeout: float = 30) -> list[SseEvent]:
    """Connect, read until ``until`` events with an id (deltas) arrived, then disconnect."""
    got: list[SseEvent] = []
    deadline = time.monotonic() + timeout
    with httpx.stream("GET", f"{s.service.url}/stream", headers=headers, params=params,
                      timeout=httpx.Timeout(10.0)) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for event in sse_events(response.iter_lines()):
            assert time.monotonic() < deadline, f"only {len(got)} events"
            if event.event == ":":
                continue
            got.append(event)
            if stop_after_snapshot:
                if event.event == "snapshot":
                    break
            elif sum(1 for e in got if e.event != "snapshot" and e.id) >= until:
                break
            assert time.monotonic() < deadline, f"only {len(got)} events"
    return got


def ce_ids(events: list[SseEvent]) -> list[str]:
    return [e.json()["id"] for e in events if e.id is not None and e.event != "snapshot"]


def take(events: Iterator[SseEvent], n: int, timeout: float = 30) -> list[SseEvent]:
    """The next ``n`` deltas (events with an id), stopping at the deadline."""
    got: list[SseEvent] = []
    deadline = time.monotonic() + timeout
    while len(got) < n:
        assert time.monotonic() < deadline, f"only {len(got)} of {n} deltas"
        event = next(events)
        assert event.event != "snapshot"
        if event.id is not None:
            got.append(event)
    return got


def test_snapshot_then_deltas_and_resume_without_gap_or_repeat(stream: Stream) -> None:
    stream.publish(batch(stream, "a", 2))  # the state before anyone connects
    b = batch(stream, "b", 2)
    c = batch(stream, "c", 2)
    b_ids = [e.headers["ce_id"] for e in b]
    c_ids = [e.headers["ce_id"] for e in c]

    with httpx.stream("GET", f"{stream.service.url}/stream", headers=COORDINATOR,
                      timeout=httpx.Timeout(10.0)) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response.iter_lines())
        first: list[SseEvent] = []
        while not first or first[-1].event != "snapshot":
            event = next(events)
            if event.event != ":":
                first.append(event)
        snapshot = first[:-1]
        assert first[-1].id
        assert all(e.id is None for e in snapshot)  # a cut snapshot is simply taken again
        latest = {(e.event, e.json()["episode_id"]): e.json()["id"] for e in snapshot}
        want = {("pathway.status", ep): f"st-a-{ep}-1" for ep in EPISODES}
        want |= {("careplan.updated", ep): f"cp-a-{ep}-1" for ep in EPISODES[::2]}
        assert latest == want and len(snapshot) == len(want)  # one per episode: the latest
        assert first[-1].json() == {"episodes": len(want)}

        stream.publish(b)  # deltas on the open connection
        part1 = take(events, 9)
    # The client went away after nine deltas; the server had likely sent more.
    got1 = ce_ids(part1)
    assert len(got1) == 9 and set(got1) <= set(b_ids)
    last_id = part1[-1].id or ""

    stream.publish(c)  # published while the client is away
    remaining = len(b_ids) - len(got1) + len(c_ids)
    part2 = read(stream, until=remaining, headers={**COORDINATOR, "Last-Event-ID": last_id})
    assert not any(e.event == "snapshot" for e in part2)  # a resume gets no snapshot
    got2 = ce_ids(part2)

    everything = got1 + got2
    assert Counter(everything).most_common(1)[0][1] == 1, "an event was repeated"
    assert set(everything) == set(b_ids) | set(c_ids), "an event was lost"
    assert not set(everything) & {e.headers["ce_id"] for e in batch(stream, "a", 2)}
    # Per episode and topic, the order of publication holds.
    published = b_ids + c_ids
    for ep in EPISODES:
        mine = [i for i in everything if f"-{ep}-" in i and i.startswith("st-")]
        assert mine == [i for i in published if f"-{ep}-" in i and i.startswith("st-")]


def test_filtered_stream_sees_one_episode(stream: Stream) -> None:
    ep = EPISODES[3]
    stream.publish([status_event(stream.topics.pathway_status, ep, 9, "st-f-1")])
    first = read(stream, until=0, headers=COORDINATOR, params={"episode_id": ep},
                 stop_after_snapshot=True)
    snapshot = [e for e in first if e.event != "snapshot"]
    assert {e.json()["episode_id"] for e in snapshot} == {ep}
    assert [e.json()["id"] for e in snapshot] == ["st-f-1"]
    stream.publish([
        status_event(stream.topics.pathway_status, EPISODES[0], 10, "st-f-other"),
        status_event(stream.topics.pathway_status, ep, 10, "st-f-2"),
    ])
    deltas = read(stream, until=1, headers={**COORDINATOR, "Last-Event-ID": first[-1].id or ""},
                  params={"episode_id": ep})
    assert ce_ids(deltas) == ["st-f-2"]


def test_every_stream_is_closed_when_its_client_goes(stream: Stream) -> None:
    # Each test above disconnected its clients; the service stopped their consumers.
    def counts() -> tuple[int, int]:
        log = stream.service.log_path.read_text()
        return log.count('"stream_opened"'), log.count('"stream_closed"')

    assert counts()[0] >= 4
    assert wait_until(lambda: counts()[0] == counts()[1], timeout=30), counts()


def test_stream_needs_a_coordinator_or_dashboard_token(stream: Stream) -> None:
    url = f"{stream.service.url}/stream"
    assert httpx.get(url, timeout=5).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer nope"}, timeout=5).status_code == 401
    assert httpx.get(url, headers=RADIOLOGY, timeout=5).status_code == 403
    bad = httpx.get(url, headers={**COORDINATOR, "Last-Event-ID": "42"}, timeout=5)
    assert bad.status_code == 400
