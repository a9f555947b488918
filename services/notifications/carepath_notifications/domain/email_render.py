"""Plain-text notification emails that carry the minimum: what happened, and a link.

Email leaves our control (mail relays, inboxes, phones), so the message names only the step,
team, priority, status and due time, and links to the record, where the reader signs in to see
the rest. Fields are taken from an allowlist, never by removing known-sensitive ones, so a body
that grows new fields (rationale, scores, episode facts) cannot leak them into mail. Values must
look like codes; anything else (free text, CR/LF) is dropped, which also keeps the subject safe
from header injection. The episode id never appears in the subject.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple
from urllib.parse import quote

# Event types, as defined in carepath_contracts.events.
REFERRAL_CREATED = "carepath.referral.created.v1"
REFERRAL_ESCALATED = "carepath.referral.escalated.v1"
REFERRAL_STATUS_CHANGED = "carepath.referral.status_changed.v1"
CARE_PLAN_UPDATED = "carepath.careplan.updated.v1"
PATHWAY_STATUS = "carepath.pathway.status.v1"

SUBJECT_PREFIX = "[Carepath]"
FOOTER = "This message carries no clinical details. Sign in to Carepath to see them."

_CODE = re.compile(r"^[A-Za-z0-9_.:-]{1,80}$")


class RenderedEmail(NamedTuple):
    subject: str
    text: str


class _Facts:
    """The allowlisted, code-shaped facts of a body; everything else is ignored."""

    def __init__(self, body: Mapping[str, Any], link_base: str) -> None:
        self.step = _code(body.get("step"))
        self.team = _code(body.get("team"))
        self.priority = _code(body.get("priority"))
        self.status = _code(body.get("status"))
        self.due = _due(body.get("due_at"))
        self.urgent = body.get("urgent") is True
        base = link_base.rstrip("/")
        referral_id = _code(body.get("referral_id"))
        episode_id = _code(body.get("episode_id"))
        if referral_id:
            self.link = f"{base}/referrals/{quote(referral_id, safe='')}"
        elif episode_id:
            self.link = f"{base}/episodes/{quote(episode_id, safe='')}"
        else:
            self.link = base

    def referral_summary(self) -> str:
        parts = [self.step or "a referral"]
        if self.priority:
            parts.append(f"priority {self.priority}")
        if self.due:
            parts.append(f"due {self.due}")
        return ", ".join(parts)


def _code(value: object) -> str | None:
    return value if isinstance(value, str) and _CODE.match(value) else None


def _due(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    when = when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    return when.strftime("%Y-%m-%d %H:%M UTC")


def _for_team(f: _Facts) -> str:
    return f" for {f.team}" if f.team else ""


def _created(f: _Facts) -> tuple[str, str]:
    priority = f"{f.priority} " if f.priority else ""
    return (
        f"New {priority}referral{_for_team(f)}: {f.step or 'referral'}",
        f"New referral for your team: {f.referral_summary()}.",
    )


def _escalated(f: _Facts) -> tuple[str, str]:
    return (
        f"Escalated referral{_for_team(f)}: {f.step or 'referral'}",
        f"A referral needs attention (escalated): {f.referral_summary()}.",
    )


def _status_changed(f: _Facts) -> tuple[str, str]:
    status = f.status or "updated"
    return (
        f"Referral {status}: {f.step or 'referral'}",
        f"A referral's status changed: {f.step or 'a referral'} is now {status}.",
    )


def _care_plan(f: _Facts) -> tuple[str, str]:
    return "Care plan updated", "A care plan was updated."


def _pathway(f: _Facts) -> tuple[str, str]:
    urgent = " (urgent)" if f.urgent else ""
    return f"Pathway status updated{urgent}", f"A care pathway's status was updated{urgent}."


_TEMPLATES: dict[str, Callable[[_Facts], tuple[str, str]]] = {
    REFERRAL_CREATED: _created,
    REFERRAL_ESCALATED: _escalated,
    REFERRAL_STATUS_CHANGED: _status_changed,
    CARE_PLAN_UPDATED: _care_plan,
    PATHWAY_STATUS: _pathway,
}


def render_email(event_type: str, body: Mapping[str, Any], link_base: str) -> RenderedEmail:
    """Subject and plain-text body for one event; unknown types get a generic message."""
    facts = _Facts(body, link_base)
    template = _TEMPLATES.get(event_type)
    if template is None:
        kind = _code(event_type) or "event"
        subject, summary = f"Update: {kind}", "There is an update in Carepath."
    else:
        subject, summary = template(facts)
    text = f"{summary}\n\nOpen it in Carepath: {facts.link}\n\n{FOOTER}\n"
    return RenderedEmail(f"{SUBJECT_PREFIX} {subject}", text)
