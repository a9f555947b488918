"""Entry point of the notifications service."""

from __future__ import annotations

from fastapi import FastAPI

from carepath_notifications import handlers
from carepath_shared.service import Runtime, make_app, make_runtime, serve
from carepath_shared.settings import Settings, get_settings

SERVICE = "notifications"


async def _close_http(rt: Runtime) -> None:
    client = rt.extras.get("http_client")
    if client is not None:
        await client.aclose()


def create_app(settings: Settings | None = None) -> FastAPI:
    rt = make_runtime(SERVICE, settings)
    handlers.register(rt)
    return make_app(rt, on_stopped=_close_http)


def main() -> None:
    settings = get_settings()
    serve(create_app(settings), SERVICE, settings.notifications_port, settings)


if __name__ == "__main__":
    main()
