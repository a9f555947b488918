"""The webhook destination guard (SSRF) with a stub resolver: no name is ever looked up and
nothing is connected to; each hostile spelling is refused with a reason that does not echo it.
"""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carepath_notifications.destination_resolver import DestinationGuard, ResolutionFailed
from carepath_notifications.domain.destination_guard import (
    Allowlist,
    DestinationRefused,
    address_reason,
    parse_destination,
)

PUBLIC = "93.184.215.14"  # a global unicast address; only ever handed out by the stub
PUBLIC6 = "2606:2800:21f:cb07:6820:80da:af6b:8b2c"


class StubResolver:
    """Answers from a table; records every question. Unknown names fail like NXDOMAIN."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.asked: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append((host, port))
        if host not in self.table:
            raise ResolutionFailed("name resolution failed (-2)")
        return list(self.table[host])


NAMES = {
    "hooks.partner.example": [PUBLIC],
    "v6.partner.example": [PUBLIC6],
    "localhost": ["127.0.0.1", "::1"],
    "internal.example": ["10.1.2.3"],
    "metadata.example": ["169.254.169.254"],
    "mixed.example": [PUBLIC, "192.168.0.10"],  # one bad answer spoils the lot
    "cgnat.example": ["100.64.0.1"],
    "mapped.example": ["::ffff:127.0.0.1"],
    "ula.example": ["fd00::1"],
    "nat64.example": ["64:ff9b::a00:1"],
    "garbage.example": ["not-an-address"],
    "empty.example": [],
}


def guard(allow: str = "", table: dict[str, list[str]] | None = None
          ) -> tuple[DestinationGuard, StubResolver]:
    stub = StubResolver(NAMES if table is None else table)
    return DestinationGuard(Allowlist.parse(allow), stub), stub


# (url, a phrase of the reason): every one refused, off the allowlist.
HOSTILE = [
    ("http://127.0.0.1:6379/", "https"),  # the observed Redis probe: http refused first
    ("https://127.0.0.1:6379/", "loopback"),
    ("https://127.1.2.3/", "loopback"),
    ("https://localhost/hook", "loopback"),
    ("https://localhost./hook", "loopback"),  # trailing dot
    ("https://LOCALHOST/hook", "loopback"),
    ("https://[::1]:8003/", "loopback"),
    ("https://0.0.0.0:8001/", "unspecified"),
    ("https://[::]/", "unspecified"),
    ("https://[::ffff:127.0.0.1]/", "IPv4-mapped"),
    ("https://[::ffff:7f00:1]/", "IPv4-mapped"),
    ("https://[::ffff:10.0.0.1]/", "IPv4-mapped"),
    ("https://[::127.0.0.1]/", "IPv4-compatible"),
    ("https://[2002:7f00:1::]/", "6to4"),
    ("https://[2002:a9fe:a9fe::1]/", "6to4"),  # 169.254.169.254 inside 6to4
    ("https://[64:ff9b::7f00:1]/", "NAT64"),
    ("https://[64:ff9b:1::a00:1]/", "NAT64"),
    ("https://[2001:0:4136:e378:8000:63bf:80ff:fffe]/", "Teredo"),  # client 127.0.0.1
    ("https://2130706433/", "ambiguous IPv4"),  # decimal 127.0.0.1
    ("https://0177.0.0.1/", "ambiguous IPv4"),  # octal
    ("https://0x7f.0.0.1/", "ambiguous IPv4"),  # hex
    ("https://0x7f000001/", "ambiguous IPv4"),
    ("https://127.1/", "ambiguous IPv4"),  # short form
    ("https://127.0.0.1./", "loopback"),  # trailing dot on a literal
    ("http://good@127.0.0.1/", "userinfo"),
    ("https://good.example@127.0.0.1/", "userinfo"),
    ("https://user:pw@hooks.partner.example/", "userinfo"),
    ("https://10.0.0.8/", "private"),
    ("https://172.16.5.4/", "private"),
    ("https://192.168.1.1/", "private"),
    ("https://169.254.169.254/latest/meta-data/", "link-local"),
    ("https://[fe80::1]/", "link-local"),
    ("https://[fe80::1%25eth0]/", "zone id"),
    ("https://[fd12:3456::1]/", "private"),
    ("https://[fec0::1]/", "site-local"),
    ("https://224.0.0.1/", "multicast"),
    ("https://[ff02::1]/", "multicast"),
    ("https://100.64.0.1/", "shared"),
    ("https://100.127.255.254/", "shared"),
    ("https://240.0.0.1/", "reserved"),
    ("https://255.255.255.255/", "reserved"),
    ("https://192.0.2.1/", "reserved"),  # documentation space: not routable
    ("https://198.18.0.1/", "reserved"),  # benchmarking space
    ("https://[2001:db8::1]/", "reserved"),
    ("https://internal.example/", "private"),
    ("https://metadata.example/", "link-local"),
    ("https://mixed.example/", "private"),
    ("https://cgnat.example/", "shared"),
    ("https://mapped.example/", "IPv4-mapped"),
    ("https://ula.example/", "private"),
    ("https://nat64.example/", "NAT64"),
    ("https://garbage.example/", "not an address"),
    ("https://empty.example/", "did not resolve"),
    ("ftp://hooks.partner.example/", "https"),
    ("gopher://127.0.0.1:6379/_INFO", "https"),
    ("file:///etc/passwd", "https"),
    ("https:///no-host", "no host"),
    ("https://hooks.partner.example:0/", "port"),
    ("https://hooks.partner.example:99999/", "port"),
    ("https://hooks.partner.example/#frag", "fragment"),
    ("https://hooks partner.example/", "whitespace"),
    ("https://hooks.partner.example\\@127.0.0.1/", "'\\'"),
    ("https://127.0.0.1%2e/", "percent"),
    ("https://exa_mple-.com/", "valid host name"),
    ("http://hooks.partner.example/", "https"),  # public but plain http: not allowlisted
]


@pytest.mark.parametrize(("url", "phrase"), HOSTILE)
def test_hostile_destinations_are_refused(url: str, phrase: str) -> None:
    g, _ = guard()
    with pytest.raises(DestinationRefused) as refused:
        g.check_now(url)
    reason = refused.value.reason
    assert phrase.lower() in reason.lower(), reason
    # the reason never echoes the destination
    host = url.split("//", 1)[-1].split("/", 1)[0]
    assert (not host or host not in reason) and url not in reason


@pytest.mark.parametrize(("url", "address"), [
    ("https://hooks.partner.example/carepath", PUBLIC),
    ("https://HOOKS.partner.example./carepath", PUBLIC),
    ("https://v6.partner.example:8443/h?x=1", PUBLIC6),
    ("https://93.184.215.14/h", PUBLIC),
    ("https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/h", PUBLIC6),
    ("https://[64:ff9b::5db8:d70e]/h", "64:ff9b::5db8:d70e"),  # NAT64 of a public address
])
def test_public_https_destinations_pass_and_pin_the_checked_address(url: str,
                                                                    address: str) -> None:
    g, _ = guard()
    pinned = g.check_now(url)
    assert pinned.address == address and not pinned.allowlisted


def test_allowlisted_loopback_receiver_passes_over_http() -> None:
    g, stub = guard("127.0.0.1:8099, [::1]:9000 ,localhost:8100")
    assert g.check_now("http://127.0.0.1:8099/webhook").address == "127.0.0.1"
    assert g.check_now("http://[::1]:9000/webhook").address == "::1"
    pinned = g.check_now("http://localhost.:8100/hook")
    assert pinned.allowlisted and pinned.address == "127.0.0.1"
    assert stub.asked == [("localhost", 8100)]


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8098/webhook",  # another port of the same host
    "http://127.0.0.1:6379/",
    "http://localhost:8099/webhook",  # another spelling: the allowlist names host:port
    "http://2130706433:8099/webhook",
    "http://[::ffff:127.0.0.1]:8099/webhook",
    "http://good@127.0.0.1:8099/webhook",
])
def test_the_allowlist_is_exact(url: str) -> None:
    g, _ = guard("127.0.0.1:8099")
    with pytest.raises(DestinationRefused):
        g.check_now(url)


def test_unresolvable_host_is_a_resolution_failure_not_a_refusal() -> None:
    g, _ = guard()
    with pytest.raises(ResolutionFailed):
        g.check_now("https://nowhere.example/hook")


def test_ip_literals_are_never_sent_to_the_resolver() -> None:
    g, stub = guard()
    with pytest.raises(DestinationRefused):
        g.check_now("https://10.0.0.1/")
    g.check_now("https://93.184.215.14/")
    assert stub.asked == []


@pytest.mark.parametrize("text", ["127.0.0.1", "127.0.0.1:", ":8099", "host:http",
                                  "127.0.0.1:70000", "2130706433:80"])
def test_bad_allowlist_entries_are_configuration_errors(text: str) -> None:
    with pytest.raises(ValueError, match="CAREPATH_WEBHOOK_ALLOWLIST"):
        Allowlist.parse(text)


def test_parse_normalises_host_and_port() -> None:
    d = parse_destination("HTTPS://Hooks.Partner.Example./x")
    assert (d.scheme, d.host, d.port, d.literal) == ("https", "hooks.partner.example", 443,
                                                     None)
    assert parse_destination("http://[0:0::1]:81/").host == "::1"


_NON_PUBLIC_V4 = ["0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
                  "172.16.0.0/12", "192.168.0.0/16", "224.0.0.0/4", "240.0.0.0/4"]


@given(st.sampled_from(_NON_PUBLIC_V4), st.integers(min_value=0, max_value=2**32 - 1))
def test_every_address_of_a_non_public_v4_block_is_refused_in_every_v6_wrapping(
        block: str, seed: int) -> None:
    net = ipaddress.IPv4Network(block)
    v4 = ipaddress.IPv4Address(int(net.network_address) + seed % net.num_addresses)
    assert address_reason(v4) is not None
    wrapped = [
        ipaddress.IPv6Address(f"::ffff:{v4}"),  # IPv4-mapped
        ipaddress.IPv6Address((0x2002 << 112) | (int(v4) << 80)),  # 6to4
        ipaddress.IPv6Address(f"64:ff9b::{v4}"),  # NAT64
    ]
    for v6 in wrapped:
        assert address_reason(v6) is not None, v6
