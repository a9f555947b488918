"""The webhook HTTP client against scripted local endpoints (no Kafka, no Redis).

Each endpoint is a bare asyncio server that reads requests and answers as a test tells it:
normally, chunked, with a huge body, a redirect, never, or by closing the connection, so the
client's keep-alive, framing, limits and timeouts are checked on the wire.
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from carepath_notifications.webhook_client import (
    DirectWebhookClient,
    HttpxWebhookClient,
    WebhookClient,
    WebhookError,
    WebhookTimeout,
    make_webhook_client,
)

BODY = b'{"id":"ev-1","type":"carepath.referral.created.v1","data":{"team":"radiology"}}'
HEADERS = {"webhook-id": "msg_1", "webhook-timestamp": "1700000000",
           "webhook-signature": "v1,abc", "content-type": "application/json"}


@dataclass
class Request:
    connection: int
    target: str
    headers: dict[str, str]
    body: bytes


# An answer: bytes to write (None: write nothing and hang), then whether to close.
Answer = tuple[bytes | None, bool]


def ok(status: int = 200, body: bytes = b"{}", extra: str = "") -> bytes:
    return (f"HTTP/1.1 {status} X\r\ncontent-length: {len(body)}\r\n{extra}\r\n").encode() + body


@dataclass
class Endpoint:
    answer: Callable[[Request], Answer] = lambda _: (ok(), False)
    requests: list[Request] = field(default_factory=list)
    connections: int = 0
    port: int = 0
    tls: ssl.SSLContext | None = None
    _server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{host}:{self.port}{path}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                target = lines[0].split(" ")[1]
                headers = {}
                for line in lines[1:]:
                    if line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                request = Request(number, target, headers, body)
                self.requests.append(request)
                data, close = self.answer(request)
                if data is None:
                    await asyncio.sleep(3600)
                writer.write(data or b"")
                await writer.drain()
                if close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()


@pytest.fixture()
async def endpoint() -> AsyncIterator[Endpoint]:
    ep = Endpoint()
    await ep.start()
    yield ep
    await ep.stop()


@pytest.fixture()
async def client() -> AsyncIterator[DirectWebhookClient]:
    c = DirectWebhookClient(timeout_s=2.0, connect_timeout_s=1.0)
    yield c
    await c.aclose()


async def test_requests_share_one_connection_and_arrive_intact(
    endpoint: Endpoint, client: DirectWebhookClient
) -> None:
    for _ in range(3):
        response = await client.post(endpoint.url("/hook/a?x=1"), BODY, HEADERS)
        assert response.status_code == 200 and response.is_success
    assert endpoint.connections == 1 and len(endpoint.requests) == 3
    first = endpoint.requests[0]
    assert first.target == "/hook/a?x=1" and first.body == BODY
    assert first.headers["host"] == f"127.0.0.1:{endpoint.port}"
    assert first.headers["content-length"] == str(len(BODY))
    assert {k: first.headers[k] for k in HEADERS} == HEADERS


async def test_a_chunked_answer_is_read_whole_and_retry_after_is_kept(
    endpoint: Endpoint, client: DirectWebhookClient
) -> None:
    endpoint.answer = lambda _: (b"HTTP/1.1 429 Slow Down\r\ntransfer-encoding: chunked\r\n"
                                 b"Retry-After: 7\r\n\r\n4\r\nwait\r\n0\r\n\r\n", False)
    response = await client.post(endpoint.url(), BODY, HEADERS)
    assert (response.status_code, response.retry_after) == (429, "7")
    assert not response.is_success
    endpoint.answer = lambda _: (ok(204, b""), False)
    assert (await client.post(endpoint.url(), BODY, HEADERS)).status_code == 204
    assert endpoint.connections == 1  # the chunked answer left the connection reusable


async def test_redirects_are_not_followed(endpoint: Endpoint,
                                          client: DirectWebhookClient) -> None:
    endpoint.answer = lambda _: (ok(302, b"", "location: http://127.0.0.1:1/elsewhere\r\n"),
                                 False)
    response = await client.post(endpoint.url(), BODY, HEADERS)
    assert response.status_code == 302 and len(endpoint.requests) == 1


async def test_a_connection_the_endpoint_closed_is_not_reused(
    endpoint: Endpoint, client: DirectWebhookClient
) -> None:
    endpoint.answer = lambda _: (ok(), True)  # answers, then hangs up (no "connection: close")
    for _ in range(3):
        assert (await client.post(endpoint.url(), BODY, HEADERS)).status_code == 200
        await asyncio.sleep(0.05)
    assert endpoint.connections == 3 and len(endpoint.requests) == 3


async def test_a_kept_connection_dropped_as_we_send_is_retried_once_on_a_new_one(
    endpoint: Endpoint, client: DirectWebhookClient
) -> None:
    # The second request on each connection is dropped without an answer: the race of a
    # server closing an idle connection just as the client reuses it.
    endpoint.answer = lambda r: ((ok(), False) if sum(
        1 for q in endpoint.requests if q.connection == r.connection) == 1 else (b"", True))
    assert (await client.post(endpoint.url(), BODY, HEADERS)).status_code == 200
    assert (await client.post(endpoint.url(), BODY, HEADERS)).status_code == 200
    assert endpoint.connections == 2
    assert [r.connection for r in endpoint.requests] == [1, 1, 2]


async def test_a_new_connection_closed_without_an_answer_is_an_error(
    endpoint: Endpoint, client: DirectWebhookClient
) -> None:
    endpoint.answer = lambda _: (b"", True)
    with pytest.raises(WebhookError, match="disconnected without sending a response"):
        await client.post(endpoint.url(), BODY, HEADERS)
    assert len(endpoint.requests) == 1  # not retried: the connection was not a kept one


async def test_a_long_answer_is_cut_short_and_its_connection_dropped(endpoint: Endpoint) -> None:
    client = DirectWebhookClient(timeout_s=2.0, connect_timeout_s=1.0, max_body=1024)
    endpoint.answer = lambda _: (ok(200, b"x" * 100_000), False)
    try:
        assert (await client.post(endpoint.url(), BODY, HEADERS)).status_code == 200
        endpoint.answer = lambda _: (ok(), False)
        assert (await client.post(endpoint.url(), BODY, HEADERS)).status_code == 200
    finally:
        await client.aclose()
    assert endpoint.connections == 2


async def test_no_answer_in_time_is_a_timeout_and_a_closed_port_an_error(
    endpoint: Endpoint,
) -> None:
    client = DirectWebhookClient(timeout_s=0.3, connect_timeout_s=0.3)
    endpoint.answer = lambda _: (None, False)
    try:
        with pytest.raises(WebhookTimeout):
            await client.post(endpoint.url(), BODY, HEADERS)
        await endpoint.stop()
        closed = Endpoint()
        await closed.start()
        await closed.stop()
        await asyncio.sleep(0.05)
        with pytest.raises(WebhookError, match="ConnectError") as caught:
            await client.post(closed.url(), BODY, HEADERS)
        assert not isinstance(caught.value, WebhookTimeout)
    finally:
        await client.aclose()


async def test_idle_connections_are_bounded(client: DirectWebhookClient) -> None:
    client.max_idle = 2
    endpoints = [Endpoint() for _ in range(3)]
    for ep in endpoints:
        await ep.start()
    try:
        for _ in range(2):
            for ep in endpoints:
                assert (await client.post(ep.url(), BODY, HEADERS)).status_code == 200
        # three origins, two idle slots: some connection had to be dropped and redone
        assert sum(ep.connections for ep in endpoints) > 3
    finally:
        for ep in endpoints:
            await ep.stop()


def _self_signed(tmp: Path) -> tuple[Path, Path] | None:
    if shutil.which("openssl") is None:
        return None
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


async def test_https_endpoints_are_verified_and_kept_alive(tmp_path: Path) -> None:
    pair = _self_signed(tmp_path)
    if pair is None:
        pytest.skip("openssl is not installed: no certificate to test TLS with")
    cert, key = pair
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    ep = Endpoint(tls=server_ctx)
    await ep.start()
    trusting = ssl.create_default_context(cafile=str(cert))
    client = DirectWebhookClient(timeout_s=2.0, connect_timeout_s=2.0, ssl_context=trusting)
    stranger = DirectWebhookClient(timeout_s=2.0, connect_timeout_s=2.0)  # default roots
    try:
        for _ in range(2):
            response = await client.post(ep.url(host="localhost"), BODY, HEADERS)
            assert response.status_code == 200
        assert ep.connections == 1 and ep.requests[0].body == BODY
        with pytest.raises(WebhookError, match="CERTIFICATE_VERIFY_FAILED"):
            await stranger.post(ep.url(host="localhost"), BODY, HEADERS)
    finally:
        await client.aclose()
        await stranger.aclose()
        await ep.stop()


async def test_the_httpx_client_used_behind_a_proxy_answers_alike(endpoint: Endpoint) -> None:
    client: WebhookClient = HttpxWebhookClient(timeout_s=0.5, connect_timeout_s=0.5)
    try:
        endpoint.answer = lambda _: (ok(429, b"", "retry-after: 3\r\n"), False)
        response = await client.post(endpoint.url(), BODY, HEADERS)
        assert (response.status_code, response.retry_after) == (429, "3")
        assert endpoint.requests[0].body == BODY
        endpoint.answer = lambda _: (None, False)
        with pytest.raises(WebhookTimeout):
            await client.post(endpoint.url(), BODY, HEADERS)
    finally:
        await client.aclose()


async def test_a_proxy_in_the_environment_selects_httpx(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                 "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    direct = make_webhook_client(5.0, max_idle=8)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    proxied = make_webhook_client(5.0, max_idle=8)
    try:
        assert isinstance(direct, DirectWebhookClient)
        assert isinstance(proxied, HttpxWebhookClient)
    finally:
        await direct.aclose()
        await proxied.aclose()
