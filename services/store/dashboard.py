"""The monitors' dashboard: one static page and its vendored assets, served without a key.

The page holds no data; every number comes from the query API, called by the browser with
the monitor's key (taken from the URL fragment, which browsers never send, or a prompt).
A strict Content-Security-Policy keeps the page to this origin: no CDN, no inline script."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Scope

STATIC = Path(__file__).resolve().parent / "static"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


class _Static(StaticFiles):
    """The vendored assets, each with the page's headers: ``dashboard.html`` is reachable
    here too, and must not run without its policy."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(SECURITY_HEADERS)
        return response


@router.get("/dashboard")
def dashboard() -> FileResponse:
    return FileResponse(STATIC / "dashboard.html", headers=SECURITY_HEADERS)


def install_dashboard(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/dashboard/static", _Static(directory=STATIC), name="dashboard-static")
