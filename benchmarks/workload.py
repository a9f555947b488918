"""The episodes a benchmark pushes, pre-built as episode.submitted records.

The episodes are the seeded mix the end-to-end tests draw from
(:func:`carepath_testkit.episodes.episode_mix`): two to eight recommendations per episode
(about 4.3 on average), so one episode becomes about four referrals and four webhooks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from carepath_contracts.envelope import Envelope, derive_id
from carepath_contracts.episode import parse_episode
from carepath_contracts.events import EPISODE_SUBMITTED, EpisodeSubmitted, dump_body

SOURCE = "/carepath/benchmarks"


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
