"""The webhook destination guard's I/O: resolving the host, with an injectable resolver.

:class:`DestinationGuard` parses a URL, resolves its host (``getaddrinfo`` unless a test or an
operator passes another resolver), applies the pure rules of
:mod:`carepath_notifications.domain.destination_guard` and returns the one address the sender
must connect to. It runs when a subscription is made (file or API) and again before every
connection, so a name that later resolves elsewhere (DNS rebinding) is refused at connect time
and the connection goes to exactly the address that was checked.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

from carepath_notifications.domain.destination_guard import (
    Allowlist,
    DestinationRefused,
    Pinned,
    check_scheme,
    choose_address,
    parse_destination,
)

# (host, port) -> the addresses it resolves to, in the order to try them.
Resolver = Callable[[str, int], list[str]]


class ResolutionFailed(Exception):
    """The host could not be resolved right now (the resolver failed, not the rules)."""


def system_resolver(host: str, port: int) -> list[str]:
    """``getaddrinfo`` for TCP; each address once, in the resolver's order."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ResolutionFailed(f"name resolution failed ({exc.errno})") from exc
    seen: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in seen:
            seen.append(address)
    return seen


class DestinationGuard:
    def __init__(self, allowlist: Allowlist, resolver: Resolver = system_resolver) -> None:
        self.allowlist = allowlist
        self._resolver = resolver
        # URLs whose host is an IP literal need no resolution, so their answer never
        # changes: kept (successes only, bounded) to spare the per-request parse.
        self._literals: dict[str, Pinned] = {}

    def check_syntax(self, url: str) -> None:
        """The rules that need no resolution (scheme, userinfo, host spelling)."""
        check_scheme(parse_destination(url), self.allowlist)

    def check_now(self, url: str) -> Pinned:
        """Resolve and check ``url`` (blocking); :class:`DestinationRefused` or
        :class:`ResolutionFailed`."""
        destination = parse_destination(url)
        check_scheme(destination, self.allowlist)
        if destination.literal is not None:
            addresses = [str(destination.literal)]
        else:
            try:
                addresses = self._resolver(destination.host, destination.port)
            except ResolutionFailed:
                raise
            except (OSError, UnicodeError) as exc:
                raise ResolutionFailed(f"name resolution failed ({type(exc).__name__})") \
                    from exc
        return choose_address(destination, addresses, self.allowlist)

    async def check(self, url: str) -> Pinned:
        """:meth:`check_now`, resolving off the event loop (``getaddrinfo`` blocks); an IP
        literal needs no resolution and no thread."""
        known = self._literals.get(url)
        if known is not None:
            return known
        destination = parse_destination(url)
        if destination.literal is not None:
            pinned = choose_address(destination, [str(destination.literal)], self.allowlist)
            if len(self._literals) < 4096:
                self._literals[url] = pinned
            return pinned
        return await asyncio.to_thread(self.check_now, url)


__all__ = ["DestinationGuard", "DestinationRefused", "Pinned", "ResolutionFailed",
           "Resolver", "system_resolver"]
