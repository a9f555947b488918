"""FastAPI path parameters under the contracts' id rules (422 naming the parameter otherwise)."""

from __future__ import annotations

from fastapi import Path

from carepath_contracts.episode_id import (
    EPISODE_ID_MAX,
    EPISODE_ID_PATTERN,
    EPISODE_ID_RULE,
    REFERRAL_ID_PATTERN,
)


def episode_id_path() -> str:
    """A FastAPI path parameter under the rule (422 naming it otherwise)."""
    return Path(pattern=EPISODE_ID_PATTERN, max_length=EPISODE_ID_MAX,  # type: ignore[no-any-return]
                description=f"the episode id: {EPISODE_ID_RULE}")




def referral_id_path() -> str:
    return Path(pattern=REFERRAL_ID_PATTERN, max_length=EPISODE_ID_MAX,  # type: ignore[no-any-return]
                description="the referral id")
