"""Threshold profiles: every number the pathway decides with, named.

``seed`` is Carepath's DEFAULT profile: the seed's numbers, filled in by clinical-facts.md
section E where the seed gives none. The other two differ only in the medial branch block
(MBB) criterion, on which the sources disagree (clinical-facts.md B1/B3a/B7):

* ``consensus-2020`` — 2020 multisociety consensus (Cohen et al., RAPM 2020): one prognostic
  block with >= 50% relief.
* ``sis`` — Spine Intervention Society style: two (comparative: lidocaine + bupivacaine)
  blocks, each with >= 80% relief. After one positive block a second block is recommended.

A site may override single thresholds: ``get_profile("seed").with_overrides(pt_min_weeks=8)``.
Values marked *judgement* are Carepath's choice where neither the seed nor section E gives a
number; the reasoning is in the field comments.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["DEFAULT_PROFILE", "PROFILES", "Profile", "UnknownProfile", "get_profile"]


@dataclass(frozen=True, slots=True)
class Profile:
    name: str

    # Medial branch blocks -> RFA (seed §3: ">= 70% ... good candidate for RFA").
    mbb_relief_percent: int = 70
    mbb_blocks_required: int = 1
    # Note lidocaine/bupivacaine concordance and ask for the anesthetic (sis profile).
    mbb_comparative_blocks: bool = False

    # Repeat RFA (section E): earlier RFA >= 50% relief lasting >= 6 months, pain came back.
    repeat_rfa_relief_percent: int = 50
    repeat_rfa_duration_months: float = 6
    # Judgement: "the pain came back" is read from pain_nrs when known: >= 4 (moderate pain).
    # A recorded relief duration already means the relief wore off.
    pain_recurrence_nrs_min: int = 4

    # Spinal cord stimulation. Trial success >= 50% (seed §4, section E, B2).
    scs_trial_relief_percent: int = 50
    # Candidacy for an SCS evaluation (B14, NICE TA159): chronic >= 6 months, pain >= 5/10.
    scs_min_duration_months: float = 6
    scs_min_pain_nrs: int = 5

    # SI joint injection when >= 3 provocation tests are positive (section E, B8).
    si_provocation_min: int = 3

    # Psychology assessment thresholds (section E, B9).
    phq9_min: int = 10
    gad7_min: int = 10
    pcs_min: int = 30

    # Judgement: a structured PT course counts as done at >= 6 weeks (ACR LBP variant 3
    # "6 weeks optimal management"; cervical consensus ~6 weeks of conservative care).
    pt_min_weeks: float = 6

    # Judgement: a facet injection "failed" when relief < 50% or lasted < 12 weeks
    # ("inadequate or short-lived"); two failed adequate injections -> second opinion (Tip 2).
    facet_injection_relief_percent: int = 50
    facet_injection_relief_weeks: float = 12
    second_opinion_failed_injections: int = 2

    def with_overrides(self, **overrides: Any) -> Profile:
        """A copy with some thresholds replaced (per-site configuration).

        Unknown names and values of the wrong type are refused with :class:`ValueError`.
        ``name`` may be overridden too; by default the copy is named ``"<name>+custom"``.
        """
        fields = {f.name: f for f in dataclasses.fields(self)}
        for key, value in overrides.items():
            if key not in fields:
                raise ValueError(f"unknown profile threshold {key!r}")
            current = getattr(self, key)
            if isinstance(current, bool) or isinstance(value, bool):
                ok = isinstance(current, bool) and isinstance(value, bool)
            elif isinstance(current, int):
                ok = isinstance(value, int)
            elif isinstance(current, float):
                ok = isinstance(value, int | float)
            else:
                ok = isinstance(value, type(current))
            if not ok:
                raise ValueError(f"profile threshold {key!r} must be like {current!r}")
            if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
                raise ValueError(f"profile threshold {key!r} must not be negative")
        if overrides and "name" not in overrides:
            overrides["name"] = f"{self.name}+custom"
        return dataclasses.replace(self, **overrides)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


SEED: Final = Profile(name="seed")
CONSENSUS_2020: Final = Profile(name="consensus-2020", mbb_relief_percent=50, mbb_blocks_required=1)
SIS: Final = Profile(
    name="sis", mbb_relief_percent=80, mbb_blocks_required=2, mbb_comparative_blocks=True
)

PROFILES: Final[dict[str, Profile]] = {p.name: p for p in (SEED, CONSENSUS_2020, SIS)}
DEFAULT_PROFILE: Final = SEED


class UnknownProfile(ValueError):
    pass


def get_profile(name: str | None = None) -> Profile:
    """The named profile (``seed`` when ``name`` is None or empty)."""
    if not name:
        return DEFAULT_PROFILE
    try:
        return PROFILES[name]
    except KeyError:
        raise UnknownProfile(
            f"unknown pathway profile {name!r} (known: {', '.join(PROFILES)})"
        ) from None
