"""Entry point of the pathway service."""

from __future__ import annotations

import sys

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from carepath_pathway import handlers
from carepath_pathway.episode_store import episode_store
from carepath_runtime.auth import authenticator_from_settings
from carepath_runtime.http_errors import ProblemError
from carepath_runtime.http_params import episode_id_path
from carepath_runtime.service import make_app, make_runtime, serve
from carepath_runtime.settings import Settings, get_settings

SERVICE = "pathway"
# The pathway knows no care relationships: its state is for coordinators and admins.
STATE_READERS = frozenset({"coordinator", "admin"})


def create_app(settings: Settings | None = None) -> FastAPI:
    runtime = make_runtime(SERVICE, settings)
    store = episode_store(runtime)
    handlers.register(runtime, store)
    app = make_app(runtime)
    auth = authenticator_from_settings(runtime.settings)

    @app.get("/episodes/{episode_id}/state")
    async def episode_state(request: Request, episode_id: str = episode_id_path()
                            ) -> JSONResponse:
        await auth.require(request, STATE_READERS)
        stored = await store.get(episode_id)
        state = stored.data
        if state is None:
            raise ProblemError(404, "no such episode")
        return JSONResponse({"version": stored.version, "active": state.active,
                             "evaluation_seq": state.evaluation_seq,
                             "profile": state.profile})

    return app


def main() -> None:
    """``carepath-pathway``: serve; ``carepath-pathway reevaluate --profile P``: re-evaluate
    every stored episode under profile P (:mod:`carepath_pathway.reevaluation`)."""
    if sys.argv[1:2] == ["reevaluate"]:
        from carepath_pathway import reevaluation

        sys.exit(reevaluation.main(sys.argv[2:]))
    settings = get_settings()
    serve(create_app(settings), SERVICE, settings.pathway_port, settings)


if __name__ == "__main__":
    main()
