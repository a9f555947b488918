"""Sends one notification email over SMTP (standard library, in a worker thread).

The message is rendered from the notice with :func:`render_email`, which keeps only
code-shaped facts and the link: no clinical detail leaves in mail. ``Message-ID`` derives from
the delivery job, so a repeated attempt is recognisable as the same message.

SMTP answers map to the retry policy: 2xx delivered; 4xx (transient) and no answer
(connection refused, timeout) retry; 5xx (e.g. unknown mailbox) is permanent.

The sessions run on threads of their own (at most :data:`SMTP_THREADS` at a time), not on the
event loop's default executor: a mail server that hangs until the timeout then holds only mail
threads, never the resolver threads the webhook destination guard needs.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import smtplib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

import orjson

from carepath_notifications.domain.attempts import AttemptResult
from carepath_notifications.domain.email_render import render_email

SMTP_THREADS = 16
_executor: ThreadPoolExecutor | None = None


def _smtp_executor() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=SMTP_THREADS, thread_name_prefix="notify-smtp")
    return _executor


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    sender: str
    timeout_s: float
    link_base: str


def build_message(config: SmtpConfig, to: str, msg_id: str, notice: bytes) -> EmailMessage:
    event: dict[str, Any] = orjson.loads(notice)
    data = event.get("data")
    rendered = render_email(str(event.get("type", "")), data if isinstance(data, dict) else {},
                            config.link_base)
    msg = EmailMessage()
    msg["From"] = config.sender
    msg["To"] = to
    msg["Subject"] = rendered.subject
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = f"<{msg_id}@carepath>"
    msg["X-Carepath-Delivery"] = msg_id
    msg.set_content(rendered.text)
    return msg


def _send_blocking(config: SmtpConfig, msg: EmailMessage) -> AttemptResult:
    try:
        with smtplib.SMTP(config.host, config.port, timeout=config.timeout_s) as smtp:
            smtp.send_message(msg)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        code = max(codes) if codes else 550
        return _answer(code, "recipient refused")
    except smtplib.SMTPResponseException as exc:
        return _answer(exc.smtp_code, "SMTP error")
    except TimeoutError:
        return AttemptResult("retry", None, "timeout")
    except (OSError, smtplib.SMTPException) as exc:
        return AttemptResult("retry", None, f"{type(exc).__name__}: {str(exc)[:200]}")
    return AttemptResult("success", 250, None)


def _answer(code: int, what: str) -> AttemptResult:
    if 500 <= code < 600:
        return AttemptResult("give_up", code, f"{what} {code}")
    return AttemptResult("retry", code, f"{what} {code}")


async def send_email(config: SmtpConfig, to: str, msg_id: str, notice: bytes) -> AttemptResult:
    msg = build_message(config, to, msg_id, notice)
    call = functools.partial(contextvars.copy_context().run, _send_blocking, config, msg)
    return await asyncio.get_running_loop().run_in_executor(_smtp_executor(), call)
