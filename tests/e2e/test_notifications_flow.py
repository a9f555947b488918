"""End to end: an episode becomes notifications, with the four services as real processes.

Before the episode, the physical therapy team subscribes through the API (a signed webhook)
and a psychology mailbox is configured by file (email through a real local SMTP server). A
dashboard watches the episode's live stream. After the POST:

* physical therapy's webhook receives its two referrals, and nothing of other teams;
* the psychology mailbox receives one message, with the link and no clinical detail;
* the stream shows the episode's pathway status and care plan;
* the default webhook (CAREPATH_WEBHOOK_URL) still receives every referral.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiosmtpd.controller import Controller

from carepath_runtime.kafka_admin import create_topics
from support.api import INTAKE
from support.observe import received_webhooks, wait_until
from support.processes import Stack, free_port, start_stack


def text_of(msg: Message) -> str:
    payload = msg.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


pytestmark = [pytest.mark.kafka, pytest.mark.redis, pytest.mark.e2e]

PHYSIO = {"Authorization": "Bearer dev-physio-token"}
COORDINATOR = {"Authorization": "Bearer dev-coordinator-token"}
EPISODE = {
    "region": "lumbar",
    "imaging_done": ["xray", "mri"],
    "medial_branch_blocks": [{"relief_percent": 85}],
    "phq9": 15,
}


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, Message]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.messages.append((rcpt, message_from_bytes(envelope.content)))
        return "250 OK"

    def to(self, address: str) -> list[Message]:
        with self.lock:
            return [m for r, m in self.messages if r == address]


@pytest.fixture(scope="module")
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, redis_url: str, mailbox: tuple[Mailbox, int],
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    ns = f"e2en{uuid.uuid4().hex[:8]}"
    asyncio.run(create_topics(kafka_bootstrap, ns))
    subs: Path = tmp_path_factory.mktemp("subs") / "subs.json"
    subs.write_bytes(orjson.dumps([{
        "id": "psychology-desk", "subscriber": "Psychology desk", "kind": "team",
        "team": "psychology", "event_types": ["carepath.referral.created.v1"],
        "channel": "email", "email": "psychology@hospital.example",
    }]))
    s = start_stack(ns, kafka_bootstrap, redis_url, extra_env={
        "CAREPATH_SUBSCRIPTIONS_FILE": str(subs),
        "CAREPATH_SMTP_HOST": "127.0.0.1",
        "CAREPATH_SMTP_PORT": str(mailbox[1]),
        "CAREPATH_STREAM_KEEPALIVE_S": "1",
    })
    yield s
    s.stop()


def read_stream(url: str, episode_id: str, want: set[str], timeout: float = 60
                ) -> list[dict[str, Any]]:
    """Read the episode's stream until each event name in ``want`` was seen."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    event, data = "message", ""
    with httpx.stream("GET", f"{url}/stream", params={"episode_id": episode_id},
                      headers=COORDINATOR, timeout=10) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            assert time.monotonic() < deadline, f"saw only {[e['event'] for e in seen]}"
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data = line[5:].strip()
            elif line == "" and data:
                seen.append({"event": event, **orjson.loads(data)})
                event, data = "message", ""
                if want <= {e["event"] for e in seen}:
                    return seen
    return seen


def test_an_episode_notifies_its_subscribers(stack: Stack, mailbox: tuple[Mailbox, int]
                                             ) -> None:
    receiver = stack["receiver"].url
    notifications = stack["notifications"].url
    created = httpx.post(f"{notifications}/subscriptions", headers=PHYSIO, timeout=10, json={
        "event_types": ["carepath.referral.created.v1"], "channel": "webhook",
        "url": f"{receiver}/webhook/physio", "secret": stack.webhook_secret,
    })
    assert created.status_code == 201, created.text
    assert created.json()["team"] == "physical_therapy"

    episode_id = f"ep-{uuid.uuid4().hex[:8]}"
    r = httpx.post(f"{stack['intake'].url}/episodes", json={**EPISODE, "episode_id": episode_id},
                   headers=INTAKE, timeout=10)
    assert r.status_code == 202, r.text

    def calls(path: str) -> list[dict[str, Any]]:
        return [w for w in received_webhooks(receiver)["received"]
                if w["path"] == path and w["event"]["data"]["episode_id"] == episode_id]

    assert wait_until(lambda: len(calls("/webhook/physio")) >= 2, timeout=60)
    assert wait_until(lambda: len(calls("/webhook")) >= 4, timeout=60)
    assert wait_until(lambda: len(mailbox[0].to("psychology@hospital.example")) >= 1,
                      timeout=60)

    physio = calls("/webhook/physio")
    assert sorted(c["event"]["data"]["step"] for c in physio) == \
        ["rehab.pain_education", "rehab.physical_therapy"]
    assert {c["event"]["data"]["team"] for c in physio} == {"physical_therapy"}
    assert len({c["webhook_id"] for c in physio}) == 2
    assert sorted(c["event"]["data"]["step"] for c in calls("/webhook")) == [
        "ablation.rfa", "psychology.assessment", "rehab.pain_education",
        "rehab.physical_therapy",
    ]
    assert received_webhooks(receiver)["rejected"] == 0

    [mail] = mailbox[0].to("psychology@hospital.example")
    text = text_of(mail)
    assert "psychology.assessment" in str(mail["Subject"])
    assert "/referrals/" in text
    assert episode_id not in str(mail["Subject"])
    assert "phq" not in text.lower() and "PHQ" not in str(mail["Subject"])

    seen = read_stream(notifications, episode_id, {"pathway.status", "careplan.updated"})
    assert {e["episode_id"] for e in seen if e["event"] != "snapshot"} == {episode_id}
    status = [e for e in seen if e["event"] == "pathway.status"][-1]
    assert "psychology.assessment" in status["data"]["active_steps"]
