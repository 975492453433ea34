"""`GET /v1/reference/areas` and `/parties` (CONTRACT 1): the codes every form and query
uses, for any valid key, served by the ingest API and the query API alike."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends

from core.openapi import AUTHENTICATED, problems
from schemas import Area, Party, area_list, party_list


def reference_router(authenticate: Callable[..., Any]) -> APIRouter:
    """The two routes, each requiring ``authenticate`` (a FastAPI dependency)."""
    router = APIRouter(dependencies=[Depends(authenticate)])

    @router.get(
        "/v1/reference/areas",
        summary="Area codes and their attributes",
        response_model=list[Area],
        responses=problems(*AUTHENTICATED),
    )
    def areas() -> list[dict[str, Any]]:
        return [a.model_dump() for a in area_list()]

    @router.get(
        "/v1/reference/parties",
        summary="Party codes; designated ones are exempt",
        response_model=list[Party],
        responses=problems(*AUTHENTICATED),
    )
    def parties() -> list[dict[str, Any]]:
        return [p.model_dump() for p in party_list()]

    return router
