"""Episode generators and expectations for pipeline tests."""

from __future__ import annotations

import random
from typing import Any

from carepath_pathway.domain import evaluate, get_profile
from carepath_shared.episode import parse_episode


def random_episode(rng: random.Random, episode_id: str) -> dict[str, Any]:
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
        ep["facet_injections"] = [{"relief_percent": rng.randint(0, 60),
                                   "technically_adequate": rng.random() < 0.8}]
    return ep


def expected_steps(episode: dict[str, Any], profile: str = "seed") -> list[str]:
    result = evaluate(parse_episode(episode), get_profile(profile))
    return sorted(r.step for r in result.recommendations)
