"""FHIR R4 at Carepath's edge: a Bundle in becomes an episode; the care plan and referrals go
out as CarePlan, ServiceRequest and Task. Pure mapping code, validated with fhir.resources (R4B).
"""

from carepath_shared.fhir.bundle_to_episode import (
    BundleMapping,
    InvalidBundle,
    Unmapped,
    map_bundle,
    validate_bundle,
)
from carepath_shared.fhir.resources_out import (
    care_plan_id,
    care_plan_resource,
    fhir_id,
    service_request_resource,
    task_resource,
)
from carepath_shared.fhir.views import CarePlanView, ReferralView

__all__ = [
    "BundleMapping",
    "CarePlanView",
    "InvalidBundle",
    "ReferralView",
    "Unmapped",
    "care_plan_id",
    "care_plan_resource",
    "fhir_id",
    "map_bundle",
    "service_request_resource",
    "task_resource",
    "validate_bundle",
]
