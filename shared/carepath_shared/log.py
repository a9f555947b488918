"""Structured JSON logging through structlog, with a guard against patient data.

Log events name what happened and carry ids (event id, pseudonymous episode id, topic,
offset). They never carry episode bodies. As a second line of defence, a processor drops
any key that names a clinical or identifying field.
"""

from __future__ import annotations

import logging
import sys
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


def _redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        if key in FORBIDDEN_KEYS:
            event_dict[key] = "[redacted]"
    return event_dict


def configure_logging(service: str, level: str = "INFO") -> None:
    """JSON lines on stdout, one per event, tagged with the service name."""
    lvl = getattr(logging, level.upper(), logging.INFO)
    logging.basicConfig(stream=sys.stdout, level=lvl, format="%(message)s", force=True)
    # Third-party libraries log through stdlib; keep them quiet unless they warn.
    for noisy in ("aiokafka", "kafka", "faststream", "uvicorn.access", "httpx"):
        logging.getLogger(noisy).setLevel(max(lvl, logging.WARNING))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
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
