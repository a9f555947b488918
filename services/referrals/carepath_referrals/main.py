"""Entry point of the referrals service."""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import FastAPI

from carepath_referrals import handlers, service_levels
from carepath_referrals.api import register_routes
from carepath_referrals.auth import ReferralCallers
from carepath_referrals.fhir_routes import register_fhir_routes
from carepath_referrals.plan_store import PlanStore
from carepath_referrals.service import ReferralService
from carepath_runtime.auth import authenticator_from_settings
from carepath_runtime.service import Runtime, make_app, make_runtime, serve
from carepath_runtime.settings import Settings, get_settings

SERVICE = "referrals"


def create_app(settings: Settings | None = None) -> FastAPI:
    rt = make_runtime(SERVICE, settings)
    store = PlanStore(rt, on_changes=service_levels.observe_changes)
    routing = handlers.routing_table(rt)
    service = ReferralService(rt.topics, store, routing, rt.broker)
    handlers.register(rt, service)
    tokens = ReferralCallers(authenticator_from_settings(rt.settings))

    async def started(rt: Runtime) -> None:
        rt.extras["deadlines"] = asyncio.create_task(handlers.deadline_loop(rt, service))
        rt.extras["service_levels"] = asyncio.create_task(
            service_levels.refresh_loop(store, rt.settings.carepath_lag_sample_seconds))

    async def stopping(rt: Runtime) -> None:
        for name in ("deadlines", "service_levels"):
            task = rt.extras.get(name)
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app = make_app(rt, on_started=started, on_stopping=stopping)
    register_routes(app, service, tokens)
    register_fhir_routes(app, rt, store, tokens)
    return app


def main() -> None:
    settings = get_settings()
    serve(create_app(settings), SERVICE, settings.referrals_port, settings)


if __name__ == "__main__":
    main()
