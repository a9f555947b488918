"""Reading FHIR JSON values: codings, dates, quantities and Observation values (pure).

Every reader returns the value or raises :class:`NotMappable` with the reason, which the
bundle mapping turns into an ``unmapped`` entry.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from carepath_contracts.fhir_codes import NEUROLOGICAL_DEFICITS, UCUM, Coding

Json = Mapping[str, Any]


class NotMappable(ValueError):
    """A value that cannot become an episode field; the message is the reason."""


def codings(concept: Any) -> Iterator[Coding]:
    """The (system, code) pairs of a CodeableConcept (or of a bare Coding)."""
    if not isinstance(concept, Mapping):
        return
    items = concept.get("coding") if "coding" in concept else [concept]
    for c in items or []:
        if isinstance(c, Mapping) and c.get("system") and c.get("code"):
            yield str(c["system"]), str(c["code"])


def first_code(concept: Any, table: Mapping[Coding, str]) -> str | None:
    """The first coding of ``concept`` that ``table`` knows, mapped."""
    for coding in codings(concept):
        if coding in table:
            return table[coding]
    return None


def describe(concept: Any) -> str:
    """A short text naming a concept, for reasons ("http://loinc.org|1234-5")."""
    found = [f"{s}|{c}" for s, c in codings(concept)]
    if found:
        return ", ".join(found)
    if isinstance(concept, Mapping) and concept.get("text"):
        return f"text {str(concept['text'])[:40]!r}"
    return "no coding"


def parse_time(value: Any) -> datetime | None:
    """A FHIR date, dateTime or instant as an aware datetime (partial dates: first day)."""
    if not isinstance(value, str) or not value:
        return None
    text = value
    if len(text) == 4:
        text += "-01-01"
    elif len(text) == 7:
        text += "-01"
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def effective_time(resource: Json) -> datetime | None:
    """When an Observation or DiagnosticReport applies (its effective[x], else issued)."""
    for key in ("effectiveDateTime", "effectiveInstant"):
        if key in resource:
            return parse_time(resource[key])
    period = resource.get("effectivePeriod")
    if isinstance(period, Mapping):
        return parse_time(period.get("end")) or parse_time(period.get("start"))
    return parse_time(resource.get("issued"))


def performed_time(resource: Json) -> datetime | None:
    """When a Procedure was performed (performedDateTime or performedPeriod.start)."""
    if "performedDateTime" in resource:
        return parse_time(resource["performedDateTime"])
    period = resource.get("performedPeriod")
    if isinstance(period, Mapping):
        return parse_time(period.get("start")) or parse_time(period.get("end"))
    return None


VALUE_KEYS = (
    "valueQuantity", "valueCodeableConcept", "valueString", "valueBoolean", "valueInteger",
    "valueRange", "valueRatio", "valueSampledData", "valueTime", "valueDateTime", "valuePeriod",
)


def value_key(resource: Json) -> str | None:
    return next((k for k in VALUE_KEYS if k in resource), None)


def _number(resource: Json) -> float:
    key = value_key(resource)
    if key == "valueInteger":
        return float(resource[key])
    if key == "valueQuantity":
        value = resource[key].get("value")
        if value is None:
            raise NotMappable("valueQuantity has no value")
        return float(value)
    if key is None:
        raise NotMappable("the Observation has no value")
    raise NotMappable(f"{key} is not a number (send valueInteger or valueQuantity)")


def read_integer(resource: Json) -> int:
    number = _number(resource)
    if not math.isfinite(number) or number != int(number):
        raise NotMappable(f"value {number:g} is not a whole number")
    return int(number)


def read_percent(resource: Json) -> int:
    q = resource.get("valueQuantity")
    if isinstance(q, Mapping):
        unit = q.get("code") or q.get("unit")
        if unit not in (None, "%"):
            raise NotMappable(f"unit {unit!r} is not a percentage (use UCUM '%')")
    return read_integer(resource)


def read_boolean(resource: Json) -> bool:
    if "valueBoolean" in resource:
        return bool(resource["valueBoolean"])
    key = value_key(resource)
    raise NotMappable(f"{key or 'no value'} is not a yes/no answer (send valueBoolean)")


# UCUM time units in days, and the targets' lengths in days.
_DAYS = {"d": 1.0, "wk": 7.0, "mo": 30.4375, "a": 365.25}
_UNIT_WORDS = {
    "day": "d", "days": "d", "week": "wk", "weeks": "wk", "month": "mo", "months": "mo",
    "year": "a", "years": "a",
}


def read_duration(resource: Json, target: str) -> float:
    """A duration Quantity in UCUM d, wk, mo or a, converted to ``target`` (``wk`` or ``mo``)."""
    q = resource.get("valueQuantity")
    if not isinstance(q, Mapping) or q.get("value") is None:
        raise NotMappable("a duration needs valueQuantity with a value and a UCUM time unit")
    code = q.get("code") if q.get("system") in (None, UCUM) else None
    unit = code or _UNIT_WORDS.get(str(q.get("unit", "")).lower()) or q.get("unit")
    if unit not in _DAYS:
        raise NotMappable(f"unit {unit!r} is not a time unit (use UCUM d, wk, mo or a)")
    value = float(q["value"]) * _DAYS[str(unit)] / _DAYS[target]
    if not math.isfinite(value):
        raise NotMappable("duration is not a finite number")
    return round(value, 2)


def read_deficit(resource: Json) -> str:
    concept = resource.get("valueCodeableConcept")
    if isinstance(concept, Mapping):
        for _system, code in codings(concept):
            if code in NEUROLOGICAL_DEFICITS:
                return code
        if str(concept.get("text", "")).lower() in NEUROLOGICAL_DEFICITS:
            return str(concept["text"]).lower()
    text = resource.get("valueString")
    if isinstance(text, str) and text.lower() in NEUROLOGICAL_DEFICITS:
        return text.lower()
    raise NotMappable("neurological deficit must be none, stable or progressive")
