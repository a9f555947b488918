"""The seeded episode mix the end-to-end tests, fault tests and benchmarks draw from.

Lumbar and cervical episodes with or without imaging, blocks, radicular pain, PHQ-9, trigger
points, red flags and earlier facet injections. It yields two to eight recommendations per
episode (about 4.3 on average).
"""

from __future__ import annotations

import random
from typing import Any


def random_episode(rng: random.Random, episode_id: str) -> dict[str, Any]:
    """One episode of the mix, drawn from ``rng``."""
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
    """``n`` episodes of the mix, ids ``{prefix}-0000000`` on; the same ``seed``, the same list."""
    rng = random.Random(seed)
    return [random_episode(rng, f"{prefix}-{i:07d}") for i in range(n)]
