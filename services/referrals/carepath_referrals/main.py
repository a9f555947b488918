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
    runtime = make_runtime(SERVICE, settings)
    store = PlanStore(runtime, on_changes=service_levels.observe_changes)
    routing = handlers.routing_table(runtime)
    service = ReferralService(runtime.topics, store, routing, runtime.broker)
    handlers.register(runtime, service)
    tokens = ReferralCallers(authenticator_from_settings(runtime.settings))
    background: list[asyncio.Task[None]] = []

    async def started(runtime: Runtime) -> None:
        background.append(asyncio.create_task(
            handlers.deadline_loop(runtime, service), name="referrals-deadlines"))
        background.append(asyncio.create_task(
            service_levels.refresh_loop(store, runtime.settings.carepath_lag_sample_seconds),
            name="referrals-service-levels"))

    async def stopping(_: Runtime) -> None:
        for task in background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        background.clear()

    app = make_app(runtime, on_started=started, on_stopping=stopping)
    register_routes(app, service, tokens)
    register_fhir_routes(app, runtime, store, tokens)
    return app


def main() -> None:
    settings = get_settings()
    serve(create_app(settings), SERVICE, settings.referrals_port, settings)


if __name__ == "__main__":
    main()
