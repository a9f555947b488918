"""Readable stories: one patient walked through the pathway, outcome by outcome.

Each step: a team reports an outcome -> apply_outcome -> evaluate -> reconcile, and the story
checks what is recommended next, what was withdrawn and that ids stay stable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from carepath_contracts.episode import Episode, parse_episode
from carepath_contracts.outcome import parse_outcome
from carepath_contracts.pathway_result import PathwayResult
from carepath_pathway.domain import (
    Profile,
    apply_outcome,
    evaluate,
    get_profile,
    outcome_steps,
    reconcile,
)


@dataclass
class Patient:
    """The pathway service's fold, in miniature."""

    episode: Episode
    profile: Profile = field(default_factory=lambda: get_profile("seed"))
    active: dict[str, str] = field(default_factory=dict)
    seq: int = 0
    result: PathwayResult | None = None

    @classmethod
    def presents_with(cls, **data: Any) -> Patient:
        p = cls(parse_episode({"episode_id": "story", **data}))
        p._evaluate(())
        return p

    def reports(self, kind: str, **fields: Any) -> Patient:
        report = parse_outcome({"episode_id": "story", "kind": kind, **fields})
        self.episode = apply_outcome(self.episode, report)
        self._evaluate(outcome_steps(report))
        return self

    def _evaluate(self, just_done: tuple[str, ...]) -> None:
        self.seq += 1
        result = evaluate(self.episode, self.profile)
        self.result, self.active = reconcile(
            "story", self.active, result, self.seq, completed_steps=just_done)

    @property
    def next_steps(self) -> list[str]:
        assert self.result is not None
        return [r.step for r in self.result.recommendations]

    @property
    def withdrawn(self) -> list[str]:
        assert self.result is not None
        return [w.step for w in self.result.withdrawn]

    @property
    def urgent(self) -> bool:
        assert self.result is not None
        return self.result.urgent


KNOWN = {
    "red_flags": [],
    "bowel_bladder_dysfunction": False,
    "neurological_deficit": "none",
    "trigger_points": False,
    "si_provocation_positive": 0,
    "phq9": 3,
    "gad7": 2,
    "pain_catastrophizing": 8,
    "neuropathic_features": False,
    "prior_spine_surgery": False,
    "symptom_duration_months": 14,
    "pain_nrs": 7,
    "physical_therapy_weeks": 8,
    "psychological_evaluation_done": False,
    "facet_injections": [{"relief_percent": 20, "relief_duration_weeks": 2,
                          "technically_adequate": True}],
}


def test_imaging_then_block_then_rfa_then_repeat_rfa_a_year_later() -> None:
    p = Patient.presents_with(region="lumbar", radicular_pain=False, imaging_done=["xray"],
                              imaging_findings=["normal"], medial_branch_blocks=[], **KNOWN)
    assert "imaging.mri" in p.next_steps
    assert "diagnostic.medial_branch_block" in p.next_steps
    mbb_id = p.active["diagnostic.medial_branch_block"]

    # MRI: only facet arthropathy -> SPECT may target the block; the block stays (same id)
    p.reports("imaging", modality="mri", findings=["facet_arthropathy"])
    assert "imaging.mri" not in p.next_steps and "imaging.mri" not in p.withdrawn
    assert "imaging.spect" in p.next_steps
    assert p.active["diagnostic.medial_branch_block"] == mbb_id

    # The block gives 80% relief -> RFA; the block and SPECT are no longer needed
    p.reports("medial_branch_block", relief_percent=80, anesthetic="lidocaine")
    assert "ablation.rfa" in p.next_steps
    assert "diagnostic.medial_branch_block" not in p.next_steps + p.withdrawn  # completed
    assert p.withdrawn == ["imaging.spect", "coordination.pain_diary"]

    # RFA done, relief ongoing: nothing more to ablate, its duration is awaited
    p.reports("rfa", relief_percent=80)
    assert not {"ablation.rfa", "ablation.repeat_rfa"} & set(p.next_steps)
    assert p.result is not None
    assert "rfa_history[0].relief_duration_months" in [m.field for m in p.result.missing_data]

    # A year later the relief wore off and the pain came back -> repeat RFA, no new block
    p.reports("rfa_follow_up", relief_duration_months=12)
    p.reports("pain_recurred", pain_nrs=6)
    assert "ablation.repeat_rfa" in p.next_steps
    assert "diagnostic.medial_branch_block" not in p.next_steps
    repeat_id = p.active["ablation.repeat_rfa"]

    # Repeat RFA done; when it wears off again after 10 months, a further repeat is offered
    p.reports("rfa", step="ablation.repeat_rfa", relief_percent=70)
    assert "ablation.repeat_rfa" not in p.next_steps + p.withdrawn
    p.reports("pain_recurred", pain_nrs=6, after_months=10)
    assert "ablation.repeat_rfa" in p.next_steps
    assert p.active["ablation.repeat_rfa"] != repeat_id


def test_spinal_cord_stimulation_path() -> None:
    p = Patient.presents_with(region="lumbar", radicular_pain=False, imaging_done=["mri"],
                              imaging_findings=["facet_arthropathy"],
                              medial_branch_blocks=[{"relief_percent": 20}],
                              **{**KNOWN, "neuropathic_features": True,
                                 "prior_spine_surgery": True})
    assert "neuromodulation.scs_evaluation" in p.next_steps
    assert "neuromodulation.scs_trial" not in p.next_steps

    p.reports("step_completed", step="neuromodulation.scs_evaluation")
    assert "psychology.assessment" in p.next_steps       # clearance before the trial
    assert "neuromodulation.scs_trial" not in p.next_steps

    p.reports("psychological_evaluation", phq9=6, gad7=5)
    assert "neuromodulation.scs_trial" in p.next_steps
    assert "psychology.assessment" not in p.withdrawn      # completed, not withdrawn

    p.reports("scs_trial", relief_percent=60)
    assert "neuromodulation.scs_implant" in p.next_steps
    assert "neuromodulation.scs_trial" not in p.next_steps + p.withdrawn

    p.reports("step_completed", step="neuromodulation.scs_implant")
    assert not [s for s in p.next_steps if s.startswith("neuromodulation.")]


def test_failed_scs_trial_never_leads_to_an_implant() -> None:
    p = Patient.presents_with(region="lumbar", radicular_pain=False, imaging_done=["mri"],
                              imaging_findings=["normal"], medial_branch_blocks=[],
                              completed_steps=["neuromodulation.scs_evaluation"],
                              **{**KNOWN, "psychological_evaluation_done": True})
    assert "neuromodulation.scs_trial" in p.next_steps
    p.reports("scs_trial", relief_percent=49)
    assert "neuromodulation.scs_implant" not in p.next_steps
    assert "coordination.second_opinion" in p.next_steps


def test_cervical_radicular_path() -> None:
    p = Patient.presents_with(region="cervical", radicular_pain=True, imaging_done=["xray"],
                              imaging_findings=["normal"], medial_branch_blocks=[],
                              **{k: v for k, v in KNOWN.items() if k != "si_provocation_positive"})
    assert "imaging.mri" in p.next_steps and "injection.epidural_steroid" in p.next_steps
    assert "injection.si_joint" not in p.next_steps
    assert "diagnostic.medial_branch_block" not in p.next_steps      # radicular: deferred
    assert p.result is not None
    assert "si_provocation_positive" not in [m.field for m in p.result.missing_data]

    p.reports("imaging", modality="mri", findings=["disc_herniation", "nerve_root_compression"])
    assert "imaging.mri" not in p.next_steps
    # compression with radicular pain after PT -> surgical consultation alongside the epidural
    assert "surgery.consultation" in p.next_steps

    p.reports("step_completed", step="injection.epidural_steroid")
    assert "injection.epidural_steroid" not in p.next_steps + p.withdrawn

    # the arm pain settles; the axial facet question is reopened: MBB, then RFA
    p.reports("clinical_review", radicular_pain=False)
    assert "diagnostic.medial_branch_block" in p.next_steps
    assert "surgery.consultation" in p.withdrawn
    p.reports("medial_branch_block", relief_percent=75)
    assert "ablation.rfa" in p.next_steps


def test_red_flag_path() -> None:
    p = Patient.presents_with(region="lumbar", radicular_pain=False, imaging_done=["mri"],
                              imaging_findings=["facet_arthropathy"],
                              medial_branch_blocks=[{"relief_percent": 85}],
                              **KNOWN)
    assert "ablation.rfa" in p.next_steps and not p.urgent
    rfa_id = p.active["ablation.rfa"]

    # new bladder dysfunction: urgent referral + emergency MRI; RFA suspended
    p.reports("clinical_review", bowel_bladder_dysfunction=True)
    assert p.urgent
    assert p.next_steps[:2] == ["surgery.urgent_referral", "imaging.mri"]
    assert "ablation.rfa" in p.withdrawn
    assert p.result is not None
    assert p.result.withdrawn[0].reason.startswith("suspended")

    # surgeon sees the patient, MRI shows no compression: flags cleared
    p.reports("step_completed", step="surgery.urgent_referral")
    p.reports("imaging", modality="mri", findings=["facet_arthropathy"])
    assert not p.urgent and p.next_steps == []
    p.reports("clinical_review", bowel_bladder_dysfunction=False)
    assert "ablation.rfa" in p.next_steps and not p.urgent
    assert p.active["ablation.rfa"] != rfa_id  # a new recommendation after the suspension


def test_unrecorded_block_is_repeated_with_a_diary_then_read() -> None:
    p = Patient.presents_with(region="lumbar", radicular_pain=False, imaging_done=["mri"],
                              imaging_findings=["facet_arthropathy"], medial_branch_blocks=[],
                              **KNOWN)
    p.reports("medial_branch_block", relief_percent=None)
    assert "diagnostic.medial_branch_block" in p.next_steps
    assert "coordination.pain_diary" in p.next_steps
    p.reports("step_completed", step="coordination.pain_diary")
    p.reports("medial_branch_block", relief_percent=72)
    assert "ablation.rfa" in p.next_steps
    assert "coordination.pain_diary" not in p.next_steps


def test_sis_profile_needs_two_comparative_blocks() -> None:
    p = Patient(parse_episode({"episode_id": "story", "region": "lumbar",
                               "radicular_pain": False, "imaging_done": ["mri"],
                               "imaging_findings": ["facet_arthropathy"],
                               "medial_branch_blocks": [], **KNOWN}),
                profile=get_profile("sis"))
    p._evaluate(())
    first_id = p.active["diagnostic.medial_branch_block"]
    p.reports("medial_branch_block", relief_percent=90, anesthetic="lidocaine")
    assert "ablation.rfa" not in p.next_steps
    assert "diagnostic.medial_branch_block" in p.next_steps
    assert p.active["diagnostic.medial_branch_block"] != first_id   # a new referral
    p.reports("medial_branch_block", relief_percent=85, anesthetic="bupivacaine")
    assert "ablation.rfa" in p.next_steps
