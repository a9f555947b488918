"""The referrals HTTP edge maps every refusal of the application service through one table."""

from __future__ import annotations

import pytest

from carepath_contracts.envelope import Cause, Envelope
from carepath_referrals.api import ERROR_STATUS, _problem
from carepath_referrals.domain import (
    AccessDenied,
    IllegalTransition,
    ReferralConflict,
    UnknownReferral,
    VersionConflict,
)
from carepath_referrals.service import InvalidOutcome
from carepath_runtime.kafka_broker import EventTooLarge


@pytest.mark.parametrize(("refusal", "status"), [
    (AccessDenied("a team member may not cancel"), 403),
    (IllegalTransition("completed referrals are final"), 409),
    (ReferralConflict("already claimed"), 409),
    (VersionConflict(3, 4), 409),
    (UnknownReferral("unknown referral r-1"), 404),
    (InvalidOutcome([{"field": "outcome.relief_percent", "reason": "too large"}]), 422),
])
def test_each_refusal_has_its_status(refusal: Exception, status: int) -> None:
    problem = _problem(refusal)
    assert problem.status == status


def test_domain_reasons_are_kept_and_unknown_ids_are_not_named() -> None:
    assert _problem(IllegalTransition("completed referrals are final")).detail == (
        "completed referrals are final")
    # the same 404 as a referral the caller may not see: the id is not echoed
    assert _problem(UnknownReferral("unknown referral r-secret")).detail == "no such referral"


def test_an_invalid_outcome_names_its_fields() -> None:
    errors = [{"field": "outcome.relief_percent", "reason": "must be at most 100"}]
    assert _problem(InvalidOutcome(errors)).errors == errors


def test_the_table_covers_event_too_large() -> None:
    assert EventTooLarge in ERROR_STATUS and ERROR_STATUS[EventTooLarge][0] == 413


def test_an_api_change_is_caused_by_its_input_id_not_by_an_invented_event() -> None:
    cause = Cause(id="8f0c3f0e-input")
    event = Envelope.new(event_type="carepath.referral.status_changed.v1",
                         source="/carepath/referrals", causation=cause)
    assert event.causationid == "8f0c3f0e-input"
    assert event.correlationid == "8f0c3f0e-input"
    chained = Envelope.new(event_type="carepath.careplan.updated.v1",
                           source="/carepath/referrals", causation=event)
    assert chained.causationid == event.id and chained.correlationid == "8f0c3f0e-input"
