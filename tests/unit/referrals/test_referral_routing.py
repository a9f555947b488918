"""Routing: every contract step, site configuration, priorities and due times."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError
from referral_builders import NOW

from carepath_referrals.domain import (
    CONTRACT_STEPS,
    DEFAULT_ROUTING,
    STEP_CODES,
    Priority,
    RoutingTable,
    Team,
    UnknownPriority,
    route,
)

# The contract's table, written out again so the test does not trust the code's copy.
CONTRACT_TEAMS = {
    "imaging.mri": "radiology",
    "imaging.ct": "radiology",
    "imaging.spect": "radiology",
    "diagnostic.medial_branch_block": "interventional_pain",
    "diagnostic.repeat_facet_injection": "interventional_pain",
    "injection.si_joint": "interventional_pain",
    "injection.epidural_steroid": "interventional_pain",
    "injection.trigger_point": "interventional_pain",
    "ablation.rfa": "interventional_pain",
    "ablation.repeat_rfa": "interventional_pain",
    "neuromodulation.scs_evaluation": "neuromodulation",
    "neuromodulation.scs_trial": "neuromodulation",
    "neuromodulation.scs_implant": "neuromodulation",
    "surgery.consultation": "surgery",
    "surgery.urgent_referral": "surgery",
    "rehab.physical_therapy": "physical_therapy",
    "rehab.pain_education": "physical_therapy",
    "psychology.assessment": "psychology",
    "psychology.cbt": "psychology",
    "coordination.second_opinion": "care_coordinator",
    "coordination.pain_diary": "care_coordinator",
}


def test_default_table_covers_exactly_the_21_contract_steps() -> None:
    assert len(CONTRACT_TEAMS) == 21
    assert set(DEFAULT_ROUTING.steps) == set(CONTRACT_TEAMS) == STEP_CODES
    assert {s: t.value for s, t in CONTRACT_STEPS.items()} == CONTRACT_TEAMS


@pytest.mark.parametrize("step", sorted(CONTRACT_TEAMS))
def test_every_step_routes_to_its_contract_team(step: str) -> None:
    decision = route(step, None, NOW)
    assert decision.team.value == CONTRACT_TEAMS[step]
    assert decision.step == step
    assert decision.queue
    assert not decision.fallback
    expected = Priority.URGENT if step == "surgery.urgent_referral" else Priority.ROUTINE
    assert decision.priority is expected
    assert decision.due_at == NOW + DEFAULT_ROUTING.due_in[expected]


@pytest.mark.parametrize("step", ["coordination.second_opinion", "coordination.pain_diary"])
def test_coordination_steps_go_to_the_care_coordinator(step: str) -> None:
    decision = route(step, "routine", NOW)
    assert decision.team is Team.CARE_COORDINATOR
    assert decision.queue == "care_coordinator"


def test_defaults_urgent_four_hours_routine_fourteen_days() -> None:
    assert DEFAULT_ROUTING.due_in[Priority.URGENT] == timedelta(hours=4)
    assert DEFAULT_ROUTING.due_in[Priority.ROUTINE] == timedelta(days=14)


@pytest.mark.parametrize("step", sorted(CONTRACT_TEAMS))
def test_urgent_recommendation_is_due_within_hours(step: str) -> None:
    decision = route(step, "urgent", NOW)
    assert decision.priority is Priority.URGENT
    assert timedelta(0) < decision.due_at - NOW <= timedelta(hours=4)


def test_recommendation_urgency_wins_over_routine_default() -> None:
    assert route("imaging.mri", Priority.URGENT, NOW).priority is Priority.URGENT


def test_highest_policy_never_lowers_an_urgent_step() -> None:
    decision = route("surgery.urgent_referral", "routine", NOW)
    assert decision.priority is Priority.URGENT
    assert decision.queue == "surgery.urgent"


def test_recommendation_policy_lets_the_recommendation_win_outright() -> None:
    table = DEFAULT_ROUTING.with_site_config({"priority_policy": "recommendation"})
    assert table.route("surgery.urgent_referral", "routine", NOW).priority is Priority.ROUTINE
    # with no hint, the step's default applies
    assert table.route("surgery.urgent_referral", None, NOW).priority is Priority.URGENT


def test_unknown_step_falls_back_to_the_coordinator() -> None:
    decision = route("imaging.pet", "urgent", NOW)
    assert decision.fallback
    assert decision.team is Team.CARE_COORDINATOR
    assert decision.queue == "care_coordinator.unrouted"
    assert decision.priority is Priority.URGENT


def test_unknown_priority_is_refused() -> None:
    with pytest.raises(UnknownPriority, match="stat"):
        route("imaging.mri", "stat", NOW)


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        route("imaging.mri", None, datetime(2025, 1, 1))


# -- site configuration ------------------------------------------------------------------------


def test_site_config_overrides_queue_priority_and_due_times() -> None:
    table = DEFAULT_ROUTING.with_site_config(
        {
            "steps": {"imaging.mri": {"queue": "radiology.mri-fast", "priority": "urgent"}},
            "team_queues": {"psychology": "psychology.pain-clinic"},
            "due_in": {"urgent": "2 hours", "routine": "P21D"},
        }
    )
    mri = table.route("imaging.mri", None, NOW)
    assert (mri.team, mri.queue, mri.priority) == (Team.RADIOLOGY, "radiology.mri-fast", "urgent")
    assert mri.due_at == NOW + timedelta(hours=2)
    cbt = table.route("psychology.cbt", None, NOW)
    assert cbt.queue == "psychology.pain-clinic"
    assert cbt.due_at == NOW + timedelta(days=21)
    # untouched steps keep the defaults
    assert table.steps["ablation.rfa"] == DEFAULT_ROUTING.steps["ablation.rfa"]
    # the base table is unchanged
    assert DEFAULT_ROUTING.route("imaging.mri", None, NOW).queue == "radiology"


def test_site_config_moving_a_step_to_another_team_takes_that_teams_queue() -> None:
    table = DEFAULT_ROUTING.with_site_config(
        {"steps": {"surgery.urgent_referral": {"team": "neuromodulation"}}}
    )
    decision = table.route("surgery.urgent_referral", None, NOW)
    assert (decision.team, decision.queue) == (Team.NEUROMODULATION, "neuromodulation")
    assert decision.priority is Priority.URGENT


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4 hours", timedelta(hours=4)),
        ("4h", timedelta(hours=4)),
        ("90 minutes", timedelta(minutes=90)),
        ("30m", timedelta(minutes=30)),
        ("14 days", timedelta(days=14)),
        ("1 day", timedelta(days=1)),
        ("2w", timedelta(weeks=2)),
        ("PT3H", timedelta(hours=3)),
        (7200, timedelta(hours=2)),
    ],
)
def test_due_in_duration_formats(text: object, expected: timedelta) -> None:
    table = DEFAULT_ROUTING.with_site_config({"due_in": {"urgent": text}})
    assert table.due_in[Priority.URGENT] == expected


def test_site_config_from_json_file(tmp_path: Path) -> None:
    path = tmp_path / "routing.json"
    path.write_text(
        json.dumps({"steps": {"rehab.pain_education": {"team": "psychology", "queue": "edu"}}})
    )
    table = RoutingTable.from_json_file(path, base=DEFAULT_ROUTING)
    decision = table.route("rehab.pain_education", None, NOW)
    assert (decision.team, decision.queue) == (Team.PSYCHOLOGY, "edu")


def test_complete_table_round_trips_through_json(tmp_path: Path) -> None:
    path = tmp_path / "full.json"
    path.write_text(DEFAULT_ROUTING.model_dump_json())
    assert RoutingTable.from_json_file(path) == DEFAULT_ROUTING


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"steps": {"imaging.mir": {"team": "radiology"}}}, "unknown step codes"),
        ({"steps": {"imaging.mri": {"team": "orthopaedics"}}}, "team"),
        ({"steps": {"imaging.mri": {"colour": "red"}}}, "colour"),
        ({"due_in": {"urgent": "30 days"}}, "urgent referrals must not be due later"),
        ({"due_in": {"routine": "-1 days"}}, "due_in"),
        ({"due_in": {"routine": 0}}, "must be positive"),
        ({"due_in": {"asap": "1h"}}, "due_in"),
        ({"team_queues": {"radiology": "  "}}, "team_queues"),
        ({"priority_policy": "lowest"}, "priority_policy"),
        ({"unknown_key": 1}, "unknown_key"),
    ],
)
def test_bad_site_config_is_refused_with_the_reason(
    config: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        DEFAULT_ROUTING.with_site_config(config)


def test_a_complete_table_must_route_every_step() -> None:
    with pytest.raises(ValidationError, match="does not route"):
        RoutingTable.from_dict({"steps": {"imaging.mri": {"team": "radiology"}}})


def test_json_file_must_hold_an_object(tmp_path: Path) -> None:
    path = tmp_path / "list.json"
    path.write_text("[]")
    with pytest.raises(ValueError, match="JSON object"):
        RoutingTable.from_json_file(path, base=DEFAULT_ROUTING)


def test_due_at_follows_a_non_utc_clock() -> None:
    from zoneinfo import ZoneInfo

    local = datetime(2025, 3, 3, 10, 0, tzinfo=ZoneInfo("Europe/Brussels"))
    decision = route("imaging.mri", "urgent", local)
    assert decision.due_at.astimezone(UTC) == datetime(2025, 3, 3, 13, 0, tzinfo=UTC)
