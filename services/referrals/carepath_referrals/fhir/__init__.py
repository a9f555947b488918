"""FHIR R4 out: the care plan and referrals as CarePlan, ServiceRequest and Task (pure)."""

from carepath_referrals.fhir.resources_out import (
    care_plan_id,
    care_plan_resource,
    fhir_id,
    service_request_resource,
    task_resource,
)

__all__ = [
    "care_plan_id",
    "care_plan_resource",
    "fhir_id",
    "service_request_resource",
    "task_resource",
]
