"""The alerter process: alerts topic → notifications, the CAP feed and silences API."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from core.http import install_problem_handlers
from core.openapi import install_openapi
from core.probes import probe_router
from core.settings import Settings
from services.alerter.routes import router
from services.alerter.state import AlerterState


def create_app(settings: Settings) -> FastAPI:
    # httpx logs every request URL at INFO, and Slack-style webhook URLs are secrets
    logging.getLogger("httpx").setLevel(logging.WARNING)
    st = AlerterState(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await st.start()
        try:
            yield
        finally:
            await st.stop()

    app = FastAPI(
        title="Truce alerter",
        version="1",
        description="Alert notifications (webhook, Slack, email), the CAP 1.2 feed, silences.",
        lifespan=lifespan,
        docs_url=None,  # served from the vendored assets (core/openapi.py)
        redoc_url=None,
    )
    app.state.alerter = st
    install_problem_handlers(app)
    install_openapi(app)
    app.include_router(router)
    app.include_router(probe_router(lambda request: request.app.state.alerter))
    return app
