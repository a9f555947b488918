"""HTTP/1.1 POSTs to webhook endpoints: keep-alive connections per origin, h11 on asyncio.

Why not httpx: a webhook POST through ``httpx.AsyncClient`` cost 0.65-0.8 ms of CPU (URL
merging, cookies, auth and redirect layers, anyio streams and locks), the largest single share
of the service's CPU per webhook. The same request framed by h11 (the HTTP/1.1 state machine
httpx uses underneath) on asyncio streams costs about 0.2 ms. The behaviour is the one the
service had with httpx:

* no redirects followed: a 3xx is the answer (the endpoint needs reconfiguring);
* connecting (TCP and TLS) within ``connect_timeout_s``; sending the request and reading the
  answer within ``timeout_s``;
* TLS with httpx's default context (certifi roots, ``SSL_CERT_FILE``/``SSL_CERT_DIR``), HTTP/1.1
  only (no HTTP/2);
* the answer's body read up to ``max_body`` bytes; a longer one is cut short and its
  connection closed rather than reused;
* idle connections kept per (scheme, host, port, address connected to) for ``keepalive_s``
  (shorter than common server idle timeouts), at most ``max_idle`` in all (the expired ones,
  then the oldest, make room); one that the server closed meanwhile is not reused, and a
  reused connection that fails before any byte of an answer (the server closed it as we sent)
  is retried once on a fresh one. That may repeat a notice the endpoint did receive, which
  at-least-once delivery allows anyway: the repeat carries the same ``webhook-id``.
* the caller (:func:`~.webhook_sender.send_webhook`) runs the destination guard before every
  request and passes the address it checked: a kept connection is reused only for the same
  host *and* that address, and every new connection goes to it. A name that resolves
  elsewhere now gets a new connection to the new (checked) address; the old one idles out.

When the environment configures an HTTP proxy (``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``),
:func:`make_webhook_client` returns :class:`HttpxWebhookClient` instead, which goes through
httpx and honours it (and ``NO_PROXY``), as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol
from urllib.parse import urlsplit

import h11
import httpx

USER_AGENT = "carepath-notifications"
MAX_BODY = 64 * 1024
KEEPALIVE_S = 4.0
_READ_CHUNK = 64 * 1024


@dataclass(frozen=True)
class WebhookResponse:
    status_code: int
    retry_after: str | None = None

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300


class WebhookError(Exception):
    """No answer: the connection failed or the endpoint broke the protocol."""


class WebhookTimeout(WebhookError):
    """No answer in time (connecting, or sending and reading)."""


class WebhookClient(Protocol):
    async def post(self, url: str, body: bytes, headers: Mapping[str, str], *,
                   address: str | None = None) -> WebhookResponse:
        """POST ``body`` to ``url``; with ``address``, connect to that IP (the one the
        destination guard checked) while ``Host`` and TLS verification use the URL's host."""
        ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class Target:
    """Where a URL's request goes: the origin to connect to and the request line's target."""

    tls: bool
    host: str
    port: int
    host_header: str
    path: str

    @property
    def origin(self) -> tuple[bool, str, int]:
        return (self.tls, self.host, self.port)


@lru_cache(maxsize=4096)
def parse_target(url: str) -> Target:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("webhook url needs http(s) and a host")
    tls = parts.scheme == "https"
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Target(tls=tls, host=parts.hostname, port=parts.port or (443 if tls else 80),
                  host_header=parts.netloc.rpartition("@")[2], path=path)


# (tls, host, port, address connected to): idle connections are kept per origin and address.
Origin = tuple[bool, str, int, str]


class _Stale(Exception):
    """The connection ended before any byte of the answer."""


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.http = h11.Connection(h11.CLIENT)
        self.idle_since = time.monotonic()

    def usable(self, keepalive_s: float) -> bool:
        return (time.monotonic() - self.idle_since < keepalive_s
                and not self.reader.at_eof() and not self.writer.is_closing())

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()

    async def exchange(self, target: Target, body: bytes, headers: Mapping[str, str],
                       max_body: int) -> tuple[WebhookResponse, bool]:
        """Send one request, read its answer; the answer and whether to keep the connection."""
        http = self.http
        request = h11.Request(method="POST", target=target.path, headers=[
            ("host", target.host_header), ("user-agent", USER_AGENT),
            ("content-length", str(len(body))), *headers.items(),
        ])
        self.writer.write(http.send(request) + http.send(h11.Data(data=body))
                          + http.send(h11.EndOfMessage()))
        received = False
        try:
            await self.writer.drain()
        except OSError as exc:
            raise _Stale from exc
        status = 0
        retry_after: str | None = None
        size = 0
        while True:
            event = http.next_event()
            if event is h11.NEED_DATA:
                try:
                    chunk = await self.reader.read(_READ_CHUNK)
                except OSError as exc:
                    if not received:
                        raise _Stale from exc
                    raise
                if not chunk and not received:
                    raise _Stale
                received = True
                http.receive_data(chunk)
            elif isinstance(event, h11.Response):
                status = event.status_code
                for name, value in event.headers:
                    if name == b"retry-after":
                        retry_after = value.decode("latin-1")
            elif isinstance(event, h11.Data):
                size += len(event.data)
                if size > max_body:
                    return WebhookResponse(status, retry_after), False
            elif isinstance(event, h11.EndOfMessage):
                break
            # h11.InformationalResponse (1xx): the final answer follows
        reusable = http.our_state is h11.DONE and http.their_state is h11.DONE
        if reusable:
            http.start_next_cycle()
            self.idle_since = time.monotonic()
        return WebhookResponse(status, retry_after), reusable


class DirectWebhookClient:
    """POSTs over kept-alive HTTP/1.1 connections, at most ``max_idle`` idle in all."""

    def __init__(self, timeout_s: float, connect_timeout_s: float, *, max_idle: int = 64,
                 keepalive_s: float = KEEPALIVE_S, max_body: int = MAX_BODY,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.max_idle = max_idle
        self.keepalive_s = keepalive_s
        self.max_body = max_body
        self._ssl = ssl_context
        self._idle: dict[Origin, list[_Connection]] = {}
        self._idle_count = 0

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            ctx = httpx.create_ssl_context()
            ctx.set_alpn_protocols(["http/1.1"])
            self._ssl = ctx
        return self._ssl

    async def post(self, url: str, body: bytes, headers: Mapping[str, str], *,
                   address: str | None = None) -> WebhookResponse:
        target = parse_target(url)
        origin = (*target.origin, address or target.host)
        while True:
            conn = self._checkout(origin)
            reused = conn is not None
            if conn is None:
                conn = await self._connect(target, address or target.host)
            try:
                async with asyncio.timeout(self.timeout_s):
                    response, reusable = await conn.exchange(target, body, headers,
                                                             self.max_body)
            except _Stale as exc:
                conn.close()
                if reused:
                    continue  # closed by the server while idle: once more, on a new one
                raise WebhookError(
                    "RemoteProtocolError: server disconnected without sending a response"
                ) from exc
            except TimeoutError as exc:
                conn.close()
                raise WebhookTimeout("ReadTimeout") from exc
            except (OSError, h11.ProtocolError) as exc:
                conn.close()
                raise WebhookError(f"{type(exc).__name__}: {exc}") from exc
            except BaseException:
                conn.close()
                raise
            if reusable:
                self._checkin(origin, conn)
            else:
                conn.close()
            return response

    async def _connect(self, target: Target, address: str) -> _Connection:
        """Connect to ``address`` (an IP the guard checked); TLS verifies ``target.host``."""
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                if target.tls:
                    reader, writer = await asyncio.open_connection(
                        address, target.port, ssl=self._ssl_context(),
                        server_hostname=target.host.rstrip("."), limit=_READ_CHUNK)
                else:
                    reader, writer = await asyncio.open_connection(
                        address, target.port, limit=_READ_CHUNK)
        except TimeoutError as exc:
            raise WebhookTimeout("ConnectTimeout") from exc
        except OSError as exc:
            raise WebhookError(f"ConnectError: {exc}") from exc
        return _Connection(reader, writer)

    def _checkout(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        while idle:
            conn = idle.pop()
            self._idle_count -= 1
            if conn.usable(self.keepalive_s):
                return conn
            conn.close()
        return None

    def _checkin(self, origin: Origin, conn: _Connection) -> None:
        if self._idle_count >= self.max_idle:
            self._evict()
        if self._idle_count >= self.max_idle:
            conn.close()
            return
        self._idle.setdefault(origin, []).append(conn)
        self._idle_count += 1

    def _evict(self) -> None:
        """Close the idle connections that expired, and if none did, the oldest one."""
        oldest: tuple[float, list[_Connection], _Connection] | None = None
        for conns in self._idle.values():
            for conn in list(conns):
                if not conn.usable(self.keepalive_s):
                    conns.remove(conn)
                    self._idle_count -= 1
                    conn.close()
                elif oldest is None or conn.idle_since < oldest[0]:
                    oldest = (conn.idle_since, conns, conn)
        if self._idle_count >= self.max_idle and oldest is not None:
            oldest[1].remove(oldest[2])
            self._idle_count -= 1
            oldest[2].close()

    async def aclose(self) -> None:
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()
        self._idle_count = 0


class HttpxWebhookClient:
    """The same interface through httpx (used when the environment configures a proxy)."""

    def __init__(self, timeout_s: float, connect_timeout_s: float, *, max_idle: int = 64,
                 max_body: int = MAX_BODY) -> None:
        self.max_body = max_body
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            follow_redirects=False,
            limits=httpx.Limits(max_connections=max_idle, max_keepalive_connections=max_idle),
        )

    async def post(self, url: str, body: bytes, headers: Mapping[str, str], *,
                   address: str | None = None) -> WebhookResponse:
        # Through a proxy the proxy connects, so ``address`` cannot be pinned here: the
        # destination was checked before the call, and the proxy must enforce egress rules
        # of its own (docs/security.md).
        del address
        try:
            async with self._client.stream("POST", url, content=body,
                                           headers=headers) as response:
                size = 0
                async for chunk in response.aiter_raw():
                    size += len(chunk)
                    if size > self.max_body:
                        break
                return WebhookResponse(response.status_code,
                                       response.headers.get("retry-after"))
        except httpx.TimeoutException as exc:
            raise WebhookTimeout(type(exc).__name__) from exc
        except httpx.HTTPError as exc:
            raise WebhookError(f"{type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        await self._client.aclose()


def proxy_configured() -> bool:
    proxies = urllib.request.getproxies()
    return any(proxies.get(scheme) for scheme in ("http", "https", "all"))


def make_webhook_client(timeout_s: float, max_idle: int) -> WebhookClient:
    connect = min(timeout_s, 2.0)
    if proxy_configured():
        return HttpxWebhookClient(timeout_s, connect, max_idle=max_idle)
    return DirectWebhookClient(timeout_s, connect, max_idle=max_idle)
