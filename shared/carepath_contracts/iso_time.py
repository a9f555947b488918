"""Timestamps as the contract has them: ISO 8601 text only (``12345`` is not a time)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BeforeValidator, Field


def _iso_text_only(value: Any) -> Any:
    if isinstance(value, str | datetime):
        return value
    raise ValueError("must be an ISO 8601 date-time string (e.g. 2026-05-01T09:00:00+00:00)")


IsoDatetime = Annotated[datetime, BeforeValidator(_iso_text_only), Field(strict=False)]
"""A date-time given as ISO 8601 text (or already a ``datetime``); numbers are refused."""

IsoAwareDatetime = Annotated[AwareDatetime, BeforeValidator(_iso_text_only)]
"""The same, with a time zone."""
