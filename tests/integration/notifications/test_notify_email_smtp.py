"""Email on the real broker, received by a real local SMTP server (aiosmtpd).

A team's mailbox gets one message per referral of its team (none of another team's), even
though every event is published twice; the message says what happened and links to it, and
carries no clinical detail. A transient SMTP refusal (451) is retried; an unknown mailbox
(550) is dead-lettered at once.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from notify_support import (
    Jobs,
    base_env,
    escalation_body,
    new_namespace,
    referral_created,
    start_notifications,
    write_subscriptions,
)

from carepath_contracts.envelope import Envelope
from carepath_contracts.events import REFERRAL_ESCALATED
from carepath_contracts.topics import Topics
from carepath_runtime.kafka_broker import build_event, make_broker, publish_all
from carepath_runtime.settings import Settings
from support.observe import wait_until
from support.processes import ServiceProcess, free_port


def text_of(msg: Message) -> str:
    payload = msg.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


pytestmark = [pytest.mark.kafka, pytest.mark.redis]

N = 10
LINK_BASE = "https://carepath.example"


@dataclass
class Mailbox:
    """An SMTP handler: records messages; refuses one address; defers each first try."""

    messages: list[tuple[str, Message]] = field(default_factory=list)
    deferred: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = message_from_bytes(envelope.content)
        msg_id = str(msg["Message-ID"])
        with self.lock:
            if any(r.startswith("flaky@") for r in envelope.rcpt_tos) and \
                    self.deferred[msg_id] == 0:
                self.deferred[msg_id] += 1
                return "451 4.3.0 try again later"
            for rcpt in envelope.rcpt_tos:
                self.messages.append((rcpt, msg))
        return "250 Message accepted"

    def to(self, address: str) -> list[Message]:
        with self.lock:
            return [m for r, m in self.messages if r == address]


@dataclass
class Run:
    ns: str
    mailbox: Mailbox
    service: ServiceProcess
    jobs: Jobs
    teams: dict[str, str]
    escalation: str


def email_sub(sid: str, address: str, kind: str = "team", team: str | None = "radiology",
              types: list[str] | None = None) -> dict[str, Any]:
    return {"id": sid, "subscriber": sid, "kind": kind, "team": team,
            "event_types": types or ["carepath.referral.*"], "channel": "email",
            "email": address}


@pytest.fixture(scope="module")
def run(kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[Run]:
    ns = new_namespace(kafka_bootstrap, "nem")
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    subs = [
        email_sub("radiology-desk", "radiology@hospital.example"),
        email_sub("flaky-desk", "flaky@hospital.example", types=[REFERRAL_ESCALATED]),
        email_sub("nobody", "nobody@hospital.example", kind="coordinator", team=None),
    ]
    path: Path = tmp_path_factory.mktemp("subs") / "subs.json"
    env = {**base_env(ns, kafka_bootstrap, redis_url),
           "CAREPATH_SUBSCRIPTIONS_FILE": write_subscriptions(path, subs),
           "CAREPATH_SMTP_HOST": "127.0.0.1", "CAREPATH_SMTP_PORT": str(port),
           "CAREPATH_SMTP_SENDER": "carepath@hospital.example",
           "CAREPATH_LINK_BASE": LINK_BASE}
    service = start_notifications(ns, env)
    topics = Topics(ns)
    teams = {f"ev-m-{i:03d}": ("radiology" if i % 2 == 0 else "surgery") for i in range(N)}
    created = [referral_created(topics.referrals, i, teams[f"ev-m-{i:03d}"], "m")
               for i in range(N)]
    escalation = build_event(
        topic=topics.referrals, key="ep-m-esc",
        envelope=Envelope.new(event_type=REFERRAL_ESCALATED, source="/test",
                              event_id="esc-m-1"),
        # clinical free text where an escalation carries text (its audit entry)
        body=escalation_body("ref-m-esc", "ep-m-esc", "radiology", ["radiology"],
                             priority="urgent",
                             reason="PHQ-9 of 23, radicular pain, prior fusion",
                             details={"phq9": 23}),
    )

    async def feed() -> None:
        broker = make_broker(Settings(kafka_bootstrap_servers=kafka_bootstrap), "test-mail")
        await broker.start()
        try:
            await publish_all(broker, [*created, escalation])
            await publish_all(broker, [*created, escalation])  # the redelivery
        finally:
            await broker.stop()

    asyncio.run(feed())
    jobs = Jobs(redis_url, ns)
    yield Run(ns, mailbox, service, jobs, teams, "esc-m-1")
    service.stop()
    controller.stop()
    jobs.close()


@pytest.fixture(scope="module")
def settled(run: Run) -> Run:
    radiology = [e for e, t in run.teams.items() if t == "radiology"]
    pairs = ([("radiology-desk", e) for e in [*radiology, run.escalation]]
             + [("flaky-desk", run.escalation)]
             + [("nobody", e) for e in [*run.teams, run.escalation]])
    assert wait_until(lambda: run.jobs.terminal(pairs), timeout=60, interval=0.5)
    return run


def test_the_team_mailbox_gets_each_of_its_referrals_once(settled: Run) -> None:
    mails = settled.mailbox.to("radiology@hospital.example")
    radiology = {e for e, t in settled.teams.items() if t == "radiology"}
    by_id = Counter(str(m["Message-ID"]) for m in mails)
    assert len(mails) == len(radiology) + 1  # its referrals and the escalation, once each
    assert set(by_id.values()) == {1}
    links = {text_of(m).split("Open it in Carepath: ")[1].split()[0]
             for m in mails}
    # Only radiology's referrals: the surgery ones never reach this mailbox.
    want = {f"{LINK_BASE}/referrals/ref-m-{e[5:]}" for e in radiology} | \
        {f"{LINK_BASE}/referrals/ref-m-esc"}
    assert links == want


def test_the_message_says_what_happened_without_clinical_detail(settled: Run) -> None:
    [escalated] = [m for m in settled.mailbox.to("radiology@hospital.example")
                   if "Escalated" in str(m["Subject"])]
    text = text_of(escalated)
    assert str(escalated["From"]) == "carepath@hospital.example"
    assert "imaging.mri" in str(escalated["Subject"])
    assert "ep-m-esc" not in str(escalated["Subject"])
    assert f"{LINK_BASE}/referrals/ref-m-esc" in text
    for clinical in ("PHQ", "23", "radicular", "fusion"):
        assert clinical not in text and clinical not in str(escalated["Subject"])


def test_a_transient_refusal_is_retried_and_delivered_once(settled: Run) -> None:
    mails = settled.mailbox.to("flaky@hospital.example")
    assert len(mails) == 1
    assert settled.mailbox.deferred[str(mails[0]["Message-ID"])] == 1  # refused once first
    assert settled.jobs.field("flaky-desk", settled.escalation, "attempts") == "2"


def test_an_unknown_mailbox_is_dead_lettered_at_once(settled: Run) -> None:
    events = [*settled.teams, settled.escalation]
    assert {settled.jobs.status("nobody", e) for e in events} == {"dead"}
    assert {settled.jobs.field("nobody", e, "attempts") for e in events} == {"1"}
    assert {settled.jobs.field("nobody", e, "last_status") for e in events} == {"550"}
    assert settled.mailbox.to("nobody@hospital.example") == []
