"""SMTP sessions run on threads of their own: mail servers that hang hold only mail threads,
and the event loop's default executor (the destination guard resolves names there) stays free.
"""

from __future__ import annotations

import asyncio
import threading
from email.message import EmailMessage
from typing import Any

import pytest

from carepath_notifications import email_sender
from carepath_notifications.domain.attempts import AttemptResult
from carepath_notifications.email_sender import SMTP_THREADS, SmtpConfig, send_email

CONFIG = SmtpConfig("127.0.0.1", 2525, "carepath@hospital.example", 5.0,
                    "https://carepath.example")
NOTICE = b'{"id":"ev-1","type":"carepath.referral.created.v1","data":{"team":"radiology"}}'


async def test_hanging_mail_servers_leave_the_default_executor_free(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hang = threading.Event()
    threads: set[str] = set()
    lock = threading.Lock()
    loop = asyncio.get_running_loop()
    all_busy = asyncio.Event()

    def stuck(config: SmtpConfig, msg: EmailMessage) -> AttemptResult:
        with lock:
            threads.add(threading.current_thread().name)
            if len(threads) == SMTP_THREADS:
                loop.call_soon_threadsafe(all_busy.set)
        hang.wait(10)
        return AttemptResult("success", 250, None)

    monkeypatch.setattr(email_sender, "_send_blocking", stuck)
    sends: list[asyncio.Task[Any]] = [
        asyncio.create_task(send_email(CONFIG, f"desk{i}@hospital.example", f"msg_{i}", NOTICE))
        for i in range(SMTP_THREADS + 8)  # more than the default executor's threads, too
    ]
    try:
        async with asyncio.timeout(5):
            await all_busy.wait()
        # Every mail thread hangs; a name resolution still gets a thread at once.
        async with asyncio.timeout(2):
            assert await asyncio.to_thread(lambda: "resolved") == "resolved"
        assert all(name.startswith("notify-smtp") for name in threads)
        assert len(threads) == SMTP_THREADS
    finally:
        hang.set()
        results = await asyncio.gather(*sends)
    assert all(r.outcome == "success" for r in results)
