"""Thin HTTP handlers of the query API (CONTRACT sections 3 and 4)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response

from core.errors import InvalidInput, NotFound
from core.keys import ApiKey, Role
from core.openapi import AUTHENTICATED, problems
from schemas.editions import EditionRequest, EditionSummary
from schemas.weekly_report import WeeklyReport
from services.reference_api import reference_router
from services.store import editions, queries, recompute
from services.store.params import (
    check_area,
    check_party,
    check_since,
    check_time,
    check_week,
    report_filters,
)
from services.store.responses import (
    AccessMetrics,
    AlertView,
    ReportHistory,
    ReportPage,
    Verification,
    WeeklyMetrics,
)
from services.store.state import StoreState, state
from services.store.weekly import formats
from services.store.weekly.assemble import weekly_report as assemble_weekly_report
from services.store.weekly.render import html_policy, render

router = APIRouter()
READER = problems(*AUTHENTICATED, 403, 422)
"""What a monitor's read can answer besides 200."""
ANYONE = problems(*AUTHENTICATED, 422)
State = Annotated[StoreState, Depends(state)]


def _reader(request: Request) -> ApiKey:
    return state(request).auth_reader(request)


def _anyone(request: Request) -> ApiKey:
    return state(request).auth_any(request)


def as_utc(moment: datetime) -> datetime:
    """ClickHouse hands back naive UTC datetimes."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def utc_text(moment: datetime) -> str:
    """RFC 3339 with an offset."""
    return as_utc(moment).astimezone(UTC).isoformat().replace("+00:00", "Z")


Reader = Annotated[ApiKey, Depends(_reader)]
Anyone = Annotated[ApiKey, Depends(_anyone)]


@router.get(
    "/v1/metrics/weekly",
    summary="Weekly compliance per area and perpetrator",
    response_model=WeeklyMetrics,
    responses=READER,
)
def weekly(
    st: State, _key: Reader, week: str, area: str | None = None, party: str | None = None
) -> dict[str, Any]:
    rows = queries.weekly(st.db, check_week(week), check_area(area), check_party(party))
    return {"week": week, "rows": rows}


@router.get(
    "/v1/metrics/access",
    summary="Weekly deliveries and access requests per area",
    response_model=AccessMetrics,
    responses=READER,
)
def access(st: State, _key: Reader, week: str, area: str | None = None) -> dict[str, Any]:
    return {"week": week, "rows": queries.access(st.db, check_week(week), check_area(area))}


@router.get(
    "/v1/weekly-report/{week}",
    summary="The task force's weekly report (JSON, Markdown, HTML, CSV or HXL CSV)",
    response_model=None,
    responses={
        200: {
            "model": WeeklyReport,
            "content": {
                "text/markdown": {"schema": {"type": "string"}},
                "text/html": {"schema": {"type": "string"}},
                "text/csv": {"schema": {"type": "string"}},
            },
            "description": "Without ?format= the Accept header chooses; JSON by default.",
        },
        **READER,
    },
)
def weekly_report(
    st: State,
    _key: Reader,
    request: Request,
    week: str,
    format_: Annotated[str | None, Query(alias="format")] = None,
    edition: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
    as_of: str | None = None,
) -> Response:
    checked = check_week(week, where="path")
    fmt = formats.choose(format_, request.headers.get("accept"))
    if edition is not None and as_of is not None:
        raise InvalidInput(
            "edition and as_of exclude each other: an edition is already what was known then",
            errors=[{"loc": ["query", "as_of"], "msg": "drop as_of or edition"}],
        )
    headers = {"Vary": "Accept"}
    if fmt.disposition:
        headers["Content-Disposition"] = f'{fmt.disposition}; filename="{fmt.filename(checked)}"'
    if edition is not None:  # the frozen bytes, as published
        body = editions.edition(st.db, checked, edition).renderings[fmt.name]
        headers["Cache-Control"] = "public, max-age=31536000, immutable"
    elif as_of is not None:
        moment = check_time("as_of", as_of)
        body = render(assemble_weekly_report(st.db, checked, as_of=moment), fmt)
    else:
        body = render(editions.current_report(st.db, checked, restated=st.restated), fmt)
    if fmt.name == "html":
        headers["Content-Security-Policy"] = html_policy(body)
        headers["X-Content-Type-Options"] = "nosniff"
    return Response(body, media_type=fmt.media_type, headers=headers)


def _publisher(request: Request) -> ApiKey:
    return state(request).auth_publisher(request)


@router.post(
    "/v1/editions",
    summary="Freeze the week's weekly report as its next edition (task force)",
    status_code=201,
    response_model=EditionSummary,
    responses=problems(*AUTHENTICATED, 403, 422, 503),
)
def publish_edition(
    st: State, _key: Annotated[ApiKey, Depends(_publisher)], body: EditionRequest
) -> dict[str, Any]:
    summary = st.editions.publish(check_week(body.week, where="body"))
    return summary.model_dump(mode="json")


@router.get(
    "/v1/editions",
    summary="The published editions of a week, oldest first",
    response_model=list[EditionSummary],
    responses=READER,
)
def list_editions(st: State, _key: Reader, week: str) -> list[dict[str, Any]]:
    found = editions.editions(st.db, check_week(week))
    return [e.summary().model_dump(mode="json") for e in found]


@router.get(
    "/v1/verify",
    summary="Reconcile the stream's metrics with a raw-log recount",
    response_model=Verification,
    responses=READER,
)
def verify(st: State, _key: Reader, week: str | None = None) -> dict[str, Any]:
    return recompute.verify(st.db, week)


@router.get(
    "/v1/reports",
    summary="The current reports behind a number (drill-down); a partner's own reports",
    response_model=ReportPage,
    responses=ANYONE,
)
def report_list(
    st: State,
    key: Anyone,
    week: str | None = None,
    area: str | None = None,
    party: str | None = None,
    kind: str | None = None,
    status: str | None = None,
    verification: str | None = None,
    exempt: bool | None = None,
    updated_after: Annotated[
        str | None, Query(description="Only reports whose current revision came since then.")
    ] = None,
    retracted: Annotated[bool, Query(description="Also the withdrawn reports.")] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> dict[str, Any]:
    org = key.org if key.role is Role.PARTNER else ""  # CONTRACT 1: a partner's own only
    filters = report_filters(
        week, area, party, kind, status, verification, exempt,
        org=org, updated_after=updated_after, retracted=retracted,
    )  # fmt: skip
    total, rows = queries.report_list(st.db, filters, limit, offset)
    for row in rows:
        row["occurred_at"] = utc_text(row["occurred_at"])
        row["received_at"] = utc_text(row["received_at"])
    return {"total": total, "limit": limit, "offset": offset, "reports": rows}


@router.get(
    "/v1/reports/{report_id}",
    summary="Every revision of a report and its state",
    response_model=ReportHistory,
    responses=problems(*AUTHENTICATED, 404),
)
def report(st: State, key: Anyone, report_id: str) -> dict[str, Any]:
    current = st.db.rows(queries.REPORT_CURRENT, report_id=report_id)
    revisions = st.db.rows(queries.REPORT_REVISIONS, report_id=report_id)
    owner = current[0]["org"] if current else _first_filer(revisions)
    if owner is None or (key.role is Role.PARTNER and owner != key.org):
        raise NotFound(f"no report {report_id!r} visible to this key")
    if key.role is Role.PARTNER:  # another organisation's refused attempt is not shown
        revisions = [r for r in revisions if r["org"] == key.org]
    state_row = current[0] if current else None
    return {
        "report_id": report_id,
        "owner": owner,
        "revisions": [
            {
                "revision": r["revision"],
                "org": r["org"],
                "key_name": r["key_name"],
                "received_at": utc_text(r["received_at"]),
                "content_hash": r["content_hash"],
                "report": orjson.loads(r["report_json"]),
            }
            for r in revisions
        ],
        "current": None if state_row is None else orjson.loads(state_row["report_json"]),
        "classification": None
        if state_row is None
        else {
            "week": state_row["week"],
            "counts": state_row["counts"],
            "exempt": state_row["exempt"],
            "exempt_reason": state_row["exempt_reason"],
            "verification": state_row["verification"],
        },
    }


def _first_filer(revisions: list[dict[str, Any]]) -> str | None:
    """The owner before the stream has classified the report: the organisation of the
    first revision in log order (every revision of a report is in one partition), which
    need not be the lowest revision number."""
    if not revisions:
        return None
    first = min(revisions, key=lambda r: (r["kafka_partition"], r["kafka_offset"]))
    return str(first["org"])


@router.get(
    "/v1/alerts",
    summary="Spike alerts, newest first",
    response_model=list[AlertView],
    responses=READER,
)
def alerts(
    st: State, _key: Reader, since: str | None = None, area: str | None = None
) -> list[dict[str, Any]]:
    start = check_since(since)
    rows = queries.alerts(st.db, start, check_area(area))
    for row in rows:
        row["starts_at"] = utc_text(row["starts_at"])
        row["updated_at"] = utc_text(row["updated_at"])
        row["report_ids"] = list(row["report_ids"])
    return rows


router.include_router(reference_router(_anyone))
