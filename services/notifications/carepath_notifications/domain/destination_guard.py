"""Which webhook destinations Carepath may connect to (SSRF): pure rules, no I/O.

A webhook URL names a host the subscriber chose, so without a rule anyone allowed to create a
subscription could make the service POST to its own Redis, another service's port or a cloud
metadata address. The rules:

* ``https`` only; plain ``http`` only for a destination on the allowlist.
* No userinfo (``http://good@127.0.0.1/``), no IPv6 zone ids, no ambiguous IPv4 spellings
  (``2130706433``, ``0177.0.0.1``, ``0x7f.1``: C resolvers read them as 127.0.0.1), a port in
  1..65535. A trailing dot is dropped (``localhost.`` is ``localhost``).
* Every address the host resolves to must be public: not unspecified, loopback, private,
  link-local, multicast, reserved, shared (CGNAT, 100.64.0.0/10), documentation or
  benchmarking space, and not an IPv6 form that embeds such an IPv4 address (IPv4-mapped
  ``::ffff:a.b.c.d``, IPv4-compatible ``::a.b.c.d``, 6to4 ``2002::/16``, NAT64 ``64:ff9b::/96``
  and ``64:ff9b:1::/48``, Teredo ``2001::/32``). One bad address refuses the whole answer: a
  resolver that mixes a public and a private answer is the classic DNS rebinding trick.
* ``host:port`` pairs on the allowlist (``CAREPATH_WEBHOOK_ALLOWLIST``) skip the address rule
  (and may use http): the operator vouched for them. The host is compared after
  normalisation (lower case, no trailing dot, IPv6 compressed), the port after defaulting.

The adapter (:mod:`carepath_notifications.destination_resolver`) resolves the host and the
sender connects to the address that was checked (:class:`Pinned`), keeping the host name for
the ``Host`` header and TLS verification.

Refusal reasons never contain the URL or the address (they end up in API answers, logs and
dead-letter records).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

CAUSE = "destination_refused"  # the cause kind of a delivery refused here


class DestinationRefused(ValueError):
    """The destination is not allowed; ``reason`` says why without echoing it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Destination:
    """A syntactically acceptable webhook URL, split and normalised."""

    scheme: str  # "http" | "https"
    host: str  # normalised: lower case, no trailing dot, no brackets, IPv6 compressed
    port: int
    literal: IPAddress | None  # the host, when it is an IP address

    @property
    def tls(self) -> bool:
        return self.scheme == "https"


@dataclass(frozen=True)
class Pinned:
    """A destination that passed, and the one address to connect to."""

    destination: Destination
    address: str
    allowlisted: bool


# Networks refused besides what ``ipaddress`` flags (or flags differently across versions).
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # RFC 6598 carrier-grade NAT
_V4_EXTRA = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "192.0.0.0/24", "192.0.2.0/24", "198.18.0.0/15", "198.51.100.0/24",
    "203.0.113.0/24", "240.0.0.0/4", "255.255.255.255/32",
))
_V6_EXTRA = tuple(ipaddress.ip_network(n) for n in (
    "100::/64", "2001:db8::/32", "2001:10::/28", "2001:20::/28",
))
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_SIXTOFOUR = ipaddress.ip_network("2002::/16")
_TEREDO = ipaddress.ip_network("2001::/32")
_V4_COMPATIBLE = ipaddress.ip_network("::/96")
_V4_MAPPED = ipaddress.ip_network("::ffff:0:0/96")

# A host made only of digits, hex numbers and dots is an IPv4 address in some spelling.
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+))*\.?$")
_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_BAD_CHARS = re.compile(r"[\x00-\x20\x7f\\]")


def _v4_reason(ip: ipaddress.IPv4Address) -> str | None:
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip in _SHARED:
        return "a shared (carrier-grade NAT) address"
    if ip.is_reserved or any(ip in net for net in _V4_EXTRA):
        return "a reserved address"
    if ip.is_private:
        return "a private address"
    if not ip.is_global:
        return "a reserved address"
    return None


def _embedded_v4(ip: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    """The IPv4 address an IPv6 transition form carries, with the form's name."""
    if ip in _V4_MAPPED:
        return "IPv4-mapped", ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _V4_COMPATIBLE and int(ip) > 1:
        return "IPv4-compatible", ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if any(ip in net for net in _NAT64):
        return "NAT64", ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _SIXTOFOUR:
        return "6to4", ipaddress.IPv4Address((int(ip) >> 80) & 0xFFFFFFFF)
    if ip in _TEREDO:  # the client address is stored inverted in the last 32 bits
        return "Teredo", ipaddress.IPv4Address(~int(ip) & 0xFFFFFFFF)
    return None


def address_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` is no place for a webhook, or None if it is a public address."""
    if isinstance(ip, ipaddress.IPv4Address):
        return _v4_reason(ip)
    embedded = _embedded_v4(ip)
    if embedded is not None:
        form, v4 = embedded
        if form == "IPv4-compatible":
            return "an IPv4-compatible IPv6 address (deprecated form)"
        inner = _v4_reason(v4)
        if inner is not None:
            return f"an {form} IPv6 address embedding {inner}"
        return None
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_site_local:
        return "a site-local address"
    if any(ip in net for net in _V6_EXTRA):
        return "a reserved address"
    if ip.is_private:
        return "a private address"
    if ip.is_reserved or not ip.is_global:
        return "a reserved address"
    return None


def _normalise_host(raw: str) -> tuple[str, IPAddress | None]:
    host = raw.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if "%" in host:
        raise DestinationRefused("the host carries percent-encoding or an IPv6 zone id")
    if ":" in host:
        try:
            v6 = ipaddress.IPv6Address(host)
        except ValueError as exc:
            raise DestinationRefused("the host is not a valid IPv6 address") from exc
        return v6.compressed, v6
    host = host.removesuffix(".")
    if not host:
        raise DestinationRefused("the url has no host")
    if _NUMERIC_HOST.match(host):
        try:
            v4 = ipaddress.IPv4Address(host)
        except ValueError as exc:
            raise DestinationRefused(
                "the host is an ambiguous IPv4 spelling (write it as a.b.c.d)"
            ) from exc
        return str(v4), v4
    if len(host) > 253 or not all(_HOST_LABEL.match(label) for label in host.split(".")):
        raise DestinationRefused("the host is not a valid host name")
    return host, None


@lru_cache(maxsize=4096)
def parse_destination(url: str) -> Destination:
    """Split and normalise ``url``; :class:`DestinationRefused` if it cannot be a webhook.

    Pure, so answers are cached (refusals are not: they raise)."""
    if _BAD_CHARS.search(url) or any(c.isspace() for c in url):
        raise DestinationRefused("the url contains whitespace, control characters or '\\'")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise DestinationRefused("the url or its port is malformed") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise DestinationRefused("the url must be https")
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        raise DestinationRefused("the url must not carry credentials (userinfo)")
    if parts.fragment:
        raise DestinationRefused("the url must not carry a fragment")
    if not parts.hostname:
        raise DestinationRefused("the url has no host")
    host, literal = _normalise_host(parts.hostname)
    if port is None:
        port = 443 if scheme == "https" else 80
    if not 1 <= port <= 65535:
        raise DestinationRefused("the port is out of range")
    return Destination(scheme=scheme, host=host, port=port, literal=literal)


@dataclass(frozen=True)
class Allowlist:
    """``host:port`` pairs the operator vouched for (normalised like destinations)."""

    entries: frozenset[tuple[str, int]] = frozenset()

    @classmethod
    def parse(cls, text: str | None) -> Allowlist:
        """From ``"127.0.0.1:8099, [::1]:9000, hooks.internal:8443"``; ValueError if bad."""
        entries: set[tuple[str, int]] = set()
        for item in (text or "").split(","):
            item = item.strip()
            if not item:
                continue
            host_part, sep, port_part = item.rpartition(":")
            if not sep or not port_part.isdigit() or not host_part:
                raise ValueError("CAREPATH_WEBHOOK_ALLOWLIST entries are host:port")
            try:
                host, _ = _normalise_host(host_part)
            except DestinationRefused as exc:
                raise ValueError(f"CAREPATH_WEBHOOK_ALLOWLIST: {exc.reason}") from exc
            port = int(port_part)
            if not 1 <= port <= 65535:
                raise ValueError("CAREPATH_WEBHOOK_ALLOWLIST: port out of range")
            entries.add((host, port))
        return cls(frozenset(entries))

    def allows(self, destination: Destination) -> bool:
        return (destination.host, destination.port) in self.entries


def check_scheme(destination: Destination, allowlist: Allowlist) -> None:
    """https always; http only for an allowlisted destination."""
    if destination.scheme != "https" and not allowlist.allows(destination):
        raise DestinationRefused("the url must be https (http only for allowlisted hosts)")


def choose_address(destination: Destination, addresses: Iterable[str],
                   allowlist: Allowlist) -> Pinned:
    """The address to connect to, from what the host resolved to (in resolver order).

    Refused when nothing resolved, when an answer is not an IP address, or (off the
    allowlist) when any answer is not public.
    """
    check_scheme(destination, allowlist)
    allowed = allowlist.allows(destination)
    parsed: list[IPAddress] = []
    for raw in addresses:
        try:
            ip = ipaddress.ip_address(raw.split("%", 1)[0])
        except ValueError as exc:
            raise DestinationRefused("the host resolved to something not an address") from exc
        parsed.append(ip)
    if not parsed:
        raise DestinationRefused("the host did not resolve to any address")
    if not allowed:
        for ip in parsed:
            reason = address_reason(ip)
            if reason is not None:
                raise DestinationRefused(f"the host resolves to {reason}")
    return Pinned(destination=destination, address=str(parsed[0]), allowlisted=allowed)
