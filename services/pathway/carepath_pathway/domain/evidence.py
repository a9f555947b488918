"""Evidence citations, built once and shared by every result (the models are immutable).

Seed sections are named exactly as the seed titles them; FAQ answers as ``FAQ Qn`` and tips as
``Tip n``. Guidelines are named by their section in clinical-facts.md (``B<n> ...``), and
Carepath's default profile (section E) by ``E. Carepath's default profile``.
"""

from __future__ import annotations

from typing import Final

from carepath_contracts.pathway_result import Evidence


def _seed(section: str) -> Evidence:
    return Evidence.model_construct(source="seed", section=section)


def _guideline(section: str) -> Evidence:
    return Evidence.model_construct(source="guideline", section=section)


SEED_IMAGING: Final = _seed("1. Further Diagnostic Imaging")
SEED_INJECTION_TARGETS: Final = _seed("2. Alternative Injection Targets")
SEED_RFA: Final = _seed("3. Radiofrequency Ablation")
SEED_SCS: Final = _seed("4. Spinal Cord Stimulation")
SEED_SURGERY: Final = _seed("5. Surgical Consultation")
SEED_REHAB: Final = _seed("6. Comprehensive Rehabilitation")

FAQ = {n: _seed(f"FAQ Q{n}") for n in range(1, 7)}
TIP = {n: _seed(f"Tip {n}") for n in range(1, 9)}

PROFILE_E: Final = Evidence.model_construct(
    source="profile", section="E. Carepath's default profile"
)

G_MBB_THRESHOLD: Final = _guideline(
    "B1 Medial branch block positivity threshold (seed 70% / 2020 consensus 50% single block / "
    "SIS 80% dual comparative blocks)"
)
G_SCS: Final = _guideline(
    "B2 Spinal cord stimulation: trial success >= 50%; psychological evaluation before the trial"
)
G_CONSENSUS_TABLE12: Final = _guideline(
    "B3 Cohen et al. 2020 lumbar facet consensus, Table 12 (SPECT before MBB; MBB is the "
    "prognostic block of choice; radicular symptoms predict a negative facet block)"
)
G_CONSENSUS_TABLE11: Final = _guideline(
    "B3a Cohen et al. 2020 lumbar facet consensus, Table 11 (>= 50% relief, single block; no "
    "repeat diagnostic MBB before a repeat RFA)"
)
G_RED_FLAGS_CES: Final = _guideline(
    "B4 Red flags / urgent referral (BMJ Best Practice cauda equina syndrome; AAFP / Choosing "
    "Wisely red-flag list)"
)
G_ACR_IMAGING: Final = _guideline(
    "B5 ACR Appropriateness Criteria Low Back Pain 2021 (variant 3: MRI for intervention "
    "candidates; variants 4, 6, 7: cauda equina, fracture, cancer/infection)"
)
G_REPEAT_RFA: Final = _guideline(
    "B6 Repeat RFA criteria (prior RFA >= 50% relief lasting >= 6 months; eviCore CMM-208; "
    "TRICARE)"
)
G_SIS_DUAL_BLOCKS: Final = _guideline(
    "B7 SIS 80% dual comparative blocks (lidocaine shorter / bupivacaine longer)"
)
G_SI_PROVOCATION: Final = _guideline(
    "B8 Sacroiliac joint provocation tests (Laslett 2005: >= 3 positive tests)"
)
G_PSYCH_SCREENING: Final = _guideline(
    "B9 Psychological screening cut-offs (PHQ-9 >= 10, GAD-7 >= 10, PCS >= 30)"
)
G_ESI: Final = _guideline(
    "B10 Epidural steroid injection for radicular pain (Aetna CPB 0722; Cohen 2020 Table 12)"
)
G_TRIGGER_POINTS: Final = _guideline("B12 Trigger point injections (adjunct to rehabilitation)")
G_SURGERY: Final = _guideline(
    "B13 Surgical indications: spondylolisthesis / instability / nerve compression"
)
G_SCS_INDICATIONS: Final = _guideline(
    "B14 SCS indications (NICE TA159: chronic neuropathic pain >= 6 months, multidisciplinary "
    "assessment, successful trial)"
)
G_NECK_RED_FLAGS: Final = _guideline(
    "B15 Neck pain red flags (myelopathy -> MRI + urgent neurosurgical consultation)"
)
G_RED_FLAGS: Final = _guideline("B16 Red flags -> urgent referral: consolidated engine rule")
G_CERVICAL: Final = _guideline(
    "B17 Cervical facet consensus (Hurley et al. 2021/2022: MBB -> RFA as lumbar; no SI joint)"
)
