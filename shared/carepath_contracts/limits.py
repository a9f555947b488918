"""The contract's bounds on what callers send (pure): every list and every string is bounded.

Checked at the edge, on the decoded JSON, before the models validate it, so an oversized
input costs one walk and never an event that Kafka would refuse. docs/episode-contract.md
lists every bound; in short:

* ``episode_id`` (anywhere): :data:`carepath_contracts.episode_id.EPISODE_ID_RULE`;
* free text (notes, reasons, any string not named below): at most 2,000 characters;
* ``levels`` items: at most 32 characters;
* lists: the per-field bound of :data:`LIST_LIMITS`, else 100 items;
* nesting: at most 8 levels of objects and lists.

The event schemas stay as released (readers accept what older writers sent); the bounds hold
for everything written from now on because every writer's input passes here.
"""

from __future__ import annotations

from typing import Any

from carepath_contracts.episode_id import EPISODE_ID_RULE, is_episode_id

MAX_TEXT = 2000
MAX_LIST = 100
MAX_DEPTH = 8
LIST_LIMITS: dict[str, int] = {
    "facet_injections": 50,
    "medial_branch_blocks": 50,
    "rfa_history": 50,
    "levels": 10,
    "imaging_done": 10,
    "imaging_findings": 20,
    "findings": 20,
    "red_flags": 10,
    "completed_steps": 100,
}
TEXT_LIMITS: dict[str, int] = {"levels": 32}
# Stop walking once this many problems are known (the answer shows 20 and a count).
_ENOUGH = 50

Error = dict[str, str]


def bound_errors(data: Any) -> list[Error]:
    """Every bound ``data`` breaks, as ``{"field", "reason"}`` (never the value)."""
    errors: list[Error] = []
    _walk(data, "", None, 0, errors)
    return errors


def _walk(value: Any, path: str, name: str | None, depth: int, errors: list[Error]) -> None:
    if len(errors) >= _ENOUGH:
        return
    where = path or "(root)"
    if depth > MAX_DEPTH:
        errors.append({"field": where, "reason": f"nested deeper than {MAX_DEPTH} levels"})
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if len(key) > 100:
                errors.append({"field": where, "reason": "a key is longer than 100 characters"})
                continue
            child = f"{path}.{key}" if path else key
            if key == "episode_id" and item is not None and not is_episode_id(item):
                errors.append({"field": child, "reason": f"must be {EPISODE_ID_RULE}"})
                continue
            _walk(item, child, key, depth + 1, errors)
    elif isinstance(value, list):
        limit = LIST_LIMITS.get(name or "", MAX_LIST)
        if len(value) > limit:
            errors.append({"field": where, "reason": f"at most {limit} items"})
            return
        for i, item in enumerate(value):
            _walk(item, f"{path}[{i}]", name, depth + 1, errors)
    elif isinstance(value, str):
        limit = TEXT_LIMITS.get(name or "", MAX_TEXT)
        if len(value) > limit:
            errors.append({"field": where, "reason": f"at most {limit} characters"})
