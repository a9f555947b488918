"""Reading HTTP/1.1 requests off a stream, for the tests' own loopback receivers."""

from __future__ import annotations

import asyncio


async def read_request(reader: asyncio.StreamReader) -> tuple[dict[str, str], bytes]:
    """One request's headers (names lower-cased) and body; ``IncompleteReadError`` when the
    peer closes the connection between requests."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    headers = {name.strip().lower(): value.strip() for name, _, value in
               (line.partition(":") for line in head.split("\r\n")[1:] if line)}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return headers, body
