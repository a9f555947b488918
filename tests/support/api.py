"""Small clients for the services' HTTP APIs used by tests."""

from __future__ import annotations

from typing import Any

import httpx

TOKENS = {
    "coordinator": "dev-coordinator-token",
    "radiology": "dev-radiology-token",
    "interventional_pain": "dev-interventional-token",
    "physical_therapy": "dev-physio-token",
    "psychology": "dev-psychology-token",
    "surgery": "dev-surgery-token",
    "neuromodulation": "dev-neuromodulation-token",
    "ehr": "dev-ehr-token",
    "dashboard": "dev-dashboard-token",
    "admin": "dev-admin-token",
}
INTAKE = {"Authorization": "Bearer dev-ehr-token"}  # the integration client


def auth(team: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[team]}"}


class ReferralsApi:
    def __init__(self, base_url: str) -> None:
        self.base = base_url

    def plan(self, episode_id: str) -> dict[str, Any]:
        r = httpx.get(f"{self.base}/episodes/{episode_id}/careplan", headers=auth("coordinator"))
        r.raise_for_status()
        out: dict[str, Any] = r.json()
        return out

    def plan_or_none(self, episode_id: str) -> dict[str, Any] | None:
        r = httpx.get(f"{self.base}/episodes/{episode_id}/careplan", headers=auth("coordinator"))
        return None if r.status_code == 404 else r.json()

    def referral_for(self, episode_id: str, step: str) -> dict[str, Any] | None:
        plan = self.plan_or_none(episode_id)
        if plan is None:
            return None
        found = [r for r in plan["referrals"].values() if r["step"] == step]
        return found[0] if found else None

    def act(self, team: str, referral_id: str, action: str, **body: Any) -> httpx.Response:
        return httpx.post(f"{self.base}/referrals/{referral_id}/{action}", json=body,
                          headers=auth(team), timeout=15)


def post_accepted(url: str, body: dict[str, Any], headers: dict[str, str],
                  timeout_s: float = 30.0) -> httpx.Response:
    """POST as a hospital system does: one Idempotency-Key, retried while intake answers 503
    or 429 (after its Retry-After), until it answers anything else."""
    import time
    import uuid

    key = uuid.uuid4().hex
    deadline = time.monotonic() + timeout_s
    while True:
        answer = httpx.post(url, json=body, headers={**headers, "Idempotency-Key": key},
                            timeout=10)
        if answer.status_code not in (429, 503) or time.monotonic() > deadline:
            return answer
        retry_after = answer.headers.get("retry-after", "")
        time.sleep(min(float(retry_after), 2.0) if retry_after.isdigit() else 0.5)
