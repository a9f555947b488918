"""Small FHIR R4 JSON builders for the FHIR mapping tests (imported by name)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from carepath_contracts import fhir_codes as C

ROOT = Path(__file__).resolve().parents[3]
SAMPLE_BUNDLE = ROOT / "docs" / "examples" / "bundle.json"


def sample_bundle() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SAMPLE_BUNDLE.read_text(encoding="utf-8"))
    return data


def cc(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding]}


SUBJECT = {"reference": "Patient/p"}


def condition(rid: str, **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Condition", "id": rid, "subject": SUBJECT, **extra}


def lumbar_condition(rid: str = "cond") -> dict[str, Any]:
    return condition(rid, code=cc(C.SNOMED, "279039007"))


def procedure(rid: str, code: str, *, status: str = "completed", when: str | None = None,
              **extra: Any) -> dict[str, Any]:
    res: dict[str, Any] = {"resourceType": "Procedure", "id": rid, "status": status,
                           "code": cc(C.PROCEDURE, code), "subject": SUBJECT, **extra}
    if when:
        res["performedDateTime"] = when
    return res


def observation(rid: str, system: str, code: str, *, status: str = "final",
                when: str | None = None, part_of: str | None = None,
                **value: Any) -> dict[str, Any]:
    res: dict[str, Any] = {"resourceType": "Observation", "id": rid, "status": status,
                           "code": cc(system, code), **value}
    if when:
        res["effectiveDateTime"] = when
    if part_of:
        res["partOf"] = [{"reference": part_of}]
    return res


def percent(value: float) -> dict[str, Any]:
    return {"valueQuantity": {"value": value, "unit": "%", "system": C.UCUM, "code": "%"}}


def bundle(*resources: dict[str, Any], identifier: str | None = "ep-test") -> dict[str, Any]:
    data: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": f"urn:uuid:00000000-0000-0000-0000-{i:012d}", "resource": r}
                  for i, r in enumerate(resources)],
    }
    if identifier is not None:
        data["identifier"] = {"value": identifier}
    return data
