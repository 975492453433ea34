"""Coverage (CONTRACT 9): who reported from each area in a week, so "no reports" is told
apart from "no violations". An area is monitored in a week when any organisation's
current field report (violation, delivery or access request, not retracted) occurred
there that week; its ``last_report_at`` is the latest such report's event time up to the
week's end, which for an unmonitored area says since when it has been silent."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel

from core.openapi import AUTHENTICATED, problems
from schemas.reference import areas
from schemas.weeks import week_bounds
from services.store.database import Database
from services.store.params import check_area, check_week
from services.store.routes import Reader, State
from services.store.weekly.sources import StreamSource, coverage_rows


class CoverageRow(BaseModel):
    area: str
    reporting_orgs: int
    """Organisations with at least one current field report from the area that week."""
    reports: int
    last_report_at: datetime | None
    """The latest event time of a current field report from the area up to the week's end."""
    monitored: bool


class Coverage(BaseModel):
    week: str
    rows: list[CoverageRow]


def coverage(db: Database, week: str, area: str = "") -> list[CoverageRow]:
    """One row per area of the reference data (or the one asked for), in code order."""
    _, end = week_bounds(week)
    found = StreamSource(db).coverage(week, end, area)
    codes = [area] if area else sorted(areas())
    return [CoverageRow(**row) for row in coverage_rows(found, codes)]


router = APIRouter()


@router.get(
    "/v1/metrics/coverage",
    summary="Who reported from each area in a week (no reports is not no violations)",
    response_model=Coverage,
    responses=problems(*AUTHENTICATED, 403, 422),
)
def coverage_route(
    st: State,
    _key: Reader,
    week: str,
    area: str | None = None,
) -> Coverage:
    checked = check_week(week)
    return Coverage(week=checked, rows=coverage(st.db, checked, check_area(area)))
