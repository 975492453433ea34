"""The monitors' dashboard: one static page and its vendored assets, served without a key.

The page holds no data; every number comes from the query API, called by the browser with
the monitor's key (taken from the URL fragment, which browsers never send, or a prompt).
A strict Content-Security-Policy keeps the page to this origin (no CDN, no inline script)
and the ingest API's, where a task-force key posts the incident links it confirms."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Scope

from core.http import url_origin
from core.settings import Settings
from services.store.state import state

STATIC = Path(__file__).resolve().parent / "static"


def security_headers(settings: Settings) -> dict[str, str]:
    return {
        "Content-Security-Policy": (
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"connect-src 'self' {url_origin(settings.ingest_url)}; base-uri 'none'; "
            "form-action 'none'; frame-ancestors 'none'"
        ),
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-cache",
    }


class _Static(StaticFiles):
    """The vendored assets, each with the page's headers: ``dashboard.html`` is reachable
    here too, and must not run without its policy."""

    def __init__(self, headers: dict[str, str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.headers = headers

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(self.headers)
        return response


def install_dashboard(app: FastAPI, settings: Settings) -> None:
    headers = security_headers(settings)
    router = APIRouter(include_in_schema=False)

    @router.get("/dashboard")
    def dashboard() -> FileResponse:
        return FileResponse(STATIC / "dashboard.html", headers=headers)

    @router.get("/dashboard/session")
    def session(request: Request) -> dict[str, str]:
        """What the page adapts to: the key's role (a task-force key gets the incident
        candidates) and where the ingest API takes reports."""
        key = state(request).auth_any(request)
        return {"role": key.role.value, "ingest_url": settings.ingest_url}

    app.include_router(router)
    app.mount("/dashboard/static", _Static(headers, directory=STATIC), name="dashboard-static")
