"""The episodes a benchmark pushes: a seeded mix, pre-built as episode.submitted records.

The mix is the one the end-to-end tests draw from (``tests/support/episodes.py``): lumbar and
cervical episodes with or without imaging, blocks, radicular pain, PHQ-9, trigger points,
red flags and earlier facet injections. It yields two to eight recommendations per episode
(about 4.3 on average), so one episode becomes about four referrals and four webhooks.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from carepath_shared.envelope import Envelope, derive_id
from carepath_shared.episode import parse_episode
from carepath_shared.events import EPISODE_SUBMITTED, EpisodeSubmitted, dump_body

SOURCE = "/carepath/benchmarks"


def random_episode(rng: random.Random, episode_id: str) -> dict[str, Any]:
    """One episode of the mix (same distribution as tests/support/episodes.py)."""
    ep: dict[str, Any] = {"episode_id": episode_id, "region": rng.choice(["lumbar", "cervical"])}
    if rng.random() < 0.8:
        ep["imaging_done"] = rng.sample(["xray", "mri", "ct", "spect"], rng.randint(0, 3))
    if rng.random() < 0.6:
        ep["medial_branch_blocks"] = [{"relief_percent": rng.randint(0, 100)}]
    if rng.random() < 0.5:
        ep["radicular_pain"] = rng.random() < 0.5
    if rng.random() < 0.4:
        ep["phq9"] = rng.randint(0, 27)
    if rng.random() < 0.3:
        ep["trigger_points"] = rng.random() < 0.5
    if rng.random() < 0.1:
        ep["red_flags"] = [rng.choice(["fever", "trauma", "cancer_history"])]
    if rng.random() < 0.3:
        ep["facet_injections"] = [
            {"relief_percent": rng.randint(0, 60), "technically_adequate": rng.random() < 0.8}
        ]
    return ep


def episode_mix(n: int, seed: int = 7, prefix: str = "bench") -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [random_episode(rng, f"{prefix}-{i:07d}") for i in range(n)]


@dataclass(frozen=True)
class PreparedEpisode:
    """An episode.submitted record ready to send; only ``ce_time`` is stamped at send time."""

    episode_id: str
    event_id: str
    key: bytes
    value: bytes
    base_headers: tuple[tuple[str, bytes], ...]

    def headers(self, sent_at: datetime) -> list[tuple[str, bytes]]:
        return [*self.base_headers, ("ce_time", sent_at.isoformat().encode())]


def prepare(episode: dict[str, Any]) -> PreparedEpisode:
    """Frame an episode exactly as intake does (shared envelope, deterministic id, body model)."""
    parsed = parse_episode(episode)
    episode_id = parsed.episode_id or ""
    event_id = derive_id(EPISODE_SUBMITTED, episode_id, "bench")
    env = Envelope.new(event_type=EPISODE_SUBMITTED, source=SOURCE, event_id=event_id)
    body = EpisodeSubmitted(episode_id=episode_id, episode=parsed, submitted_at=datetime.now(UTC))
    headers = env.to_headers()
    headers.pop("ce_time")
    return PreparedEpisode(
        episode_id=episode_id,
        event_id=event_id,
        key=episode_id.encode(),
        value=dump_body(body),
        base_headers=tuple((k, v.encode()) for k, v in headers.items()),
    )
