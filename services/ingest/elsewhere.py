"""Reads sent to the ingest service (CONTRACT 10): a partner posts to the ingest service
and reads from the query service, so a ``GET`` the ingest service does not serve (a
report by id, metrics, the sync feed, the report list) is answered with a problem naming
the query service's URL for that very request, never a bare ``404``."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.http import problem_response
from core.settings import Settings

READS = ("GET", "HEAD")


def install_read_pointer(app: FastAPI, settings: Settings) -> None:
    """Answer the ingest service's ``404`` and ``405`` to a read with where to read."""
    query_url = settings.query_reach_url

    async def answer(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        headers = dict(exc.headers or {})
        if request.method not in READS:
            return problem_response(exc.status_code, str(exc.detail), headers)
        target = query_url + request.url.path
        if request.url.query:
            target += "?" + request.url.query
        return problem_response(
            exc.status_code,
            f"the ingest service takes submissions and does not serve {request.method} "
            f"{request.url.path}; reads are served by the query service: {target} "
            "(with the same key)",
            headers,
            query_service=query_url,
            see=target,
        )

    for status in (404, 405):
        app.add_exception_handler(status, answer)
