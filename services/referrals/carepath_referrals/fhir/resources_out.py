"""Carepath's care plan and referrals as FHIR R4 resources: CarePlan, ServiceRequest, Task (pure).

Input: the referrals service's views, the contract's models (:mod:`carepath_contracts.views`),
or their JSON data. Output: FHIR JSON, validated with ``fhir.resources`` (R4B models) and checked
against the required value sets; a resource that would not validate raises ``ValueError``.

* ``CarePlan`` (one per episode): ``status`` from its referrals (request-status), ``intent``
  plan, one ``activity`` per referral pointing at its ``ServiceRequest``.
* ``ServiceRequest`` (one per referral): ``status`` active / completed / revoked from the
  referral's status, ``intent`` order, ``code`` the step, ``performerType`` the team.
* ``Task`` (one per referral, same id): ``status`` is the referral's status (already a FHIR
  task-status code), ``businessStatus`` Carepath's finer state, ``focus`` the ServiceRequest,
  ``restriction.period.end`` the due time.

No patient identity exists in Carepath: ``subject``/``for`` reference the pseudonymous
episode by identifier.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from carepath_contracts import fhir_codes as C
from carepath_contracts.views import CarePlanView, ReferralView

__all__ = ["care_plan_id", "care_plan_resource", "service_request_resource", "task_resource"]

_V = TypeVar("_V", bound=BaseModel)
_CODE_ERRORS = frozenset({"enum", "literal_error"})
_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_ID_NAMESPACE = uuid.UUID("0b6a8f4e-9d55-5c1e-8a7e-cf1d2c3b4a59")


def fhir_id(value: str) -> str:
    """``value`` if it is a valid FHIR id, else a stable UUID derived from it."""
    return value if _FHIR_ID.fullmatch(value) else str(uuid.uuid5(_ID_NAMESPACE, value))


def care_plan_id(episode_id: str) -> str:
    return fhir_id(episode_id)


def _instant(value: datetime) -> str:
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.isoformat()


def _episode_ref(episode_id: str) -> dict[str, Any]:
    return {
        "type": "Patient",
        "identifier": {"system": C.EPISODE_ID, "value": episode_id},
        "display": "pseudonymous Carepath episode",
    }


def _concept(system: str, code: str, display: str | None) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding], "text": display or code}


def _step(step: str) -> dict[str, Any]:
    return _concept(C.STEP, step, C.STEP_DISPLAY.get(step))


def _team(team: str) -> dict[str, Any]:
    return _concept(C.TEAM, team, C.TEAM_DISPLAY.get(team))


def _view(model: type[_V], data: Mapping[str, Any] | _V) -> _V:
    """``data`` as the contract's view model; a code outside its vocabulary (a status, a
    priority, a team, a step: each an FHIR value set here) is a ``ValueError`` naming the field,
    never quoting the value."""
    if isinstance(data, model):
        return data
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        problems = [
            ".".join(str(p) for p in e["loc"])
            + (" is not in its FHIR value set" if e["type"] in _CODE_ERRORS else ": " + e["msg"])
            for e in exc.errors(include_input=False)
        ]
        raise ValueError(f"invalid {model.__name__}: {'; '.join(problems)}") from None


def _referral(data: Mapping[str, Any] | ReferralView) -> ReferralView:
    return _view(ReferralView, data)


def _validated(resource: dict[str, Any]) -> dict[str, Any]:
    """Validate with the fhir.resources R4B model of its type; return normalised FHIR JSON."""
    from fhir.resources.R4B import get_fhir_model_class

    model = get_fhir_model_class(resource["resourceType"])
    try:
        parsed = model.model_validate(resource)
    except ValidationError as exc:
        raise ValueError(f"invalid {resource['resourceType']}: {exc}") from exc
    out: dict[str, Any] = parsed.model_dump(mode="json", by_alias=True, exclude_none=True)
    return out


def _require(value: str, allowed: frozenset[str], what: str) -> str:
    if value not in allowed:
        raise ValueError(f"{what} {value!r} is not in its FHIR value set")
    return value


def service_request_resource(referral: Mapping[str, Any] | ReferralView) -> dict[str, Any]:
    """The referral as a FHIR ServiceRequest (what is asked of which team)."""
    ref = _referral(referral)
    task_status = _require(ref.status, C.TASK_STATUSES, "referral status")
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": fhir_id(ref.referral_id),
        "meta": {"versionId": str(ref.revision), "lastUpdated": _instant(ref.updated_at)},
        "identifier": [
            {"system": C.REFERRAL_ID, "value": ref.referral_id},
            {"system": C.RECOMMENDATION_ID, "value": ref.recommendation_id},
        ],
        "instantiatesUri": [C.PATHWAY_DEFINITION],
        "basedOn": [{"reference": f"CarePlan/{care_plan_id(ref.episode_id)}"}],
        "status": C.SERVICE_REQUEST_STATUS[task_status],
        "intent": "order",
        "priority": _require(ref.priority, C.REQUEST_PRIORITIES, "priority"),
        "code": _step(ref.step),
        "subject": _episode_ref(ref.episode_id),
        "authoredOn": _instant(ref.created_at),
        "performerType": _team(ref.team),
    }
    if ref.scheduled_for is not None:
        resource["occurrenceDateTime"] = _instant(ref.scheduled_for)
    if ref.rationale:
        resource["reasonCode"] = [{"text": ref.rationale}]
    if ref.pathway_version:
        resource["note"] = [{"text": f"Recommended by pathway version {ref.pathway_version}"}]
    return _validated(resource)


def task_resource(referral: Mapping[str, Any] | ReferralView) -> dict[str, Any]:
    """The referral as a FHIR Task: the team's work item that fulfils the ServiceRequest."""
    ref = _referral(referral)
    sr = {"reference": f"ServiceRequest/{fhir_id(ref.referral_id)}"}
    resource: dict[str, Any] = {
        "resourceType": "Task",
        "id": fhir_id(ref.referral_id),
        "meta": {"versionId": str(ref.revision), "lastUpdated": _instant(ref.updated_at)},
        "identifier": [{"system": C.REFERRAL_ID, "value": ref.referral_id}],
        "basedOn": [sr],
        "status": _require(ref.status, C.TASK_STATUSES, "referral status"),
        "businessStatus": _concept(C.BUSINESS_STATUS, ref.business_status,
                                   ref.business_status.replace("-", " ")),
        "intent": "order",
        "priority": _require(ref.priority, C.REQUEST_PRIORITIES, "priority"),
        "code": {"coding": [{"system": C.TASK_CODE, "code": "fulfill",
                             "display": "Fulfill the focal request"}]},
        "description": C.STEP_DISPLAY.get(ref.step, ref.step),
        "focus": sr,
        "for": _episode_ref(ref.episode_id),
        "authoredOn": _instant(ref.created_at),
        "lastModified": _instant(ref.updated_at),
        "performerType": [_team(ref.team)],
        "restriction": {"period": {"end": _instant(ref.due_at)}},
    }
    reason = ref.decline_reason if ref.status == "rejected" else (
        ref.cancel_reason if ref.status == "cancelled" else None)
    if reason:
        resource["statusReason"] = {"text": reason}
    if ref.claimed_by:
        resource["owner"] = {"type": "Practitioner",
                             "identifier": {"system": C.STAFF_ID, "value": ref.claimed_by}}
    if ref.started_at is not None or ref.completed_at is not None:
        period: dict[str, str] = {}
        if ref.started_at is not None:
            period["start"] = _instant(ref.started_at)
        if ref.completed_at is not None:
            period["end"] = _instant(ref.completed_at)
        resource["executionPeriod"] = period
    if ref.outcome:
        resource["output"] = [{
            "type": {"text": "outcome"},
            "valueString": json.dumps(ref.outcome, sort_keys=True, separators=(",", ":")),
        }]
    return _validated(resource)


def _plan_status(plan: CarePlanView) -> str:
    refs = list(plan.referrals.values())
    if not refs or any(r.status not in ("completed", "cancelled") for r in refs):
        return "active"
    return "completed" if any(r.status == "completed" for r in refs) else "revoked"


def care_plan_resource(plan_view: Mapping[str, Any] | CarePlanView) -> dict[str, Any]:
    """The episode's care plan as a FHIR CarePlan, one activity per referral."""
    plan = _view(CarePlanView, plan_view)
    activities: list[dict[str, Any]] = []
    referred = set()
    for ref in sorted(plan.referrals.values(), key=lambda r: (r.created_at, r.step,
                                                              r.referral_id)):
        referred.add(ref.recommendation_id)
        activities.append({"reference": {
            "reference": f"ServiceRequest/{fhir_id(ref.referral_id)}",
            "display": C.STEP_DISPLAY.get(ref.step, ref.step),
        }})
    for rec in sorted(plan.recommendations.values(), key=lambda r: r.recommendation_id or ""):
        if rec.recommendation_id in referred:
            continue
        detail: dict[str, Any] = {"kind": "ServiceRequest", "code": _step(rec.step),
                                  "status": "not-started"}
        if rec.rationale:
            detail["description"] = rec.rationale
        activities.append({"detail": detail})
    description = "Care coordination after failed facet joint injections"
    if plan.pathway_version:
        description += f" (pathway version {plan.pathway_version}"
        description += f", profile {plan.profile})" if plan.profile else ")"
    notes = []
    if plan.urgent:
        notes.append({"text": "Urgent: a recommendation must be acted on at once (red flags)."})
    for w in sorted(plan.withdrawn.values(), key=lambda w: (w.withdrawn_at, w.recommendation_id)):
        notes.append({"time": _instant(w.withdrawn_at),
                      "text": f"Withdrawn: {w.step or w.recommendation_id}"
                              + (f" ({w.reason})" if w.reason else "")})
    resource: dict[str, Any] = {
        "resourceType": "CarePlan",
        "id": care_plan_id(plan.episode_id),
        "meta": {"versionId": str(plan.version), "lastUpdated": _instant(plan.updated_at)},
        "identifier": [{"system": C.EPISODE_ID, "value": plan.episode_id}],
        "instantiatesUri": [C.PATHWAY_DEFINITION],
        "status": _plan_status(plan),
        "intent": "plan",
        "category": [_concept(C.CARE_PLAN_CATEGORY, "failed-facet-injection",
                              "Failed facet joint injection pathway")],
        "title": "Care plan after failed facet joint injections",
        "description": description,
        "subject": _episode_ref(plan.episode_id),
        "period": {"start": _instant(plan.created_at)},
        "created": _instant(plan.created_at),
    }
    if activities:
        resource["activity"] = activities
    if notes:
        resource["note"] = notes
    return _validated(resource)
