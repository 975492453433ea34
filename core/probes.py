"""`/healthz`, `/readyz` and `/metrics` for every HTTP service, the same way: a process is
ready when each of its checks passes; the body says which did not, and why."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


class Probed(Protocol):
    """What a service's state offers its probes."""

    def readiness(self) -> dict[str, bool]: ...

    def readiness_details(self) -> dict[str, Any]: ...

    def metrics_registry(self) -> CollectorRegistry: ...


def probe_router(state_of: Callable[[Request], Probed]) -> APIRouter:
    """The three unauthenticated probe routes, reading the service state per request."""
    router = APIRouter(include_in_schema=False)

    @router.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    def readyz(request: Request) -> JSONResponse:
        st = state_of(request)
        checks = st.readiness()
        ok = all(checks.values())
        body = {"ready": ok, "checks": checks, **st.readiness_details()}
        return JSONResponse(body, status_code=200 if ok else 503)

    @router.get("/metrics")
    def metrics(request: Request) -> Response:
        registry = state_of(request).metrics_registry()
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router
