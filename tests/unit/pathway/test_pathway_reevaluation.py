"""Re-evaluating a stored episode under another profile (pure fold)."""

from __future__ import annotations

from carepath_contracts.episode import parse_episode
from carepath_contracts.outcome import PhysicalTherapyOutcome
from carepath_pathway.domain import get_profile
from carepath_pathway.episode_state import (
    EpisodeState,
    on_outcome,
    on_reevaluation,
    on_submitted,
    profile_for,
)

SEED = get_profile("seed")
SIS = get_profile("sis")


def stored() -> EpisodeState:
    # One block with 75% relief: RFA under seed (>= 70%), not under sis (two blocks >= 80%).
    episode = parse_episode({"episode_id": "ep-1", "region": "lumbar",
                             "medial_branch_blocks": [{"relief_percent": 75}]})
    state, _ = on_submitted(None, episode, SEED)
    return state


def test_a_reevaluation_keeps_unchanged_steps_and_withdraws_the_rest() -> None:
    before = stored()
    assert "ablation.rfa" in before.active
    after, result = on_reevaluation(before, SIS)
    assert result.profile == "sis"
    assert after.evaluation_seq == before.evaluation_seq + 1
    assert [w.step for w in result.withdrawn] == ["ablation.rfa"]
    assert [w.recommendation_id for w in result.withdrawn] == [before.active["ablation.rfa"]]
    for step, rec_id in before.active.items():  # still recommended: same id, same referral
        if step in after.active:
            assert after.active[step] == rec_id
    assert after.episode == before.episode


def test_the_episode_keeps_its_adopted_profile_for_later_events() -> None:
    after, _ = on_reevaluation(stored(), SIS)
    assert after.profile == "sis"
    assert profile_for(after, SEED) is SIS
    assert profile_for(stored(), SEED) is SEED  # never re-evaluated: the service's profile
    assert profile_for(None, SEED) is SEED
    # A resubmission and an outcome keep it.
    resubmitted, result = on_submitted(after, after.episode, profile_for(after, SEED))
    assert resubmitted.profile == "sis" and result.profile == "sis"
    report = PhysicalTherapyOutcome(kind="physical_therapy", episode_id="ep-1", weeks=8)
    later, _ = on_outcome(resubmitted, report, profile_for(resubmitted, SEED))
    assert later.profile == "sis"


def test_a_state_stored_before_profiles_were_kept_still_loads() -> None:
    legacy = stored().dump()
    legacy.pop("profile", None)
    assert EpisodeState.load(legacy) is not None
    assert EpisodeState.load(legacy).profile is None  # type: ignore[union-attr]
