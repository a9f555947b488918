"""Kept-alive webhook connections and the destination guard, on loopback receivers that count
the TCP connections they accept (no Kafka, no Redis).

The sender checks the destination before every request and the client keeps idle connections
per (scheme, host, port, checked address): requests reuse a connection only to the address the
guard has just returned for the same host, a name that now resolves elsewhere gets a new
connection there (after the guard passed it), a refused one gets none at all, and a
connection idle longer than the keep-alive is not reused.
"""

from __future__ import annotations

import asyncio
import ipaddress
import sys
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from carepath_notifications.destination_resolver import DestinationGuard
from carepath_notifications.domain.destination_guard import CAUSE, Allowlist
from carepath_notifications.webhook_client import DirectWebhookClient
from carepath_notifications.webhook_sender import send_webhook
from carepath_testkit.processes import new_webhook_secret
from support.loopback_http import read_request

BODY = b'{"id":"ev-1","type":"carepath.referral.created.v1","data":{"team":"radiology"}}'
SECRET = new_webhook_secret()

CONNECTS: list[Any] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "socket.connect":
        CONNECTS.append(args[1])


sys.addaudithook(_audit)


@pytest.fixture(autouse=True)
def loopback_only() -> Any:
    CONNECTS.clear()
    yield
    for address in CONNECTS:
        host = address[0] if isinstance(address, tuple) else None
        assert host is not None and ipaddress.ip_address(host).is_loopback, CONNECTS


@dataclass
class Receiver:
    """HTTP/1.1 on one loopback address: answers 200 and keeps the connection; counts the
    connections it accepted and the ``Host`` of every request on each."""

    address: str
    port: int = 0
    accepted: int = 0
    hosts: dict[int, list[str]] = field(default_factory=dict)  # connection -> Host headers
    _server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.address, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def requests(self) -> int:
        return sum(len(h) for h in self.hosts.values())

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        number = self.accepted
        self.hosts[number] = []
        try:
            while True:
                headers, _body = await read_request(reader)
                self.hosts[number].append(headers["host"])
                await asyncio.sleep(0.005)  # a moment of work: concurrent requests overlap
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()


class Resolver:
    """A stub resolver: answers from ``table`` (name -> address) and counts the questions."""

    def __init__(self, table: dict[str, str]) -> None:
        self.table = table
        self.asked: Counter[str] = Counter()

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked[host] += 1
        return [self.table[host]]


@pytest.fixture()
async def receivers() -> AsyncIterator[tuple[Receiver, Receiver]]:
    first = Receiver("127.0.0.1")
    await first.start()
    second = Receiver("127.0.0.2", port=first.port)  # same port, another loopback address
    await second.start()
    yield first, second
    await first.stop()
    await second.stop()


@pytest.fixture()
async def client() -> AsyncIterator[DirectWebhookClient]:
    c = DirectWebhookClient(timeout_s=2.0, connect_timeout_s=1.0, max_idle=16)
    yield c
    await c.aclose()


def guard_for(port: int, resolver: Resolver, *names: str) -> DestinationGuard:
    return DestinationGuard(Allowlist.parse(",".join(f"{n}:{port}" for n in names)), resolver)


async def send(client: DirectWebhookClient, guard: DestinationGuard, url: str,
               n: int = 0) -> Any:
    return await send_webhook(client, guard, url, SECRET, f"msg_{n}", BODY)


async def test_sequential_requests_share_one_connection_and_each_is_checked(
    receivers: tuple[Receiver, Receiver], client: DirectWebhookClient,
) -> None:
    first, _ = receivers
    resolver = Resolver({"hooks.test": "127.0.0.1"})
    guard = guard_for(first.port, resolver, "hooks.test")
    url = f"http://hooks.test:{first.port}/hook"
    for n in range(20):
        assert (await send(client, guard, url, n)).outcome == "success"
    assert first.accepted == 1 and first.requests == 20
    assert resolver.asked["hooks.test"] == 20  # the guard ran before every request


async def test_concurrent_requests_open_one_connection_each_then_reuse_them(
    receivers: tuple[Receiver, Receiver], client: DirectWebhookClient,
) -> None:
    first, _ = receivers
    resolver = Resolver({"hooks.test": "127.0.0.1"})
    guard = guard_for(first.port, resolver, "hooks.test")
    url = f"http://hooks.test:{first.port}/hook"
    for round_ in range(5):
        results = await asyncio.gather(*(send(client, guard, url, 4 * round_ + i)
                                         for i in range(4)))
        assert all(r.outcome == "success" for r in results)
    assert first.accepted == 4 and first.requests == 20
    assert resolver.asked["hooks.test"] == 20


async def test_a_name_that_resolves_elsewhere_gets_a_new_connection_there(
    receivers: tuple[Receiver, Receiver], client: DirectWebhookClient,
) -> None:
    first, second = receivers
    resolver = Resolver({"hooks.test": "127.0.0.1"})
    guard = guard_for(first.port, resolver, "hooks.test")
    url = f"http://hooks.test:{first.port}/hook"
    for n in range(3):
        await send(client, guard, url, n)
    resolver.table["hooks.test"] = "127.0.0.2"  # rebound while a connection is kept
    for n in range(3):
        assert (await send(client, guard, url, 10 + n)).outcome == "success"
    assert (first.accepted, first.requests) == (1, 3)  # the kept one is not reused
    assert (second.accepted, second.requests) == (1, 3)


async def test_a_refused_destination_gets_no_request_though_a_connection_is_kept(
    receivers: tuple[Receiver, Receiver], client: DirectWebhookClient,
) -> None:
    first, _ = receivers
    resolver = Resolver({"hooks.test": "127.0.0.1", "other.test": "127.0.0.1"})
    guard = guard_for(first.port, resolver, "hooks.test")  # other.test is not allowlisted
    await send(client, guard, f"http://hooks.test:{first.port}/hook")
    refused = await send(client, guard, f"https://other.test:{first.port}/hook")
    assert refused.outcome == "give_up" and refused.cause == CAUSE
    assert resolver.asked["other.test"] == 1
    assert (first.accepted, first.requests) == (1, 1)


async def test_another_host_on_the_same_address_does_not_share_a_connection(
    receivers: tuple[Receiver, Receiver], client: DirectWebhookClient,
) -> None:
    first, _ = receivers
    resolver = Resolver({"a.test": "127.0.0.1", "b.test": "127.0.0.1"})
    guard = guard_for(first.port, resolver, "a.test", "b.test")
    for n in range(3):
        await send(client, guard, f"http://a.test:{first.port}/hook", n)
        await send(client, guard, f"http://b.test:{first.port}/hook", n)
    assert first.accepted == 2  # one per host, each carrying only its own host's requests
    assert sorted(first.hosts.values()) == [[f"a.test:{first.port}"] * 3,
                                            [f"b.test:{first.port}"] * 3]


async def test_a_connection_idle_longer_than_the_keepalive_is_not_reused(
    receivers: tuple[Receiver, Receiver],
) -> None:
    first, _ = receivers
    resolver = Resolver({"hooks.test": "127.0.0.1"})
    guard = guard_for(first.port, resolver, "hooks.test")
    client = DirectWebhookClient(timeout_s=2.0, connect_timeout_s=1.0, keepalive_s=0.2)
    url = f"http://hooks.test:{first.port}/hook"
    try:
        await send(client, guard, url, 1)
        await send(client, guard, url, 2)
        assert first.accepted == 1
        await asyncio.sleep(0.3)
        await send(client, guard, url, 3)
        assert first.accepted == 2 and resolver.asked["hooks.test"] == 3
    finally:
        await client.aclose()
