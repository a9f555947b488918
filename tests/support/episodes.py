"""Expectations for pipeline tests (the episode mix itself is :mod:`carepath_testkit.episodes`)."""

from __future__ import annotations

from typing import Any

from carepath_contracts.episode import parse_episode
from carepath_pathway.domain import evaluate, get_profile


def expected_steps(episode: dict[str, Any], profile: str = "seed") -> list[str]:
    result = evaluate(parse_episode(episode), get_profile(profile))
    return sorted(r.step for r in result.recommendations)
