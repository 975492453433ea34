"""The ingest API application: partners' reports in, durably onto the reports topic."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from core.http import install_problem_handlers, url_origin
from core.openapi import install_openapi
from core.probes import probe_router
from core.settings import Settings
from services.ingest.elsewhere import install_read_pointer
from services.ingest.imports import router as import_router
from services.ingest.openrosa import router as openrosa_router
from services.ingest.routes import router
from services.ingest.state import IngestState


def create_app(settings: Settings) -> FastAPI:
    ingest = IngestState(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ingest.start()
        gc.freeze()  # the start-up heap is never garbage: full collections skip it from now on
        try:
            yield
        finally:
            ingest.stop()

    app = FastAPI(
        title="Truce ingest API",
        version="1",
        description="Field partners submit violation, delivery and access-request reports.",
        lifespan=lifespan,
        docs_url=None,  # served from the vendored assets (core/openapi.py)
        redoc_url=None,
    )
    app.state.ingest = ingest
    # the dashboard (served by the query service, another origin) posts the task force's
    # incident links here with the key in Authorization: only that origin, only POST
    app.add_middleware(
        CORSMiddleware,
        allow_origins=[url_origin(settings.query_url)],
        allow_methods=["POST"],
        allow_headers=["Authorization", "Content-Type"],
        max_age=600,
    )
    install_problem_handlers(app)
    install_read_pointer(app, settings)
    install_openapi(app)
    app.include_router(router)
    app.include_router(import_router)
    app.include_router(openrosa_router)  # CONTRACT 10: ODK Collect, KoboCollect, Enketo
    app.include_router(probe_router(lambda request: request.app.state.ingest))
    return app
