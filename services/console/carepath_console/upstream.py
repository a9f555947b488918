"""Calls to the referrals API on behalf of the signed-in user (their bearer token)."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
from fastapi.responses import JSONResponse

from carepath_runtime.problems import ProblemJSONResponse, problem_body


class Upstream:
    def __init__(self, client: httpx.AsyncClient, referrals_url: str) -> None:
        self.client = client
        self.referrals = referrals_url

    async def call(self, method: str, path: str, token: str, *, params: Any = None,
                   body: bytes | None = None,
                   headers: dict[str, str] | None = None) -> httpx.Response:
        h = {"Authorization": f"Bearer {token}", **(headers or {})}
        if body is not None:
            h["Content-Type"] = "application/json"
        return await self.client.request(method, f"{self.referrals}{path}", params=params,
                                         content=body, headers=h)


def as_problem(resp: httpx.Response, nothing_here: bool = False) -> JSONResponse:
    """An upstream refusal as an RFC 9457 problem with the fields it named.

    ``nothing_here``: a 403 or 404 both become the same 404 (the user sees "nothing here"
    whether the thing does not exist or is not theirs).
    """
    status = resp.status_code
    try:
        data = orjson.loads(resp.content) if resp.content else {}
    except orjson.JSONDecodeError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    if nothing_here and status in (403, 404):
        return ProblemJSONResponse(problem_body(404, "nothing here"), status_code=404)
    detail = data.get("detail") or data.get("error") or resp.reason_phrase
    errors = data.get("errors") if isinstance(data.get("errors"), list) else None
    return ProblemJSONResponse(problem_body(status, str(detail), errors), status_code=status)
