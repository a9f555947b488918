"""Profiles: named thresholds, three built-ins, per-site overrides."""

from __future__ import annotations

import pytest

from carepath_pathway.domain import DEFAULT_PROFILE, PROFILES, UnknownProfile, get_profile


def test_three_profiles_seed_is_default() -> None:
    assert set(PROFILES) == {"seed", "consensus-2020", "sis"}
    assert get_profile() is DEFAULT_PROFILE is get_profile("seed")
    assert get_profile("") is DEFAULT_PROFILE


def test_seed_values_follow_seed_and_section_e() -> None:
    p = get_profile("seed")
    assert (p.mbb_relief_percent, p.mbb_blocks_required) == (70, 1)
    assert p.scs_trial_relief_percent == 50
    assert (p.repeat_rfa_relief_percent, p.repeat_rfa_duration_months) == (50, 6)
    assert p.si_provocation_min == 3
    assert (p.phq9_min, p.gad7_min, p.pcs_min) == (10, 10, 30)


def test_other_profiles_differ_only_in_the_block_criterion() -> None:
    seed, consensus, sis = (get_profile(n) for n in ("seed", "consensus-2020", "sis"))
    assert (consensus.mbb_relief_percent, consensus.mbb_blocks_required) == (50, 1)
    assert (sis.mbb_relief_percent, sis.mbb_blocks_required, sis.mbb_comparative_blocks) == (
        80, 2, True)
    skip = {"name", "mbb_relief_percent", "mbb_blocks_required", "mbb_comparative_blocks"}
    for other in (consensus, sis):
        a, b = seed.as_dict(), other.as_dict()
        assert {k: v for k, v in a.items() if k not in skip} == {
            k: v for k, v in b.items() if k not in skip}


def test_unknown_profile() -> None:
    with pytest.raises(UnknownProfile, match="seed"):
        get_profile("strict")


def test_overrides() -> None:
    p = get_profile("seed").with_overrides(pt_min_weeks=8, si_provocation_min=2)
    assert (p.pt_min_weeks, p.si_provocation_min, p.name) == (8, 2, "seed+custom")
    assert get_profile("seed").pt_min_weeks == 6  # original untouched
    assert get_profile("sis").with_overrides(name="site-a", mbb_relief_percent=75).name == "site-a"
    with pytest.raises(ValueError, match="unknown"):
        get_profile("seed").with_overrides(mbb_percent=60)
    with pytest.raises(ValueError):
        get_profile("seed").with_overrides(mbb_relief_percent="60")
    with pytest.raises(ValueError):
        get_profile("seed").with_overrides(mbb_relief_percent=60.5)
    with pytest.raises(ValueError):
        get_profile("seed").with_overrides(mbb_comparative_blocks=1)
    with pytest.raises(ValueError):
        get_profile("seed").with_overrides(phq9_min=-1)


def test_profiles_are_immutable() -> None:
    with pytest.raises(AttributeError):
        get_profile("seed").mbb_relief_percent = 10  # type: ignore[misc]
