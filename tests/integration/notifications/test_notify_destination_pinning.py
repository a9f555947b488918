"""The sender checks the destination again at connect time and connects to the address it
checked (DNS rebinding), on real sockets, with a stub resolver.

Every socket connection this module's process makes is recorded by an audit hook
(``socket.connect``) and must go to 127.0.0.1: a rebound name is refused before any
connection, and a pinned one reaches exactly the checked address while ``Host`` and TLS
verification keep the name.
"""

from __future__ import annotations

import asyncio
import ipaddress
import shutil
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from carepath_notifications.destination_resolver import DestinationGuard
from carepath_notifications.domain.destination_guard import CAUSE, Allowlist, DestinationRefused
from carepath_notifications.webhook_client import DirectWebhookClient
from carepath_notifications.webhook_sender import send_webhook
from carepath_runtime.webhook_verify import verify
from carepath_testkit.processes import new_webhook_secret
from support.loopback_http import read_request

BODY = b'{"id":"ev-1","type":"carepath.referral.created.v1","data":{"team":"radiology"}}'
SECRET = new_webhook_secret()
PUBLIC = "93.184.215.14"  # handed out by the stub only; never connected to

CONNECTS: list[Any] = []
_RECORDING = [False]


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "socket.connect" and _RECORDING[0]:
        CONNECTS.append(args[1])


sys.addaudithook(_audit)


@pytest.fixture(autouse=True)
def record_connections() -> Any:
    CONNECTS.clear()
    _RECORDING[0] = True
    yield
    _RECORDING[0] = False
    for address in CONNECTS:  # the rule of every test here: loopback only
        host = address[0] if isinstance(address, tuple) else None
        assert host is not None and ipaddress.ip_address(host).is_loopback, CONNECTS


class Switching:
    """A stub resolver whose answer for one name changes after the first question."""

    def __init__(self, name: str, answers: list[list[str]]) -> None:
        self.name, self.answers, self.asked = name, answers, 0

    def __call__(self, host: str, port: int) -> list[str]:
        assert host == self.name, host
        answer = self.answers[min(self.asked, len(self.answers) - 1)]
        self.asked += 1
        return answer


class Receiver:
    """A bare HTTP/1.1 endpoint on 127.0.0.1 that verifies signatures and answers 204."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls
        self.connections = 0
        self.requests: list[dict[str, str]] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                headers, body = await read_request(reader)
                verify(SECRET, headers, body)
                self.requests.append(headers)
                writer.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()


@pytest.fixture()
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.start()
    yield r
    await r.stop()


@pytest.fixture()
async def client() -> AsyncIterator[DirectWebhookClient]:
    c = DirectWebhookClient(timeout_s=2.0, connect_timeout_s=1.0)
    yield c
    await c.aclose()


@pytest.mark.parametrize("rebound_to", ["127.0.0.1", "169.254.169.254", "10.0.0.7",
                                        "::ffff:127.0.0.1"])
async def test_a_name_rebound_after_subscription_is_refused_before_connecting(
        receiver: Receiver, client: DirectWebhookClient, rebound_to: str) -> None:
    url = f"https://rebind.example:{receiver.port}/hook"
    dns = Switching("rebind.example", [[PUBLIC], [rebound_to]])
    guard = DestinationGuard(Allowlist(), dns)
    assert guard.check_now(url).address == PUBLIC  # subscription time: a public answer

    result = await send_webhook(client, guard, url, SECRET, "msg_1", BODY)  # connect time

    assert result.outcome == "give_up" and result.cause == CAUSE
    assert result.error is not None and result.error.startswith("destination refused")
    assert "rebind.example" not in result.error and rebound_to not in result.error
    assert dns.asked == 2
    assert CONNECTS == [] and receiver.connections == 0  # not even the loopback listener


async def test_the_sender_connects_to_the_checked_address_and_keeps_the_host_name(
        receiver: Receiver, client: DirectWebhookClient) -> None:
    name = "receiver.test"
    url = f"http://{name}:{receiver.port}/hook"
    dns = Switching(name, [["127.0.0.1"]])
    guard = DestinationGuard(Allowlist.parse(f"{name}:{receiver.port}"), dns)
    for i in range(2):
        result = await send_webhook(client, guard, url, SECRET, f"msg_{i}", BODY)
        assert result.outcome == "success", result
    assert dns.asked == 2  # checked before every request, resolved exactly once each
    assert [h["host"] for h in receiver.requests] == [f"{name}:{receiver.port}"] * 2
    connected = list(CONNECTS)
    assert connected == [("127.0.0.1", receiver.port)]  # one kept-alive connection


async def test_an_allowlisted_loopback_receiver_gets_signed_webhooks(
        receiver: Receiver, client: DirectWebhookClient) -> None:
    url = f"http://127.0.0.1:{receiver.port}/webhook"
    allowed = DestinationGuard(Allowlist.parse(f"127.0.0.1:{receiver.port}"))
    result = await send_webhook(client, allowed, url, SECRET, "msg_ok", BODY)
    assert result.outcome == "success" and receiver.requests[0]["webhook-id"] == "msg_ok"
    # the same receiver off the allowlist: refused for good, no connection
    refused = await send_webhook(client, DestinationGuard(Allowlist()), url, SECRET,
                                 "msg_no", BODY)
    assert (refused.outcome, refused.cause) == ("give_up", CAUSE)
    assert len(receiver.requests) == 1 and receiver.connections == 1


def _certificate(tmp: Path, name: str) -> tuple[Path, Path]:
    cert, key = tmp / f"{name}.pem", tmp / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


async def test_tls_to_a_pinned_address_verifies_the_host_name(tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make the test certificate")
    cert, key = _certificate(tmp_path, "hooks.partner.test")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    receiver = Receiver(tls=server)
    await receiver.start()
    trusting = ssl.create_default_context(cafile=str(cert))
    client = DirectWebhookClient(timeout_s=2.0, connect_timeout_s=2.0, ssl_context=trusting)
    try:
        good = f"https://hooks.partner.test:{receiver.port}/hook"
        guard = DestinationGuard(Allowlist.parse(f"hooks.partner.test:{receiver.port}"),
                                 Switching("hooks.partner.test", [["127.0.0.1"]]))
        result = await send_webhook(client, guard, good, SECRET, "msg_tls", BODY)
        assert result.outcome == "success", result
        # another name pinned to the same address: the certificate does not match it
        other = f"https://other.partner.test:{receiver.port}/hook"
        guard = DestinationGuard(Allowlist.parse(f"other.partner.test:{receiver.port}"),
                                 Switching("other.partner.test", [["127.0.0.1"]]))
        result = await send_webhook(client, guard, other, SECRET, "msg_bad", BODY)
        assert result.outcome == "retry" and "CERTIFICATE_VERIFY_FAILED" in (result.error or "")
        assert len(receiver.requests) == 1
    finally:
        await client.aclose()
        await receiver.stop()


def test_refusal_is_a_value_error_with_a_reason() -> None:
    with pytest.raises(DestinationRefused) as refused:
        DestinationGuard(Allowlist()).check_now("https://[::1]/")
    assert refused.value.reason == "the host resolves to a loopback address"
