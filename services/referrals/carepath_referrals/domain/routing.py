"""The routing table: which team, queue, priority and due time a recommended step gets.

A site configures routing with a JSON object laid over :data:`DEFAULT_ROUTING`::

    {
      "steps": {"imaging.mri": {"queue": "radiology.mri-fast", "priority": "urgent"}},
      "team_queues": {"psychology": "psychology.pain-clinic"},
      "due_in": {"urgent": "2 hours", "routine": "P21D"}
    }

Defaults, chosen for safety and meant to be tuned per site:

* ``urgent``: due in **4 hours**. Red-flag referrals (suspected cauda equina, infection,
  malignancy, fracture) must be seen within hours; BMJ Best Practice asks for an emergency MRI
  within 4 h (``shared/clinical/clinical-facts.md`` B4). 4 h is the longest wait it allows.
* ``routine``: due in **14 days**, a common elective triage target; it is not a clinical
  standard, so sites set their own.
* Every step gets the team the contract names; ``surgery.urgent_referral`` is urgent by default,
  everything else routine. Each team has one queue named after the team, except urgent surgical
  referrals (``surgery.urgent``); declined referrals wait in ``care_coordinator.reroute``.

A step code the table does not know (a pathway newer than the routing) is not dropped: it goes to
the care coordinator's ``care_coordinator.unrouted`` queue, flagged ``fallback=True``.

Priority: by default (``priority_policy="highest"``) the referral gets the higher of the
recommendation's own priority and the step's configured priority, so an urgent recommendation
always beats a routine default and a site can raise, but never silently lower, a step's priority.
``priority_policy="recommendation"`` makes the recommendation's priority win outright whenever it
gives one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from os import PathLike
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from carepath_referrals.domain.codes import CONTRACT_STEPS, STEP_CODES, Priority, Team

_SHORT_DURATION = re.compile(
    r"^\s*(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>m|min|mins|minutes?|h|hrs?|hours?|d|days?|w|weeks?)\s*$",
    re.IGNORECASE,
)
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: Any) -> Any:
    """Accept ``"4 hours"``, ``"4h"``, ``"14 days"``, ``"30m"``, ``"2w"`` besides what pydantic
    takes for a timedelta (ISO 8601 such as ``"PT4H"``, or a number of seconds)."""
    if isinstance(value, str):
        match = _SHORT_DURATION.match(value)
        if match:
            seconds = float(match["n"]) * _UNIT_SECONDS[match["unit"][0].lower()]
            return timedelta(seconds=seconds)
    return value


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
QueueName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]

DEFAULT_DUE_IN: dict[Priority, timedelta] = {
    Priority.URGENT: timedelta(hours=4),
    Priority.ROUTINE: timedelta(days=14),
}
DEFAULT_TEAM_QUEUES: dict[Team, str] = {team: team.value for team in Team}
REROUTE_QUEUE = "care_coordinator.reroute"
UNROUTED_QUEUE = "care_coordinator.unrouted"


class UnknownPriority(ValueError):
    """A priority word that is not a Task.priority code Carepath knows."""


def require_aware(now: datetime, name: str = "now") -> None:
    """Every domain clock reading must carry a time zone, so comparisons never mix the two."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {now.isoformat()}")


class StepRoute(BaseModel):
    """Where one step goes: its team, an optional queue (else the team's) and default priority."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    team: Team
    queue: QueueName | None = None
    priority: Priority = Priority.ROUTINE


class RoutingDecision(BaseModel):
    """The result of routing one step at one moment."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    step: str
    team: Team
    queue: str
    priority: Priority
    due_at: AwareDatetime
    fallback: bool = False


class RoutingTable(BaseModel):
    """Per step: team, queue and default priority; per team: default queue; per priority: due-in.

    A complete table must route every contract step (:data:`CONTRACT_STEPS`); unknown step codes
    are refused, so a typo in a site file fails at start-up instead of misrouting.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    steps: dict[str, StepRoute]
    team_queues: dict[Team, QueueName] = Field(default_factory=lambda: dict(DEFAULT_TEAM_QUEUES))
    due_in: dict[Priority, Duration] = Field(default_factory=lambda: dict(DEFAULT_DUE_IN))
    reroute_queue: QueueName = REROUTE_QUEUE
    unrouted_queue: QueueName = UNROUTED_QUEUE
    priority_policy: Literal["highest", "recommendation"] = "highest"

    @model_validator(mode="before")
    @classmethod
    def _fill_partial_maps(cls, data: Any) -> Any:
        # A table may name only some teams' queues or some priorities' due times.
        if isinstance(data, Mapping):
            data = dict(data)
            for key, defaults in (("team_queues", DEFAULT_TEAM_QUEUES), ("due_in", DEFAULT_DUE_IN)):
                given = data.get(key)
                if isinstance(given, Mapping):
                    data[key] = {**{k.value: v for k, v in defaults.items()}, **given}
        return data

    @model_validator(mode="after")
    def _check(self) -> RoutingTable:
        unknown = sorted(set(self.steps) - STEP_CODES)
        if unknown:
            raise ValueError(f"unknown step codes in routing table: {', '.join(unknown)}")
        missing = sorted(STEP_CODES - set(self.steps))
        if missing:
            raise ValueError(f"routing table does not route: {', '.join(missing)}")
        for priority, due in self.due_in.items():
            if due <= timedelta(0):
                raise ValueError(f"due_in for {priority.value} must be positive, got {due}")
        if self.due_in[Priority.URGENT] > self.due_in[Priority.ROUTINE]:
            raise ValueError("due_in: urgent referrals must not be due later than routine ones")
        return self

    # -- loading and site configuration ------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base: RoutingTable | None = None) -> RoutingTable:
        """A complete table (``base=None``), or a site configuration laid over ``base``.

        Over a base, ``steps`` entries are merged per step (``{"queue": "x"}`` changes only the
        queue; naming another ``team`` without a ``queue`` moves the step to that team's
        queue); ``team_queues`` and ``due_in`` are merged per key; other keys replace.
        """
        if base is None:
            return cls.model_validate(data)
        merged: dict[str, Any] = base.model_dump(mode="json")
        for key, value in data.items():
            if key == "steps" and isinstance(value, Mapping):
                steps = dict(merged["steps"])
                for step, override in value.items():
                    current = dict(steps.get(step, {}))
                    if isinstance(override, Mapping):
                        if "team" in override and "queue" not in override:
                            current.pop("queue", None)
                        current.update(override)
                        steps[step] = current
                    else:
                        steps[step] = override  # let validation name the bad value
                merged["steps"] = steps
            elif key in ("team_queues", "due_in") and isinstance(value, Mapping):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
        return cls.model_validate(merged)

    @classmethod
    def from_json_file(
        cls, path: str | PathLike[str], base: RoutingTable | None = None
    ) -> RoutingTable:
        """Load a JSON file: a site configuration over ``base``, or a whole table if ``None``."""
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a routing configuration must be a JSON object")
        return cls.from_dict(data, base=base)

    def with_site_config(self, data: Mapping[str, Any]) -> RoutingTable:
        """This table with a site configuration laid over it (see :meth:`from_dict`)."""
        return RoutingTable.from_dict(data, base=self)

    # -- lookups -----------------------------------------------------------------------------

    def team_queue(self, team: Team) -> str:
        return self.team_queues[team]

    def due_at(self, priority: Priority, now: datetime) -> datetime:
        require_aware(now)
        return now + self.due_in[priority]

    def route(
        self, step: str, priority_hint: Priority | str | None, now: datetime
    ) -> RoutingDecision:
        """Route ``step`` now; ``priority_hint`` is the recommendation's own priority, if any."""
        require_aware(now)
        rule = self.steps.get(step)
        fallback = rule is None
        if rule is None:
            rule = StepRoute(team=Team.CARE_COORDINATOR, queue=self.unrouted_queue)
        priority = self._priority(rule.priority, _priority_or_none(priority_hint))
        return RoutingDecision(
            step=step,
            team=rule.team,
            queue=rule.queue or self.team_queue(rule.team),
            priority=priority,
            due_at=now + self.due_in[priority],
            fallback=fallback,
        )

    def _priority(self, default: Priority, hint: Priority | None) -> Priority:
        if hint is None:
            return default
        if self.priority_policy == "recommendation":
            return hint
        return hint if hint.rank >= default.rank else default


def _priority_or_none(value: Priority | str | None) -> Priority | None:
    if value is None or isinstance(value, Priority):
        return value
    try:
        return Priority(value)
    except ValueError:
        known = ", ".join(p.value for p in Priority)
        raise UnknownPriority(f"unknown priority {value!r}; expected one of: {known}") from None


DEFAULT_ROUTING = RoutingTable(
    steps={
        step: StepRoute(team=team)
        if step != "surgery.urgent_referral"
        else StepRoute(team=team, queue="surgery.urgent", priority=Priority.URGENT)
        for step, team in CONTRACT_STEPS.items()
    }
)


def route(
    step: str,
    priority_hint: Priority | str | None,
    now: datetime,
    table: RoutingTable = DEFAULT_ROUTING,
) -> RoutingDecision:
    """Route ``step`` with ``table`` (the default table unless a site's is given)."""
    return table.route(step, priority_hint, now)
