"""The console's HTTP surface: sign-in, the JSON the screens need, the live stream, the app.

Sessions: a random id in an HttpOnly, SameSite=Strict cookie (``__Host-`` prefixed and Secure
when the console is served over https); the session itself lives in Redis. Every call to
referrals or notifications carries the signed-in user's own bearer token, so the APIs decide
what the user may see and do; the console only narrows (queues, paging) what they returned.

CSRF: a state-changing request must come from the console's own origin (``Origin``, else
``Sec-Fetch-Site: same-origin``) and, once signed in, carry the session's CSRF token in
``X-CSRF-Token``.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis.asyncio as aioredis
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from starlette.responses import StreamingResponse

from carepath_console import live
from carepath_console.oidc import OidcClient, OidcError, pkce_pair
from carepath_console.sessions import Session, SessionStore
from carepath_console.settings import ConsoleSettings
from carepath_console.upstream import Upstream, as_problem
from carepath_console.worklist import WorklistQuery, select
from carepath_runtime.auth import DEFAULT_TOKENS_FILE
from carepath_runtime.http import error_list
from carepath_runtime.log import get_logger
from carepath_runtime.problems import problem

log = get_logger("console")
WEB = Path(__file__).resolve().parent / "web"
ACTIONS = frozenset({"claim", "accept", "decline", "schedule", "start", "complete",
                     "cancel", "reroute"})
SPA_PATHS = ("/", "/signin", "/worklist", "/coordinator", "/dashboard")
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; script-src 'self'; style-src 'self'; "
                                "img-src 'self' data:; connect-src 'self'; "
                                "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def dev_identities(path: str | None) -> list[dict[str, str]]:
    """The development identities a user may sign in as (integration tokens excluded)."""
    raw = json.loads(Path(path or DEFAULT_TOKENS_FILE).read_text(encoding="utf-8"))
    out = []
    for token, who in raw.items():
        if who.get("role") in ("team_member", "coordinator", "admin", "dashboard"):
            out.append({"token": token, "subject": who["subject"], "team": who["team"],
                        "role": who["role"]})
    return out


def create_app(settings: ConsoleSettings) -> FastAPI:
    redis = aioredis.Redis.from_url(settings.redis_url, decode_responses=False)
    sessions = SessionStore(redis, settings.carepath_namespace, settings.console_session_ttl_s)
    relays = live.Relays()
    identities = dev_identities(settings.carepath_api_tokens_file) if settings.dev_signin else []
    oidc = (OidcClient(settings.console_oidc_issuer, settings.console_oidc_client_id,
                       settings.console_oidc_client_secret, settings.console_oidc_scopes)
            if settings.console_oidc_issuer else None)
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await redis.ping()
        timeout = httpx.Timeout(settings.console_upstream_timeout_s)
        state["http"] = httpx.AsyncClient(timeout=timeout)
        state["stream"] = httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=None))
        state["up"] = Upstream(state["http"], settings.referrals_url)
        log.info("service_started", namespace=settings.carepath_namespace,
                 dev_signin=settings.dev_signin, oidc=oidc is not None)
        try:
            yield
        finally:
            log.info("service_stopping")
            relays.stopping.set()
            await relays.drop_all()
            await state["stream"].aclose()
            await state["http"].aclose()
            await redis.aclose()
            log.info("service_stopped")

    app = FastAPI(title="carepath-console", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.mount("/static", StaticFiles(directory=WEB), name="static")

    def up() -> Upstream:
        return state["up"]  # type: ignore[no-any-return]

    # -- security plumbing ---------------------------------------------------------------

    def same_origin(request: Request) -> bool:
        origin = request.headers.get("origin")
        if origin is not None:
            return origin.rstrip("/") == settings.origin
        return request.headers.get("sec-fetch-site") == "same-origin"

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Response:
        if request.method in UNSAFE and not same_origin(request):
            resp: Response = problem(403, "cross-origin request refused", slug="csrf")
        else:
            resp = await call_next(request)
        for k, v in SECURITY_HEADERS.items():
            resp.headers.setdefault(k, v)
        if request.url.path.startswith(("/api/", "/auth/")):
            resp.headers.setdefault("Cache-Control", "no-store")
        return resp

    def set_cookie(resp: Response, sid: str, max_age: int) -> None:
        resp.set_cookie(settings.cookie_name, sid, max_age=max_age, path="/", httponly=True,
                        samesite="strict", secure=settings.cookie_secure)

    async def current(request: Request) -> Session | None:
        return await sessions.get(request.cookies.get(settings.cookie_name))

    async def signed_in(request: Request, *, csrf: bool = False) -> Session | Response:
        session = await current(request)
        if session is None:
            return problem(401, "sign in first", slug="unauthenticated")
        if csrf:
            sent = request.headers.get("x-csrf-token", "")
            if not secrets.compare_digest(sent.encode(), session.csrf.encode()):
                return problem(403, "missing or wrong CSRF token", slug="csrf")
        return session

    # -- health and the app --------------------------------------------------------------

    @app.get("/health")
    async def health() -> JSONResponse:
        """Redis reachable (the sessions). The upstream APIs are not the console's health:
        without them it still serves sign-in and says what is unavailable."""
        try:
            redis_ok = bool(await redis.ping())
        except Exception:
            redis_ok = False
        return JSONResponse({"service": "console", "status": "ok" if redis_ok else "degraded",
                             "redis": redis_ok}, status_code=200 if redis_ok else 503)

    def index() -> FileResponse:
        return FileResponse(WEB / "index.html", media_type="text/html",
                            headers={"Cache-Control": "no-cache"})

    for path in SPA_PATHS:
        app.get(path, include_in_schema=False)(index)

    @app.get("/episodes/{episode_id}", include_in_schema=False)
    async def episode_page(episode_id: str) -> FileResponse:
        return index()

    # -- sign-in -------------------------------------------------------------------------

    @app.get("/auth/options")
    async def auth_options() -> JSONResponse:
        return JSONResponse({
            "dev": [{k: i[k] for k in ("subject", "team", "role")} for i in identities],
            "oidc": oidc is not None,
        })

    @app.post("/auth/dev")
    async def dev_signin(request: Request) -> Response:
        if not settings.dev_signin:
            return problem(404, "development sign-in is off")
        try:
            body = orjson.loads(await request.body() or b"{}")
        except orjson.JSONDecodeError:
            return problem(400, "body is not valid JSON")
        subject = body.get("subject") if isinstance(body, dict) else None
        chosen = next((i for i in identities if i["subject"] == subject), None)
        if chosen is None:
            return problem(422, "choose one of the development identities",
                           errors=[{"field": "subject", "reason": "unknown identity"}])
        old = request.cookies.get(settings.cookie_name)
        await sessions.delete(old)
        sid, session = await sessions.create(subject=chosen["subject"], team=chosen["team"],
                                             role=chosen["role"], token=chosen["token"],
                                             method="dev")
        log.info("signed_in", method="dev", role=session.role, team=session.team)
        resp = JSONResponse(session.public())
        set_cookie(resp, sid, settings.console_session_ttl_s)
        return resp

    def redirect_uri() -> str:
        return f"{settings.origin}/auth/callback"

    @app.get("/auth/login")
    async def oidc_login() -> Response:
        if oidc is None:
            return problem(404, "no OpenID Connect issuer configured")
        verifier, challenge = pkce_pair()
        st, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        try:
            url = await oidc.authorize_url(redirect_uri(), st, nonce, challenge)
        except (OidcError, httpx.HTTPError) as exc:
            log.warning("oidc_failed", stage="discovery", reason=str(exc)[:200])
            return problem(503, "the sign-in service is unavailable")
        await sessions.put_login(st, {"verifier": verifier, "nonce": nonce})
        return RedirectResponse(url, status_code=302)

    @app.get("/auth/callback")
    async def oidc_callback(request: Request) -> Response:
        if oidc is None:
            return problem(404, "no OpenID Connect issuer configured")
        code, st = request.query_params.get("code"), request.query_params.get("state")
        if not code or not st:
            return problem(400, "sign-in answer lacks code or state")
        login = await sessions.pop_login(st)
        if login is None:
            return problem(400, "unknown or expired sign-in attempt")
        try:
            tokens = await oidc.exchange(code, redirect_uri(), login["verifier"])
            claims = await oidc.validate_id_token(tokens["id_token"], login["nonce"])
        except (OidcError, httpx.HTTPError) as exc:
            log.warning("oidc_failed", stage="callback", reason=str(exc)[:200])
            return problem(401, f"sign-in failed: {exc}")
        subject = claims.get(settings.console_oidc_subject_claim)
        team = claims.get(settings.console_oidc_team_claim)
        role = claims.get(settings.console_oidc_role_claim)
        if not all(isinstance(v, str) and v for v in (subject, team, role)):
            return problem(403, "the identity lacks the team or role claim")
        ttl = int(tokens.get("expires_in") or settings.console_session_ttl_s)
        sid, session = await sessions.create(subject=str(subject), team=str(team),
                                             role=str(role), token=tokens["access_token"],
                                             method="oidc", ttl_s=ttl)
        log.info("signed_in", method="oidc", role=session.role, team=session.team)
        resp = RedirectResponse("/", status_code=303)
        set_cookie(resp, sid, min(ttl, settings.console_session_ttl_s))
        return resp

    @app.post("/auth/signout")
    async def signout(request: Request) -> Response:
        got = await signed_in(request, csrf=True)
        if isinstance(got, Response):
            return got
        await sessions.delete(request.cookies.get(settings.cookie_name))
        resp = JSONResponse({"signed_out": True})
        resp.delete_cookie(settings.cookie_name, path="/", httponly=True, samesite="strict",
                           secure=settings.cookie_secure)
        return resp

    @app.get("/api/me")
    async def me(request: Request) -> Response:
        got = await signed_in(request)
        return got if isinstance(got, Response) else JSONResponse(got.public())

    # -- worklists, referrals, episodes -----------------------------------------------------

    @app.get("/api/worklist")
    async def worklist(request: Request) -> Response:
        got = await signed_in(request)
        if isinstance(got, Response):
            return got
        try:
            q = WorklistQuery.model_validate(dict(request.query_params))
        except ValidationError as exc:
            return problem(422, "invalid worklist query", errors=error_list(exc))
        r = await up().call("GET", "/inbox", got.token)
        if r.status_code != 200:
            return as_problem(r)
        refs = orjson.loads(r.content).get("referrals", [])
        return JSONResponse(select(refs, q, got.subject))

    @app.get("/api/referrals/{referral_id}")
    async def referral(referral_id: str, request: Request) -> Response:
        got = await signed_in(request)
        if isinstance(got, Response):
            return got
        r = await up().call("GET", f"/referrals/{referral_id}", got.token)
        return Response(r.content, media_type="application/json") if r.status_code == 200 \
            else as_problem(r, nothing_here=True)

    @app.post("/api/referrals/{referral_id}/{action}")
    async def act(referral_id: str, action: str, request: Request) -> Response:
        got = await signed_in(request, csrf=True)
        if isinstance(got, Response):
            return got
        if action not in ACTIONS:
            return problem(404, "unknown action")
        body = await request.body()
        if len(body) > 64_000:
            return problem(413, "action body too large")
        extra = {}
        if key := request.headers.get("idempotency-key"):
            extra["Idempotency-Key"] = key[:200]
        r = await up().call("POST", f"/referrals/{referral_id}/{action}", got.token,
                            body=body or b"{}", headers=extra)
        log.info("referral_action", action=action, status=r.status_code, role=got.role)
        if r.status_code == 200:
            return Response(r.content, media_type="application/json")
        return as_problem(r)

    @app.get("/api/episodes/{episode_id}")
    async def episode(episode_id: str, request: Request) -> Response:
        got = await signed_in(request)
        if isinstance(got, Response):
            return got
        if not 0 < len(episode_id) <= 200:
            return problem(404, "nothing here")
        plan_r, refs_r = await asyncio.gather(
            up().call("GET", f"/episodes/{episode_id}/careplan", got.token),
            up().call("GET", f"/episodes/{episode_id}/referrals", got.token),
        )
        if plan_r.status_code != 200:
            return as_problem(plan_r, nothing_here=True)
        plan = orjson.loads(plan_r.content)
        visible = orjson.loads(refs_r.content).get("referrals", []) \
            if refs_r.status_code == 200 else []
        details = await asyncio.gather(*(
            up().call("GET", f"/referrals/{ref['referral_id']}", got.token) for ref in visible))
        history = []
        for d in details:
            if d.status_code == 200:
                history.extend(orjson.loads(d.content).get("history", []))
        history.sort(key=lambda e: str(e.get("at")))
        previous = await sessions.swap_last_seen(got.subject, episode_id,
                                                 int(plan.get("version", 0)),
                                                 datetime.now(UTC).isoformat())
        return JSONResponse({"plan": plan, "referrals": visible, "history": history,
                             "last_visit": previous})

    # -- live ----------------------------------------------------------------------------

    @app.get("/live")
    async def live_stream(request: Request) -> Response:
        got = await signed_in(request)
        if isinstance(got, Response):
            return got
        last_id = request.query_params.get("last_event_id") or \
            request.headers.get("last-event-id")
        if last_id is not None and len(last_id) > 4000:
            return problem(422, "last_event_id too long",
                           errors=[{"field": "last_event_id", "reason": "too long"}])
        client = state["stream"]
        try:
            if got.role in live.RELAY_ROLES:
                resp = await live.open_upstream(client, settings.notifications_url, got.token,
                                                last_id, None)
                body = live.relay(resp, relays)
            else:
                token = settings.stream_token
                if token is None:
                    return problem(503, "live updates are not configured for teams")
                resp = await live.open_upstream(client, settings.notifications_url, token,
                                                None, None)
                body = live.team_pings(resp, got, relays)
        except live.UpstreamUnavailable as exc:
            log.warning("stream_upstream_unavailable", reason=str(exc))
            return problem(503, "live stream unavailable", headers={"Retry-After": "2"})
        return StreamingResponse(body, media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store",
                                          "X-Accel-Buffering": "no"})

    if settings.test_hooks:
        @app.post("/test/drop-streams")
        async def drop_streams() -> JSONResponse:
            return JSONResponse({"dropped": await relays.drop_all()})

    app.state.settings = settings
    app.state.relays = relays
    return app
