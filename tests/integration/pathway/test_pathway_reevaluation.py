"""Re-evaluating every stored episode under another profile, on the real broker and Redis.

Episodes are stored through the pathway's own state store (as the Kafka handler stores
them), then :func:`carepath_pathway.reevaluation.reevaluate_all` re-evaluates them and
publishes; the records are read back from the real topics.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from carepath_contracts.envelope import Envelope
from carepath_contracts.episode import parse_episode
from carepath_contracts.events import EPISODE_SUBMITTED, RECOMMENDATIONS_ISSUED
from carepath_pathway.domain import get_profile
from carepath_pathway.episode_state import EpisodeState, on_submitted
from carepath_pathway.episode_store import episode_store
from carepath_pathway.handlers import outbound_events
from carepath_pathway.reevaluation import reevaluate_all, reevaluate_episode, trigger_envelope
from carepath_runtime.service import Runtime
from carepath_runtime.state_store import StateStore
from carepath_testkit.kafka_reading import end_offsets, read_range
from support.runtime import started_runtime

pytestmark = [pytest.mark.kafka, pytest.mark.redis]

SEED = get_profile("seed")
SIS = get_profile("sis")


@pytest.fixture(scope="module")
def own_namespace(kafka_bootstrap: str) -> str:
    """A namespace of this module's own: a re-evaluation walks every state in its namespace."""
    import asyncio

    from carepath_runtime.kafka_admin import create_topics

    ns = f"reeval{uuid.uuid4().hex[:10]}"
    asyncio.run(create_topics(kafka_bootstrap, ns))
    return ns


@pytest.fixture()
async def runtime(kafka_bootstrap: str, redis_url: str, own_namespace: str
                  ) -> AsyncIterator[Runtime]:
    async with started_runtime("pathway-test", kafka_bootstrap, redis_url,
                               own_namespace) as rt:
        yield rt


async def store_episodes(rt: Runtime, store: StateStore, prefix: str) -> dict[str, EpisodeState]:
    """Three episodes stored as the handler stores them (folded, published marked)."""
    episodes = {
        f"{prefix}-rfa": {"medial_branch_blocks": [{"relief_percent": 75}]},  # sis: no RFA
        f"{prefix}-two": {"medial_branch_blocks": [{"relief_percent": 90},
                                                   {"relief_percent": 85}]},
        f"{prefix}-pt": {"pain_nrs": 6},
    }
    states: dict[str, EpisodeState] = {}
    for episode_id, fields in episodes.items():
        episode = parse_episode({"episode_id": episode_id, "region": "lumbar", **fields})
        trigger = Envelope.new(event_type=EPISODE_SUBMITTED, source="/test")

        def fold(_: Any, episode: Any = episode, episode_id: str = episode_id,
                 trigger: Envelope = trigger) -> Any:
            state, result = on_submitted(None, episode, SEED)
            states[episode_id] = state
            return state.dump(), outbound_events(rt, trigger, episode_id, state, result)

        await store.process(episode_id, trigger.id, fold)
        await store.mark_published(episode_id, trigger.id)
    return states


async def recommendations(rt: Runtime, start: Any, prefix: str) -> list[dict[str, Any]]:
    topic = rt.topics.recommendations
    records = await read_range(rt.settings.kafka_bootstrap_servers,
                               await end_offsets(rt.settings.kafka_bootstrap_servers, [topic]),
                               start)
    out = []
    for r in records:
        headers = {k: v.decode() for k, v in r.headers}
        key = r.key.decode() if r.key else ""
        if headers.get("ce_type") == RECOMMENDATIONS_ISSUED and key.startswith(prefix):
            out.append({"headers": headers, "body": orjson.loads(r.value)})
    return out


async def test_every_stored_episode_is_reevaluated_once_under_the_new_profile(
    runtime: Runtime,
) -> None:
    rt = runtime
    store = episode_store(rt)
    prefix = f"re{uuid.uuid4().hex[:6]}"
    before = await store_episodes(rt, store, prefix)
    start = await end_offsets(rt.settings.kafka_bootstrap_servers, [rt.topics.recommendations])

    result = await reevaluate_all(rt, SIS, f"{prefix}-req", concurrency=4)
    assert not result.failed
    ours = list(before)
    assert result.reevaluated >= len(ours)  # the other test's episodes may be there too
    events = await recommendations(rt, start, prefix)
    by_episode = {e["body"]["episode_id"]: e for e in events}
    assert sorted(by_episode) == sorted(ours)
    assert len(events) == len(ours)  # one each
    for episode_id, event in by_episode.items():
        body = event["body"]
        assert body["profile"] == "sis"
        assert body["evaluation_seq"] == 2
        stored = EpisodeState.load((await store.get(episode_id)).data)
        assert stored is not None and stored.profile == "sis"
        # Still-recommended steps keep their ids (their referrals stay).
        for rec in body["recommendations"]:
            if rec["step"] in before[episode_id].active:
                assert rec["recommendation_id"] == before[episode_id].active[rec["step"]]
        # The whole request shares one correlation id; each episode's trigger is its cause.
        assert event["headers"]["ce_causationid"] == trigger_envelope(
            f"{prefix}-req", episode_id).id
    withdrawn = [w["step"] for w in by_episode[f"{prefix}-rfa"]["body"]["withdrawn"]]
    assert withdrawn == ["ablation.rfa"]
    assert len({e["headers"]["ce_correlationid"] for e in events}) == 1

    # The same request again re-evaluates and publishes nothing.
    start = await end_offsets(rt.settings.kafka_bootstrap_servers, [rt.topics.recommendations])
    again = await reevaluate_all(rt, SIS, f"{prefix}-req", concurrency=4)
    assert again.reevaluated == 0
    assert again.already_done >= len(ours)
    assert await recommendations(rt, start, prefix) == []


async def test_a_run_that_crashed_before_publishing_is_finished_by_the_next(
    runtime: Runtime,
) -> None:
    rt = runtime
    store = episode_store(rt)
    prefix = f"rc{uuid.uuid4().hex[:6]}"
    await store_episodes(rt, store, prefix)
    episode_id = f"{prefix}-rfa"

    # A first run folded this episode's re-evaluation, then died before publishing.
    async def no_publish(_: Any) -> None:
        raise ConnectionError("killed before the publish")

    rt_broken: Any = type("Broken", (), {"topics": rt.topics, "broker": None})()
    import carepath_pathway.reevaluation as module

    original = module.publish_all
    module.publish_all = lambda _broker, _events: no_publish(_events)  # type: ignore[assignment]
    try:
        with pytest.raises(ConnectionError):
            await reevaluate_episode(rt_broken, store, SIS, f"{prefix}-req", episode_id)
    finally:
        module.publish_all = original
    folded = await store.get(episode_id)
    assert folded.last_input == f"reevaluate:{prefix}-req"

    start = await end_offsets(rt.settings.kafka_bootstrap_servers, [rt.topics.recommendations])
    assert await reevaluate_episode(rt, store, SIS, f"{prefix}-req", episode_id)
    events = await recommendations(rt, start, prefix)
    assert len(events) == 1
    assert events[0]["body"]["evaluation_seq"] == 2  # folded once, not twice
    assert (await store.get(episode_id)).version == folded.version
