"""The referral domain speaks the public contract's models: one definition of each shape and
vocabulary, the pathway's event taken as it is, state stored before still read."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

import carepath_contracts.events as ev
from carepath_contracts import pathway_result, referral_status, steps, views
from carepath_contracts.events import RecommendationsIssued
from carepath_referrals import domain
from carepath_referrals.domain import (
    DEFAULT_ROUTING,
    CarePlan,
    RecommendationEvent,
    Referral,
    apply_recommendations,
    event_digest,
    new_plan,
    plan_view,
)
from carepath_referrals.plan_events import care_plan_view

NOW = datetime(2025, 3, 21, 9, 30, tzinfo=UTC)
PUBLISHED: dict[str, Any] = json.loads(
    (Path(__file__).parents[1] / "contracts" / "published_v1_bodies.json").read_text("utf-8"))


def issued(**changes: Any) -> RecommendationsIssued:
    rec = {"recommendation_id": "rec-1", "step": "imaging.mri", "team": "radiology",
           "priority": "routine", "rationale": "why", "evidence": [
               {"source": "seed", "section": "2"}], "thresholds": {"x": 1}, "facts": {"y": 2}}
    body = {"pathway_version": "1.0.0", "profile": "seed", "urgent": False,
            "recommendations": [rec], "missing_data": [], "episode_id": "ep-1",
            "evaluation_seq": 1, "trigger_event_id": "t-1", **changes}
    return RecommendationsIssued.model_validate(body)


def test_the_vocabularies_are_the_contracts() -> None:
    assert domain.Team is steps.Team
    assert domain.TaskStatus is referral_status.TaskStatus
    assert domain.BusinessStatus is referral_status.BusinessStatus
    assert domain.Priority is pathway_result.Priority
    assert domain.CONTRACT_STEPS is steps.STEP_TEAM


def test_the_domain_models_extend_the_contracts() -> None:
    assert issubclass(Referral, views.ReferralFields)
    assert issubclass(CarePlan, views.CarePlanFields)
    assert domain.EscalationEvent is ev.EscalationEvent
    assert domain.AuditEntry is ev.BODY_MODELS[ev.AUDIT_RECORDED]
    assert domain.Withdrawal is views.Withdrawal
    assert domain.ReferralOutcome is views.ReferralOutcome
    assert domain.Recommendation is pathway_result.RecommendationView
    assert issubclass(pathway_result.Recommendation, pathway_result.RecommendationView)
    shared = set(views.ReferralFields.model_fields)
    assert set(Referral.model_fields) == shared | {"history"}
    assert set(views.ReferralView.model_fields) == shared | {"revision"}


def test_the_typed_event_is_used_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    body = issued()

    def refuse(*_: Any, **__: Any) -> Any:
        raise AssertionError("the typed event was parsed again")

    monkeypatch.setattr(RecommendationsIssued, "model_validate", refuse)
    monkeypatch.setattr(RecommendationEvent, "model_validate", refuse)
    plan, created, _ = apply_recommendations(new_plan("ep-1", NOW), body, DEFAULT_ROUTING, NOW)
    assert plan.recommendations["rec-1"] is body.recommendations[0]
    assert [r.recommendation_id for r in created] == ["rec-1"]


def test_the_digest_is_the_same_for_the_model_and_its_data() -> None:
    body = issued()
    assert event_digest(body) == event_digest(RecommendationEvent.model_validate(
        body.model_dump(mode="json")))
    plan, _, _ = apply_recommendations(new_plan("ep-1", NOW), body, DEFAULT_ROUTING, NOW)
    for again in (body, body.model_dump(mode="json")):
        assert apply_recommendations(plan, again, DEFAULT_ROUTING, NOW)[0] is plan


def test_a_recommendation_without_an_id_is_refused() -> None:
    data = issued().model_dump(mode="json")
    del data["recommendations"][0]["recommendation_id"]
    with pytest.raises(ValueError, match="recommendation_id"):
        apply_recommendations(new_plan("ep-1", NOW), RecommendationsIssued.model_validate(data),
                              DEFAULT_ROUTING, NOW)


def test_the_view_keeps_every_field_of_the_pathways_recommendation() -> None:
    plan, _, _ = apply_recommendations(new_plan("ep-1", NOW), issued(), DEFAULT_ROUTING, NOW)
    rec = care_plan_view(plan)["recommendations"]["rec-1"]
    assert rec == issued().recommendations[0].model_dump(mode="json")
    stored = CarePlan.model_validate(orjson.loads(orjson.dumps(plan.model_dump(mode="json"))))
    assert care_plan_view(stored) == care_plan_view(plan)


def test_a_plan_stored_before_reads_and_publishes_what_was_published() -> None:
    plan = CarePlan.model_validate(PUBLISHED["stored_plan"])
    last = [e for e in PUBLISHED["events"] if e["type"] == ev.CARE_PLAN_UPDATED][-1]
    assert ev.dump_body(plan_view(plan)) == last["value"].encode()
    assert plan.model_dump(mode="json") == PUBLISHED["stored_plan"]
