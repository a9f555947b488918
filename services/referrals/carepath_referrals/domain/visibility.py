"""Who reads which episode, and what of it (pure rules on the plan).

* ``coordinator`` and ``admin`` read every episode in full.
* A ``team_member`` reads an episode only while their team holds or held a referral on it
  (assigned now, or named in its routing history: declined by or rerouted from or to the
  team). Otherwise the episode does not exist for them: the same 404 as an unknown one.
* In the plan a team member reads, the referrals, recommendations and outcomes of *other*
  teams are redacted (:func:`redact_plan_view`): the team sees that the step exists, who
  holds it, its status and dates, but not its rationale, decline or cancel reason, outcome
  (PHQ-9/GAD-7 and every other score), claimant or routing history, nor a withdrawal's
  reason. Their own referrals (held now or before) they read in full.

Single referrals (``GET /referrals/{id}``, ``/fhir/ServiceRequest/{id}``, ``/fhir/Task/{id}``)
keep the stricter rule of :func:`carepath_referrals.domain.can_view`: a team member reads
those assigned to their team.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from carepath_referrals.domain.actors import Actor
from carepath_referrals.domain.referral import Referral, referral_id_for

FULL_READERS = frozenset({"coordinator", "admin"})
# What a team sees of another team's referral on an episode they share.
SHARED_REFERRAL_FIELDS = (
    "referral_id", "episode_id", "recommendation_id", "step", "team", "queue", "priority",
    "status", "business_status", "due_at", "created_at", "updated_at", "pathway_version",
    "scheduled_for", "started_at", "completed_at", "escalated_at", "revision",
)
SHARED_RECOMMENDATION_FIELDS = ("recommendation_id", "step", "team", "priority")


def holds_or_held(team: str, referral: Referral) -> bool:
    if referral.team.value == team:
        return True
    return any(change.from_team.value == team or change.to_team.value == team
               for change in referral.routing_history)


def may_read_episode(actor: Actor, referrals: Iterable[Referral]) -> bool:
    if actor.role in FULL_READERS:
        return True
    return any(holds_or_held(actor.team.value, r) for r in referrals)


def _theirs(team: str, view: Mapping[str, Any]) -> bool:
    if view.get("team") == team:
        return True
    return any(c.get("from_team") == team or c.get("to_team") == team
               for c in view.get("routing_history") or ())


def redact_referral_view(view: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: view[k] for k in SHARED_REFERRAL_FIELDS if k in view}
    out["redacted"] = True
    return out


def redact_plan_view(view: Mapping[str, Any], actor: Actor) -> dict[str, Any]:
    """The plan view (``care_plan_view``) as ``actor`` may read it (see the module docs)."""
    if actor.role in FULL_READERS:
        return dict(view)
    team = actor.team.value
    referrals: dict[str, Any] = {}
    own_recommendations: set[str] = set()
    for rid, ref in (view.get("referrals") or {}).items():
        if _theirs(team, ref):
            referrals[rid] = ref
            own_recommendations.add(str(ref.get("recommendation_id")))
        else:
            referrals[rid] = redact_referral_view(ref)
    recommendations: dict[str, Any] = {}
    for rec_id, rec in (view.get("recommendations") or {}).items():
        referral = referrals.get(referral_id_for(rec_id)) if rec_id else None
        mine = rec_id in own_recommendations or (referral is None and rec.get("team") == team)
        recommendations[rec_id] = dict(rec) if mine else {
            k: rec[k] for k in SHARED_RECOMMENDATION_FIELDS if k in rec}
    withdrawn = {
        rec_id: {k: w[k] for k in ("recommendation_id", "step", "withdrawn_at") if k in w}
        for rec_id, w in (view.get("withdrawn") or {}).items()
    }
    outcomes = [o for o in view.get("outcomes") or ()
                if str(o.get("recommendation_id")) in own_recommendations]
    return {**view, "referrals": referrals, "recommendations": recommendations,
            "withdrawn": withdrawn, "outcomes": outcomes}
