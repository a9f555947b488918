"""Care plan and referrals -> FHIR R4 CarePlan, ServiceRequest and Task (valid, R4B models)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fhir.resources.R4B.careplan import CarePlan as FhirCarePlan
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.task import Task

from carepath_contracts import fhir_codes as C
from carepath_contracts.views import CarePlanView, ReferralView
from carepath_referrals.domain import (
    Accept,
    Actor,
    Cancel,
    CarePlan,
    Complete,
    Decline,
    Referral,
    Schedule,
    TaskStatus,
    Team,
    apply_action,
    apply_recommendations,
    apply_referral_change,
    new_plan,
)
from carepath_referrals.domain.routing import DEFAULT_ROUTING
from carepath_referrals.fhir import care_plan_resource, service_request_resource, task_resource
from carepath_referrals.fhir_routes import referral_view
from carepath_referrals.plan_events import care_plan_view

NOW = datetime(2025, 3, 21, 9, 30, tzinfo=UTC)
COORDINATOR = Actor(subject="coord@example.org", team=Team.CARE_COORDINATOR, role="coordinator")
STEPS = ("ablation.rfa", "rehab.physical_therapy", "psychology.assessment")


def plan_with_referrals(episode_id: str = "ep-1") -> CarePlan:
    event = {
        "episode_id": episode_id, "pathway_version": "2026.11.0", "profile": "seed",
        "urgent": False, "evaluation_seq": 1,
        "recommendations": [{"recommendation_id": f"rec-{step}", "step": step,
                             "priority": "routine", "rationale": f"because {step}"}
                            for step in STEPS],
    }
    plan, new, _ = apply_recommendations(new_plan(episode_id, NOW), event, DEFAULT_ROUTING, NOW)
    assert len(new) == len(STEPS)
    return plan


def member(ref: Referral) -> Actor:
    return Actor(subject=f"{ref.team.value}@example.org", team=ref.team, role="team_member")


def drive(ref: Referral, status: TaskStatus) -> Referral:
    at = NOW + timedelta(hours=1)
    steps: dict[TaskStatus, list[Any]] = {
        TaskStatus.REQUESTED: [],
        TaskStatus.ACCEPTED: [Accept()],
        TaskStatus.IN_PROGRESS: [Accept(), Schedule(when=at + timedelta(days=2))],
        TaskStatus.REJECTED: [Decline(reason="no capacity")],
        TaskStatus.COMPLETED: [Accept(), Complete(outcome={"relief_percent": 80})],
        TaskStatus.CANCELLED: [Cancel(reason="patient moved away")],
    }
    for action in steps[status]:
        actor = COORDINATOR if isinstance(action, Cancel) else member(ref)
        ref, _ = apply_action(ref, action, actor, at)
    assert ref.status is status
    return ref


def test_the_care_plan_is_a_valid_fhir_careplan() -> None:
    plan = plan_with_referrals()
    resource = care_plan_resource(care_plan_view(plan))
    parsed = FhirCarePlan.model_validate(resource)
    assert parsed.status == "active" and parsed.intent == "plan"
    assert resource["id"] == "ep-1"
    assert resource["meta"]["versionId"] == str(plan.version)
    refs = sorted(a["reference"]["reference"] for a in resource["activity"])
    assert refs == sorted(f"ServiceRequest/{rid}" for rid in plan.referrals)
    # The subject is the pseudonymous episode, by identifier only.
    assert resource["subject"] == {"type": "Patient", "display": "pseudonymous Carepath episode",
                                   "identifier": {"system": C.EPISODE_ID, "value": "ep-1"}}


def test_each_referral_status_maps_to_the_fhir_value_sets() -> None:
    plan = plan_with_referrals()
    base = next(r for r in plan.referrals.values() if r.step == "ablation.rfa")
    expected_sr = {TaskStatus.REQUESTED: "active", TaskStatus.ACCEPTED: "active",
                   TaskStatus.IN_PROGRESS: "active", TaskStatus.REJECTED: "active",
                   TaskStatus.COMPLETED: "completed", TaskStatus.CANCELLED: "revoked"}
    for status, sr_status in expected_sr.items():
        ref = drive(base, status)
        view = referral_view(ref)
        sr = service_request_resource(view)
        task = task_resource(view)
        ServiceRequest.model_validate(sr)
        Task.model_validate(task)
        assert sr["status"] == sr_status and sr["status"] in C.REQUEST_STATUSES
        assert task["status"] == status.value and task["status"] in C.TASK_STATUSES
        assert task["businessStatus"]["coding"][0] == {
            "system": C.BUSINESS_STATUS, "code": ref.business_status.value,
            "display": ref.business_status.value.replace("-", " ")}
        assert task["focus"] == {"reference": f"ServiceRequest/{ref.referral_id}"}
        assert sr["code"]["coding"][0]["code"] == "ablation.rfa"
        assert task["restriction"]["period"]["end"] == ref.due_at.isoformat().replace(
            "+00:00", "Z")
        assert sr["meta"]["versionId"] == task["meta"]["versionId"] == str(ref.revision)
    declined = task_resource(referral_view(drive(base, TaskStatus.REJECTED)))
    assert declined["statusReason"] == {"text": "no capacity"}
    done = task_resource(referral_view(drive(base, TaskStatus.COMPLETED)))
    assert done["output"][0]["valueString"] == '{"relief_percent":80}'
    assert "start" not in done["executionPeriod"] and "end" in done["executionPeriod"]


def test_the_plan_status_follows_its_referrals() -> None:
    plan = plan_with_referrals()
    for target, expected in ((TaskStatus.COMPLETED, "completed"),
                             (TaskStatus.CANCELLED, "revoked")):
        changed = plan
        for ref in plan.referrals.values():
            changed = apply_referral_change(changed, drive(ref, target))
        assert care_plan_resource(care_plan_view(changed))["status"] == expected
    one_done = apply_referral_change(plan, drive(next(iter(plan.referrals.values())),
                                                 TaskStatus.COMPLETED))
    assert care_plan_resource(care_plan_view(one_done))["status"] == "active"


def test_an_episode_id_that_is_no_fhir_id_gets_a_stable_derived_id() -> None:
    plan = plan_with_referrals("episode_with_underscores")
    resource = care_plan_resource(care_plan_view(plan))
    assert resource["id"] != "episode_with_underscores"
    assert resource["id"] == care_plan_resource(care_plan_view(plan))["id"]
    sr = service_request_resource(referral_view(next(iter(plan.referrals.values()))))
    assert sr["basedOn"] == [{"reference": f"CarePlan/{resource['id']}"}]


def test_a_status_outside_the_value_set_is_refused() -> None:
    view = referral_view(next(iter(plan_with_referrals().referrals.values())))
    with pytest.raises(ValueError, match="value set"):
        task_resource({**view, "status": "bogus"})
    with pytest.raises(ValueError, match="value set"):
        service_request_resource({**view, "priority": "whenever"})


def test_the_views_match_what_the_referrals_service_serves() -> None:
    """The FHIR mapping reads every field the referrals views carry, and no invented one."""
    plan = plan_with_referrals()
    view = care_plan_view(plan)
    assert set(view) == set(CarePlanView.model_fields)
    ref_view = next(iter(view["referrals"].values()))
    assert set(ref_view) == set(ReferralView.model_fields)
    assert set(referral_view(next(iter(plan.referrals.values())))) == set(ReferralView.model_fields)
    CarePlanView.model_validate(view)
