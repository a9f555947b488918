"""The versioned pathway definition: which rules run, in which order, and which are elective.

Order matters: a rule sees what earlier rules recommended (``ctx.recommended``): e.g. the
neuromodulation rule holds the SCS evaluation while an RFA is recommended, and the coordination
rule adds a pain diary to a recommended diagnostic block. Elective rules do not run while red
flags are present (section E / B16: no elective procedure until the flags are cleared).

Bump ``PATHWAY_VERSION`` whenever a rule or a default threshold changes: every result is
stamped with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import carepath_pathway.domain.rules as rules
from carepath_contracts.episode import Episode
from carepath_contracts.pathway_result import PATHWAY_ID
from carepath_pathway.domain.context import Context, Finding
from carepath_pathway.domain.profiles import Profile

PATHWAY_VERSION: Final = "2026.11.0"

RuleFn = Callable[[Episode, Profile, Context], list[Finding]]


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    fn: RuleFn
    elective: bool
    """Skipped while red flags are present."""


@dataclass(frozen=True, slots=True)
class PathwayDefinition:
    pathway: str
    version: str
    rules: tuple[Rule, ...]


PATHWAY: Final = PathwayDefinition(
    pathway=PATHWAY_ID,
    version=PATHWAY_VERSION,
    rules=(
        Rule("red_flags", rules.red_flags, elective=False),
        Rule("imaging", rules.imaging, elective=True),
        Rule("diagnostic_blocks", rules.diagnostic_blocks, elective=True),
        Rule("injections", rules.injections, elective=True),
        Rule("ablation", rules.ablation, elective=True),
        Rule("neuromodulation", rules.neuromodulation, elective=True),
        Rule("surgery", rules.surgery, elective=True),
        Rule("rehabilitation", rules.rehabilitation, elective=True),
        Rule("psychology", rules.psychology, elective=False),
        Rule("coordination", rules.coordination, elective=True),
    ),
)
