"""Every event body has a real model in the contract, the JSON published before the referral
bodies got theirs still reads and writes back unchanged, and the vocabularies are closed.

``published_v1_bodies.json`` holds bodies exactly as the referrals service published them while
three of its types were still free-form (captured once from that code; never regenerated).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from carepath_contracts import events as ev
from carepath_contracts.audit import AuditEntry
from carepath_contracts.events import BODY_MODELS, EscalationEvent, dump_body, parse_body
from carepath_contracts.views import CarePlanView

PUBLISHED: dict[str, Any] = json.loads(
    (Path(__file__).parent / "published_v1_bodies.json").read_text(encoding="utf-8"))
EVENTS: list[dict[str, str]] = PUBLISHED["events"]
ALL_TYPES = {value for name, value in vars(ev).items()
             if name.isupper() and isinstance(value, str) and value.startswith("carepath.")}


def _published(event_type: str) -> list[bytes]:
    found = [e["value"].encode() for e in EVENTS if e["type"] == event_type]
    assert found, f"the fixture has no {event_type}"
    return found


# -- a model for every type -------------------------------------------------------------------


def test_every_event_type_has_its_own_model() -> None:
    assert len(ALL_TYPES) == 12
    assert set(BODY_MODELS) == ALL_TYPES
    assert not hasattr(ev, "GenericBody")
    for event_type, model in BODY_MODELS.items():
        assert model.__module__.startswith("carepath_contracts."), (event_type, model)
        assert model.model_config.get("extra") == "forbid" or model is CarePlanView, event_type
        schema = model.model_json_schema()
        assert schema.get("properties") and schema.get("required"), event_type


def test_the_three_referral_bodies_are_their_models() -> None:
    assert BODY_MODELS[ev.REFERRAL_ESCALATED] is EscalationEvent
    assert BODY_MODELS[ev.AUDIT_RECORDED] is AuditEntry
    assert BODY_MODELS[ev.CARE_PLAN_UPDATED] is CarePlanView


# -- the published JSON round-trips -----------------------------------------------------------


@pytest.mark.parametrize("event_type", [
    ev.CARE_PLAN_UPDATED, ev.REFERRAL_ESCALATED, ev.AUDIT_RECORDED, ev.REFERRAL_CREATED,
    ev.REFERRAL_STATUS_CHANGED,
])
def test_published_json_round_trips_through_its_model_unchanged(event_type: str) -> None:
    for raw in _published(event_type):
        body = parse_body(event_type, raw)
        assert isinstance(body, BODY_MODELS[event_type])
        assert dump_body(body) == raw  # the very bytes the producer wrote
        assert orjson.loads(dump_body(body)) == orjson.loads(raw)


def test_the_care_plan_fixture_covers_every_part_of_the_view() -> None:
    plan = parse_body(ev.CARE_PLAN_UPDATED, _published(ev.CARE_PLAN_UPDATED)[-1])
    assert isinstance(plan, CarePlanView)
    assert plan.recommendations and plan.withdrawn and plan.outcomes
    assert any(r.routing_history for r in plan.referrals.values())
    rec = next(iter(plan.recommendations.values()))
    assert rec.model_extra and {"evidence", "thresholds", "facts"} <= set(rec.model_extra)


def test_a_redacted_care_plan_view_still_reads() -> None:
    """A team member's view: other teams' recommendations keep id, step, team and priority."""
    data = orjson.loads(_published(ev.CARE_PLAN_UPDATED)[-1])
    for rec in data["recommendations"].values():
        for key in ("rationale", "evidence", "thresholds", "facts"):
            rec.pop(key)
    for ref in data["referrals"].values():
        ref["redacted"] = True
        for key in ("rationale", "claimed_by", "outcome", "routing_history", "decline_reason"):
            ref.pop(key)
    view = CarePlanView.model_validate(data)
    assert all(r.rationale is None for r in view.recommendations.values())


# -- closed vocabularies ----------------------------------------------------------------------


def _set(data: Any, path: tuple[str, ...], value: Any) -> None:
    *head, last = path
    for key in head:
        data = next(iter(data.values())) if key == "*" else data[int(key) if key.isdigit()
                                                                  else key]
    if last.isdigit():
        data[int(last)] = value
    else:
        data[last] = value


CLOSED_FIELDS: list[tuple[str, tuple[str, ...]]] = [
    (ev.REFERRAL_CREATED, ("team",)),
    (ev.REFERRAL_CREATED, ("status",)),
    (ev.REFERRAL_CREATED, ("step",)),
    (ev.REFERRAL_CREATED, ("priority",)),
    (ev.REFERRAL_STATUS_CHANGED, ("team",)),
    (ev.REFERRAL_STATUS_CHANGED, ("status",)),
    (ev.REFERRAL_STATUS_CHANGED, ("previous_status",)),
    (ev.REFERRAL_STATUS_CHANGED, ("business_status",)),
    (ev.REFERRAL_STATUS_CHANGED, ("step",)),
    (ev.REFERRAL_ESCALATED, ("team",)),
    (ev.REFERRAL_ESCALATED, ("status",)),
    (ev.REFERRAL_ESCALATED, ("step",)),
    (ev.REFERRAL_ESCALATED, ("notify", "0")),
    (ev.REFERRAL_ESCALATED, ("audit", "to_status")),
    (ev.AUDIT_RECORDED, ("actor_team",)),
    (ev.AUDIT_RECORDED, ("to_status",)),
    (ev.AUDIT_RECORDED, ("to_business_status",)),
    (ev.CARE_PLAN_UPDATED, ("referrals", "*", "team")),
    (ev.CARE_PLAN_UPDATED, ("referrals", "*", "status")),
    (ev.CARE_PLAN_UPDATED, ("referrals", "*", "step")),
    (ev.CARE_PLAN_UPDATED, ("recommendations", "*", "step")),
    (ev.CARE_PLAN_UPDATED, ("recommendations", "*", "team")),
    (ev.CARE_PLAN_UPDATED, ("outcomes", "0", "team")),
    (ev.CARE_PLAN_UPDATED, ("withdrawn", "*", "step")),
]


@pytest.mark.parametrize(("event_type", "path"), CLOSED_FIELDS,
                         ids=[f"{t.split('.')[2]}:{'.'.join(p)}" for t, p in CLOSED_FIELDS])
def test_team_status_and_step_refuse_an_unknown_value(event_type: str,
                                                      path: tuple[str, ...]) -> None:
    data = orjson.loads(_published(event_type)[-1])
    _set(data, path, "nurse_station")
    with pytest.raises(ValidationError) as caught:
        parse_body(event_type, orjson.dumps(data))
    assert "nurse_station" not in str(caught.value.errors(include_input=False))


def test_pathway_status_refuses_an_unknown_step() -> None:
    body: dict[str, Any] = {
        "episode_id": "ep-1", "evaluation_seq": 1, "pathway_version": "1", "profile": "seed",
        "urgent": False, "active_steps": ["imaging.mri"], "missing_fields": [],
        "updated_at": "2025-03-21T09:30:00Z"}
    assert parse_body(ev.PATHWAY_STATUS, orjson.dumps(body))
    with pytest.raises(ValidationError):
        parse_body(ev.PATHWAY_STATUS, orjson.dumps({**body, "active_steps": ["imaging.pet"]}))


def test_vocabulary_fields_write_plain_strings() -> None:
    body = parse_body(ev.REFERRAL_ESCALATED, _published(ev.REFERRAL_ESCALATED)[0])
    data = body.model_dump(mode="json")
    assert all(type(data[k]) is str for k in ("team", "status", "step", "priority"))
    assert all(type(t) is str for t in data["notify"])
