"""Bearer tokens to referral actors (a team and a role).

Token handling is shared (:mod:`carepath_shared.auth`); this module only turns the caller
into the referral domain's :class:`Actor`. A principal whose role or team the referral
domain does not know (a dashboard token, say) is authenticated but may not use this API.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import HTTPException, Request
from pydantic import ValidationError

from carepath_referrals.domain import Actor
from carepath_shared.auth import TokenRegistry as PrincipalRegistry


class TokenRegistry:
    def __init__(self, principals: PrincipalRegistry) -> None:
        self._principals = principals

    @classmethod
    def from_file(cls, path: str | Path | None = None) -> TokenRegistry:
        return cls(PrincipalRegistry.from_file(path))

    def actor_for(self, request: Request) -> Actor:
        principal = self._principals.principal_for(request)  # 401 without a known token
        try:
            return Actor(subject=principal.subject, team=principal.team, role=principal.role)
        except ValidationError as exc:
            raise HTTPException(
                403, f"role {principal.role!r} of team {principal.team!r} may not use referrals"
            ) from exc
