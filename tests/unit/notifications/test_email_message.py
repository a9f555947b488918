"""The SMTP message built from a notice: minimal data, stable Message-ID."""

from __future__ import annotations

from datetime import UTC, datetime

from carepath_notifications.domain.notice import notice_body
from carepath_notifications.email_sender import SmtpConfig, build_message

CONFIG = SmtpConfig("127.0.0.1", 2525, "carepath@hospital.example", 5.0,
                    "https://carepath.example")


def test_message_has_what_happened_and_the_link_but_no_clinical_detail() -> None:
    data = {
        "referral_id": "ref-1", "episode_id": "ep-1", "step": "imaging.mri",
        "team": "radiology", "priority": "urgent", "status": "requested",
        "rationale": "PHQ-9 of 22 and radicular pain", "phq9": 22,
    }
    notice = notice_body("ev-1", "carepath.referral.created.v1", "/s",
                         datetime(2026, 1, 1, tzinfo=UTC), data)
    msg = build_message(CONFIG, "desk@hospital.example", "msg_abc", notice)
    text = msg.get_content()
    assert msg["To"] == "desk@hospital.example"
    assert msg["From"] == "carepath@hospital.example"
    assert msg["Message-ID"] == "<msg_abc@carepath>"
    assert "imaging.mri" in msg["Subject"] and "ep-1" not in msg["Subject"]
    assert "https://carepath.example/referrals/ref-1" in text
    assert "PHQ" not in text and "22" not in text and "radicular" not in text
