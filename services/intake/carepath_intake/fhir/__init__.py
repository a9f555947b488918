"""FHIR R4 in: a Bundle becomes an episode (pure mapping, validated with fhir.resources R4B)."""

from carepath_intake.fhir.bundle_to_episode import (
    BundleMapping,
    InvalidBundle,
    Unmapped,
    map_bundle,
    validate_bundle,
)

__all__ = ["BundleMapping", "InvalidBundle", "Unmapped", "map_bundle", "validate_bundle"]
