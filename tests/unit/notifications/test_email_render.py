"""Emails say what happened and link to it, and carry no clinical detail."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from carepath_notifications.domain import render_email

LINK_BASE = "https://carepath.example/app/"
EPISODE_ID = "ep-7f3a91"

CREATED_BODY: dict[str, Any] = {
    "referral_id": "ref-xyz",
    "episode_id": EPISODE_ID,
    "recommendation_id": "rec-9",
    "step": "imaging.mri",
    "team": "radiology",
    "priority": "urgent",
    "status": "requested",
    "due_at": "2025-03-04T10:30:00+01:00",
    "created_at": "2025-03-04T08:00:00Z",
}

# Clinical detail that must never reach an inbox, smuggled into every body.
CLINICAL: dict[str, Any] = {
    "rationale": "medial branch block gave 80% relief, at or above the 70% threshold",
    "thresholds": {"mbb_relief_percent": 70},
    "evidence": [{"source": "seed", "section": "3. Radiofrequency Ablation"}],
    "pain_nrs": 9,
    "phq9": 23,
    "red_flags": ["cancer_history"],
    "imaging_findings": ["nerve_root_compression"],
    "missing_fields": ["phq9_missing_canary"],
    "active_steps": ["surgery.consultation"],
    "reason": "patient reports progressive weakness",
    "age": 67,
}
CLINICAL_STRINGS = [
    "medial branch",
    "80%",
    "70",
    "seed",
    "Radiofrequency",
    "cancer",
    "nerve_root",
    "phq9",
    "surgery.consultation",
    "weakness",
    "67",
    "23",
]

EVENTS = [
    "carepath.referral.created.v1",
    "carepath.referral.escalated.v1",
    "carepath.referral.status_changed.v1",
    "carepath.careplan.updated.v1",
    "carepath.pathway.status.v1",
    "carepath.something.new.v1",
]


def test_new_referral_email() -> None:
    subject, text = render_email("carepath.referral.created.v1", CREATED_BODY, LINK_BASE)
    assert subject == "[Carepath] New urgent referral for radiology: imaging.mri"
    assert (
        "New referral for your team: imaging.mri, priority urgent, due 2025-03-04 09:30 UTC" in text
    )
    assert "https://carepath.example/app/referrals/ref-xyz" in text


@pytest.mark.parametrize("event_type", EVENTS)
def test_no_clinical_detail_and_no_episode_id_in_subject(event_type: str) -> None:
    body = CREATED_BODY | CLINICAL | {"urgent": True}
    subject, text = render_email(event_type, body, LINK_BASE)
    for needle in CLINICAL_STRINGS:
        assert needle not in subject and needle not in text, needle
    assert EPISODE_ID not in subject
    assert "/referrals/ref-xyz" in text


def test_escalation_and_status_change_name_what_happened() -> None:
    subject, text = render_email("carepath.referral.escalated.v1", CREATED_BODY, LINK_BASE)
    assert "Escalated" in subject and "imaging.mri" in subject and "escalated" in text
    subject, text = render_email(
        "carepath.referral.status_changed.v1",
        CREATED_BODY | {"status": "accepted", "reason": "free text reason"},
        LINK_BASE,
    )
    assert subject == "[Carepath] Referral accepted: imaging.mri"
    assert "free text" not in text


def test_pathway_status_links_to_episode_but_keeps_it_out_of_subject() -> None:
    body = {"episode_id": EPISODE_ID, "urgent": True, "active_steps": ["surgery.urgent_referral"]}
    subject, text = render_email("carepath.pathway.status.v1", body, LINK_BASE)
    assert subject == "[Carepath] Pathway status updated (urgent)"
    assert f"https://carepath.example/app/episodes/{EPISODE_ID}" in text
    assert "surgery" not in text


def test_free_text_and_control_characters_are_dropped_from_codes() -> None:
    body = CREATED_BODY | {"step": "imaging.mri\r\nBcc: evil@x.example", "referral_id": "../x y"}
    subject, text = render_email("carepath.referral.created.v1", body, LINK_BASE)
    assert "\r" not in subject and "\n" not in subject and "evil" not in subject + text
    assert "../x" not in text and text.count("https://carepath.example/app") == 1


def test_missing_optional_fields_are_omitted() -> None:
    subject, text = render_email("carepath.referral.created.v1", {"referral_id": "r1"}, LINK_BASE)
    assert subject == "[Carepath] New referral: referral"
    assert "due" not in text and "priority" not in text
    assert "/referrals/r1" in text


def test_referral_id_is_url_quoted() -> None:
    _, text = render_email("carepath.referral.created.v1", {"referral_id": "a:b"}, LINK_BASE)
    assert "/referrals/a%3Ab" in text


def test_event_type_names_agree_with_the_shared_contract() -> None:
    # read as text: the contract module may not import on its own while it is being extended
    from importlib.util import find_spec

    from carepath_notifications.domain import email_render

    spec = find_spec("carepath_contracts.events")
    assert spec is not None and spec.origin is not None
    contract = Path(spec.origin).read_text()
    for name in (
        "REFERRAL_CREATED",
        "REFERRAL_ESCALATED",
        "REFERRAL_STATUS_CHANGED",
        "CARE_PLAN_UPDATED",
        "PATHWAY_STATUS",
    ):
        assert f'{name} = "{getattr(email_render, name)}"' in contract, name
