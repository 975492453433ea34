"""The store process: the only ClickHouse client (sink thread + query API)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from core.http import install_problem_handlers
from core.openapi import install_openapi
from core.probes import probe_router
from core.settings import Settings
from services.store.candidates import router as candidates_router
from services.store.changes import router as changes_router
from services.store.clickhouse_http import router as clickhouse_router
from services.store.coverage import router as coverage_router
from services.store.dashboard import install_dashboard
from services.store.log.routes import router as log_router
from services.store.routes import router
from services.store.state import StoreState


def create_app(settings: Settings, store: StoreState | None = None) -> FastAPI:
    st = store or StoreState(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(st.start)
        try:
            yield
        finally:
            await asyncio.to_thread(st.stop)

    app = FastAPI(
        title="Truce query API",
        version="1",
        description="Weekly compliance and access metrics, reports, the weekly report, "
        "reconciliation and the monitors' dashboard (/dashboard).",
        lifespan=lifespan,
        docs_url=None,  # served from the vendored assets (core/openapi.py)
        redoc_url=None,
    )
    app.state.store = st
    install_problem_handlers(app)
    install_openapi(app)
    app.include_router(router)
    app.include_router(coverage_router)
    app.include_router(candidates_router)
    app.include_router(changes_router)
    app.include_router(log_router)
    app.include_router(clickhouse_router)
    app.include_router(probe_router(lambda request: request.app.state.store))
    install_dashboard(app, settings)
    return app
