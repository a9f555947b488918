"""Entry point of the intake service."""

from __future__ import annotations

from fastapi import FastAPI

from carepath_intake.api import register_routes
from carepath_intake.availability import install_availability
from carepath_intake.fhir_routes import register_fhir_routes
from carepath_intake.submission import Submissions
from carepath_runtime.auth import authenticator_from_settings
from carepath_runtime.service import make_app, make_runtime, serve
from carepath_runtime.settings import Settings, get_settings

SERVICE = "intake"


def create_app(settings: Settings | None = None) -> FastAPI:
    runtime = make_runtime(SERVICE, settings)
    app = make_app(runtime)
    install_availability(app, runtime.health, runtime.settings)
    submissions = Submissions(runtime, authenticator_from_settings(runtime.settings))
    register_routes(app, runtime, submissions)
    register_fhir_routes(app, runtime, submissions)
    return app


def main() -> None:
    settings = get_settings()
    serve(create_app(settings), SERVICE, settings.intake_port, settings)


if __name__ == "__main__":
    main()
