"""The live stream through the console: the browser's EventSource uses the session cookie,
the console talks to notifications' ``/stream`` with a bearer token.

* Coordinators, admins and dashboards: the console relays *their own* stream (their token,
  their ``Last-Event-ID``), byte for byte, so what they see is what notifications gave them.
* Team members may not read the stream. The console reads it with its own stream token only
  to learn *that* a plan holding one of the team's referrals changed, and sends the browser a
  bare ``changed`` event (no id, no episode, no data); the page then refetches through the
  API with the user's token.

An upstream that ends (notifications restarted, a test hook) ends the browser's response; the
page reconnects and resumes from its last id.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson

from carepath_console.sessions import Session
from carepath_runtime.log import get_logger

log = get_logger(__name__)
RELAY_ROLES = frozenset({"coordinator", "admin", "dashboard"})


class UpstreamUnavailable(Exception):
    pass


class Relays:
    """The open upstream connections, so a test hook or shutdown can close them."""

    def __init__(self) -> None:
        self.open: set[httpx.Response] = set()
        self.stopping = asyncio.Event()

    async def drop_all(self) -> int:
        n = len(self.open)
        for resp in list(self.open):
            with contextlib.suppress(Exception):
                await resp.aclose()
        return n


async def open_upstream(client: httpx.AsyncClient, url: str, token: str,
                        last_event_id: str | None, episode_id: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
    if last_event_id:
        headers["Last-Event-ID"] = last_event_id
    params = {"episode_id": episode_id} if episode_id else None
    req = client.build_request("GET", f"{url}/stream", headers=headers, params=params)
    try:
        resp = await client.send(req, stream=True)
    except httpx.HTTPError as exc:
        raise UpstreamUnavailable(type(exc).__name__) from exc
    if resp.status_code != 200:
        status = resp.status_code
        await resp.aclose()
        raise UpstreamUnavailable(f"stream answered {status}")
    return resp


async def relay(resp: httpx.Response, relays: Relays) -> AsyncIterator[bytes]:
    relays.open.add(resp)
    try:
        async for chunk in resp.aiter_raw():
            if relays.stopping.is_set():
                break
            yield chunk
    except httpx.HTTPError as exc:
        log.info("stream_upstream_ended", reason=type(exc).__name__)
    finally:
        relays.open.discard(resp)
        with contextlib.suppress(Exception):
            await resp.aclose()


async def _sse_events(resp: httpx.Response) -> AsyncIterator[tuple[str, str]]:
    event, data = "message", list[str]()
    async for line in resp.aiter_lines():
        if line == "":
            if data:
                yield event, "\n".join(data)
            event, data = "message", list[str]()
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())


def _teams_of(plan: dict[str, Any]) -> set[str]:
    refs = plan.get("referrals") or {}
    return {str(r.get("team")) for r in refs.values() if isinstance(r, dict)}


async def team_pings(resp: httpx.Response, session: Session,
                     relays: Relays) -> AsyncIterator[bytes]:
    """Bare ``changed`` events for a team member (see the module docstring)."""
    relays.open.add(resp)
    touched: set[str] = set()  # episodes where the team held a referral (it may move away)
    live = False
    try:
        yield b"retry: 2000\n\nevent: ready\ndata: {}\n\n"
        async for event, data in _sse_events(resp):
            if relays.stopping.is_set():
                break
            if event == "snapshot":
                live = True
                continue
            if event != "careplan.updated":
                continue
            try:
                body = orjson.loads(data)
            except orjson.JSONDecodeError:
                continue
            episode = str(body.get("episode_id"))
            plan = body.get("data") or {}
            relevant = session.team in _teams_of(plan) or episode in touched
            if session.team in _teams_of(plan):
                touched.add(episode)
            if live and relevant:
                yield b"event: changed\ndata: {}\n\n"
    except httpx.HTTPError as exc:
        log.info("stream_upstream_ended", reason=type(exc).__name__)
    finally:
        relays.open.discard(resp)
        with contextlib.suppress(Exception):
            await resp.aclose()
