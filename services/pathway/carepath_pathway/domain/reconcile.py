"""Stable recommendation ids and withdrawals across re-evaluations (pure).

``reconcile(episode_id, previous_active, result, evaluation_seq)``:

* a step recommended before and still recommended keeps its id — unless it was just carried
  out (``completed_steps``) and is recommended again (a second block, a repeated block): then
  it is a new referral with a new id;
* a newly recommended step gets ``uuid5(RECOMMENDATION_NAMESPACE,
  f"{episode_id}:{step}:{evaluation_seq}")`` — deterministic, so a replayed evaluation
  reproduces the same ids;
* a step active before and no longer recommended is either
  - **completed**: it was carried out (in ``completed_steps`` given here, or in what the
    evaluated episode shows as done: its completed_steps and records, e.g. imaging_done,
    medial_branch_blocks, rfa_history). Decision: completed steps are *not* withdrawn — they
    are silently dropped from the active set (withdrawing would cancel a referral that was
    fulfilled);
  - **withdrawn** otherwise, with a reason: ``"suspended: red flags present; elective steps
    are withheld until the red flags are cleared"`` when the new result is urgent, else
    ``"superseded: no longer indicated after re-evaluation"``.

Returns the result with ``recommendation_id`` set and ``withdrawn`` filled (step order), and
the new active map ``{step: recommendation_id}``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Final

from carepath_contracts.pathway_result import PathwayResult, Recommendation, WithdrawnRecommendation
from carepath_contracts.steps import STEP_ORDER, STEPS

__all__ = ["RECOMMENDATION_NAMESPACE", "recommendation_id", "reconcile"]

RECOMMENDATION_NAMESPACE: Final = uuid.UUID("6f0d1c1e-2b7a-5c53-9a53-6361726570a7")

SUPERSEDED: Final = "superseded: no longer indicated after re-evaluation"
SUSPENDED: Final = (
    "suspended: red flags present; elective steps are withheld until the red flags are cleared"
)
_KNOWN_STEPS = frozenset(STEPS)


def recommendation_id(episode_id: str, step: str, evaluation_seq: int) -> str:
    return str(uuid.uuid5(RECOMMENDATION_NAMESPACE, f"{episode_id}:{step}:{evaluation_seq}"))


def reconcile(
    episode_id: str,
    previous_active: Mapping[str, str],
    result: PathwayResult,
    evaluation_seq: int,
    *,
    completed_steps: Iterable[str] = (),
) -> tuple[PathwayResult, dict[str, str]]:
    just_done = frozenset(completed_steps)
    done = just_done | result.steps_done
    active: dict[str, str] = {}
    recs: list[Recommendation] = []
    for r in result.recommendations:
        rid = previous_active.get(r.step)
        if rid is None or r.step in just_done:
            rid = recommendation_id(episode_id, r.step, evaluation_seq)
        active[r.step] = rid
        recs.append(r.model_copy(update={"recommendation_id": rid}))
    reason = SUSPENDED if result.urgent else SUPERSEDED
    withdrawn = [
        WithdrawnRecommendation.model_construct(
            recommendation_id=rid, step=step, reason=reason
        )
        for step, rid in sorted(
            previous_active.items(), key=lambda kv: STEP_ORDER.get(kv[0], len(STEP_ORDER))
        )
        if step not in active and step not in done and step in _KNOWN_STEPS
    ]
    out = result.model_copy(update={"recommendations": recs, "withdrawn": withdrawn})
    return out, active

