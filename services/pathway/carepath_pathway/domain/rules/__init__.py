"""The pathway's rules, one small module per topic; each rule is a plain function
``(episode, profile, ctx) -> list[Recommendation | MissingData]``."""

from carepath_pathway.domain.rules.ablation import ablation
from carepath_pathway.domain.rules.coordination import coordination
from carepath_pathway.domain.rules.diagnostic_blocks import diagnostic_blocks
from carepath_pathway.domain.rules.imaging import imaging
from carepath_pathway.domain.rules.injections import injections
from carepath_pathway.domain.rules.neuromodulation import neuromodulation
from carepath_pathway.domain.rules.psychology import psychology
from carepath_pathway.domain.rules.red_flags import red_flags
from carepath_pathway.domain.rules.rehabilitation import rehabilitation
from carepath_pathway.domain.rules.surgery import surgery

__all__ = [
    "ablation",
    "coordination",
    "diagnostic_blocks",
    "imaging",
    "injections",
    "neuromodulation",
    "psychology",
    "red_flags",
    "rehabilitation",
    "surgery",
]
