"""The pathway's state store: each episode's :class:`EpisodeState`, one key per episode.

The Kafka handlers, the state endpoint and the re-evaluation command all use the store made
here (one per process, injected), so they read and fold the same typed states.
"""

from __future__ import annotations

from carepath_pathway.episode_state import EpisodeState
from carepath_runtime.service import Runtime
from carepath_runtime.state_store import StateStore

STORE_NAME = "pathway"

EpisodeStore = StateStore[EpisodeState]


def episode_store(runtime: Runtime) -> EpisodeStore:
    # Absent fields stay absent (an absent episode field means *unknown*), as the state
    # was always stored.
    return StateStore(runtime.redis, runtime.settings.namespace, STORE_NAME, EpisodeState,
                      exclude_none=True)
