"""The caller of the referrals API as the referral domain's :class:`Actor`.

Authentication is shared (:class:`carepath_runtime.auth.Authenticator`: the development
token file and OIDC JWTs); this module only turns the principal into an ``Actor``. A
principal whose role or team the referral domain does not know (``dashboard``,
``integration``) is authenticated but may not use this API (403).
"""

from __future__ import annotations

from fastapi import Request
from pydantic import ValidationError

from carepath_referrals.domain import Actor
from carepath_runtime.auth import Authenticator
from carepath_runtime.http_errors import ProblemError


class ReferralCallers:
    def __init__(self, auth: Authenticator) -> None:
        self._auth = auth

    async def actor_for(self, request: Request) -> Actor:
        principal = await self._auth.principal_for(request)  # 401 without a valid token
        try:
            return Actor(subject=principal.subject, team=principal.team, role=principal.role)
        except ValidationError as exc:
            raise ProblemError(
                403, f"the role {principal.role} may not use the referrals API") from exc
