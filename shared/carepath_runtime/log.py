"""Structured JSON logging through structlog, with a guard against patient data.

Log events name what happened and carry ids (event id, pseudonymous episode id, topic,
offset). They never carry episode bodies. As a second line of defence, a processor drops
any key that names a clinical or identifying field.

Library logs are ours too: aiokafka, kafka, faststream, uvicorn and asyncio log through the
standard library, whose root handler renders every record with the same structlog processors
(one JSON object per line, ``logger`` naming the library). Library lines and our own warnings
and errors are rate-limited: one line per distinct message per ``rate_interval_s``; the next
line of that message after the interval carries ``suppressed``, how many were dropped.
A broker outage then costs a few lines, not thousands per second.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import MutableMapping
from typing import Any

import structlog

# Keys that must never reach a log line. Episode fields and anything identifying.
FORBIDDEN_KEYS = frozenset(
    {
        "age", "sex", "name", "patient", "patient_name", "mrn", "dob", "birth_date",
        "address", "phone", "email", "body", "episode", "payload", "pain_nrs", "phq9",
        "gad7", "pain_catastrophizing", "imaging_findings", "red_flags", "outcome",
    }
)

LIBRARY_LOGGERS = ("aiokafka", "kafka", "faststream", "uvicorn", "uvicorn.error",
                   "uvicorn.access", "asyncio", "httpx", "httpcore")
MAX_KEYS = 4096  # distinct messages remembered per interval


class RateLimiter:
    """At most one line per distinct message per interval; counts what it dropped."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}
        self._lock = threading.Lock()

    def admit(self, logger: str, message: str) -> tuple[bool, int]:
        """(emit this line?, lines suppressed since the last one emitted)."""
        if self.interval_s <= 0:
            return True, 0
        now = time.monotonic()
        k = (logger, message)
        with self._lock:
            last = self._seen.get(k)
            if last is None or now - last[0] >= self.interval_s:
                if len(self._seen) >= MAX_KEYS:
                    self._seen = {key: v for key, v in self._seen.items()
                                  if now - v[0] < self.interval_s}
                self._seen[k] = (now, 0)
                return True, last[1] if last else 0
            self._seen[k] = (last[0], last[1] + 1)
            return False, 0


_limiter = RateLimiter(10.0)


def _redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        if key in FORBIDDEN_KEYS:
            event_dict[key] = "[redacted]"
    return event_dict


_LIMITED_LEVELS = frozenset({"warning", "warn", "error", "exception", "critical"})


def _rate_limit(_: Any, method: str, event_dict: MutableMapping[str, Any]
                ) -> MutableMapping[str, Any]:
    """Our own warnings and errors (an outage repeats them); info lines pass untouched."""
    if method not in _LIMITED_LEVELS:
        return event_dict
    ok, suppressed = _limiter.admit("carepath", str(event_dict.get("event", "")))
    if not ok:
        raise structlog.DropEvent
    if suppressed:
        event_dict["suppressed"] = suppressed
    return event_dict


def _library_fields(_: Any, __: str, event_dict: MutableMapping[str, Any]
                    ) -> MutableMapping[str, Any]:
    record = event_dict.get("_record")
    if record is not None:
        event_dict.setdefault("logger", record.name)
    return event_dict


class _LimitFilter(logging.Filter):
    """Drops a library record before it is formatted (formatting is the costly part)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("carepath"):
            return True
        ok, suppressed = _limiter.admit(record.name, str(record.msg))
        if ok and suppressed:
            record.suppressed = suppressed
        return ok


def _suppressed_field(_: Any, __: str, event_dict: MutableMapping[str, Any]
                      ) -> MutableMapping[str, Any]:
    record = event_dict.get("_record")
    n = getattr(record, "suppressed", 0) if record is not None else 0
    if n:
        event_dict["suppressed"] = n
    return event_dict


def configure_logging(service: str, level: str = "INFO", rate_interval_s: float = 10.0) -> None:
    """JSON lines on stdout, one per event, tagged with the service name."""
    global _limiter
    _limiter = RateLimiter(rate_interval_s)
    lvl = getattr(logging, level.upper(), logging.INFO)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(_LimitFilter())
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, _library_fields, _suppressed_field],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
    ))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(lvl)
    # Library chatter below WARNING is noise in production; their warnings are ours to see.
    for name in LIBRARY_LOGGERS:
        lib = logging.getLogger(name)
        lib.handlers.clear()
        lib.propagate = True
        lib.setLevel(max(lvl, logging.WARNING))
    structlog.configure(
        processors=[
            *shared,
            _rate_limit,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stdout),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)
