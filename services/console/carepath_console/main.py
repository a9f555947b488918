"""Entry point of the console (``carepath-console``).

On SIGTERM the open live streams are ended first (browsers reconnect to another instance, or
to this one once it is back), so the graceful shutdown does not wait on them.
"""

from __future__ import annotations

import asyncio
from types import FrameType

import uvicorn

from carepath_console.app import create_app
from carepath_console.live import Relays
from carepath_console.settings import get_console_settings
from carepath_runtime.log import configure_logging


class _Server(uvicorn.Server):
    relays: Relays | None = None
    _drop: asyncio.Task[int] | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.relays is not None:
            self.relays.stopping.set()
            self._drop = asyncio.get_event_loop().create_task(self.relays.drop_all())
        super().handle_exit(sig, frame)


def main() -> None:
    settings = get_console_settings()
    configure_logging("console", settings.carepath_log_level)
    app = create_app(settings)
    server = _Server(uvicorn.Config(app, host=settings.carepath_http_host,
                                    port=settings.console_port, log_config=None,
                                    access_log=False, timeout_graceful_shutdown=10))
    server.relays = app.state.relays
    server.run()


if __name__ == "__main__":
    main()
