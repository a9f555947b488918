"""Describing a failure without repeating what was submitted.

Dead-letter headers and log lines say *why* a record failed. Pydantic's own message quotes
each offending value (``input_value=...``), and a value a hospital system sent may be
patient data, so a validation failure is described by field and reason only, and any
``input_value=`` that still slips through another exception's text is cut out.
"""

from __future__ import annotations

import re

from pydantic import ValidationError

from carepath_contracts.episode import validation_errors

# "input_value={'age': 61, ...}, input_type=dict]" (pydantic's line format), up to the end
# of the bracket or the line.
_INPUT_VALUE = re.compile(r"input_value=.*?(?:, input_type=[\w.]+)?(?=\]|$)", re.MULTILINE)
MAX_CAUSE = 2000


def _validation(exc: BaseException) -> ValidationError | None:
    seen = 0
    cur: BaseException | None = exc
    while cur is not None and seen < 16:
        if isinstance(cur, ValidationError):
            return cur
        cur = cur.__cause__ or cur.__context__
        seen += 1
    return None


def scrub(text: str) -> str:
    """``text`` with every pydantic ``input_value=...`` replaced by ``[value withheld]``."""
    return _INPUT_VALUE.sub("[value withheld]", text)


def describe(exc: BaseException, limit: int = MAX_CAUSE) -> str:
    """``"<Type>: <what went wrong>"``, naming fields, never quoting submitted values."""
    found = _validation(exc)
    if found is not None:
        items = validation_errors(found, show_input=False)
        fields = "; ".join(f"{e['field']}: {e['reason']}" for e in items[:20])
        more = f" (+{len(items) - 20} more)" if len(items) > 20 else ""
        prefix = f"{type(exc).__name__}: " if exc is not found else ""
        text = f"{prefix}ValidationError: {len(items)} error(s): {fields}{more}"
    else:
        text = f"{type(exc).__name__}: {scrub(str(exc))}"
    return text[:limit]
