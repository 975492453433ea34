"""Spreadsheet import (CONTRACT 10): ``POST /v1/reports/import`` takes a CSV file or an
``.xlsx`` workbook, one report per row, through the batch's own intake (atomic: every row
accepted or none, 422 before 403 before 409), with errors by row and column; and
``GET /v1/reports/import/template`` gives each kind's empty sheet, built from
:mod:`schemas.columns`."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from core.body import read_body
from core.errors import InvalidInput, TruceError
from core.http import Problem, as_problem
from core.openapi import AUTHENTICATED, problems
from schemas.columns import COLUMNS, Column
from services.ingest.routes import SUBMIT, _accept, _refused, _submission
from services.ingest.sheets import CSV_MEDIA_TYPES, XLSX_MEDIA_TYPE, Sheet, check_kind, read_sheet
from services.ingest.state import state

router = APIRouter()
MEDIA_TYPES = ", ".join([*CSV_MEDIA_TYPES, XLSX_MEDIA_TYPE])


def _media_type(request: Request) -> str:
    media = (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if media not in (*CSV_MEDIA_TYPES, XLSX_MEDIA_TYPE):
        raise Problem(
            415,
            "send the file as 'Content-Type: text/csv' (UTF-8) or as an .xlsx workbook "
            f"('Content-Type: {XLSX_MEDIA_TYPE}'); an .xls or .ods file: save it as .xlsx",
            headers={"Accept-Post": MEDIA_TYPES},
        )
    return media


def _located(exc: InvalidInput, sheet: Sheet) -> InvalidInput:
    """The batch's refusal with each offending report's row, column and field."""
    errors = [sheet.locate(e) for e in exc.errors]
    hint = exc.hint or "the row numbers are the sheet's; fix those rows and send the file again"
    return type(exc)(exc.message, errors=errors, hint=hint)


_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


@router.post(
    "/v1/reports/import",
    status_code=202,
    summary="Submit a spreadsheet (CSV or .xlsx), one report per row, atomically",
    responses=SUBMIT,
    openapi_extra=_BODY,
)
async def import_sheet(
    request: Request,
    kind: Annotated[str | None, Query(description="The kind of rows that name none.")] = None,
) -> Response:
    st, key = _submission(request)
    try:
        media = _media_type(request)
        raw = await read_body(request, st.settings.max_body_bytes, hint="split the file")
        sheet = await run_in_threadpool(read_sheet, raw, media, kind)  # parsing is CPU work
    except TruceError as exc:  # the file itself, before any row is judged
        problem = as_problem(exc)
        st.metrics.rejected.labels(str(problem.status)).inc()
        raise _refused(key, [], problem) from None
    try:
        answer = await _accept(st, key, sheet.items)
    except InvalidInput as exc:
        raise _located(exc, sheet) from None
    body = orjson.loads(answer.body)
    for result, row in zip(body["results"], sheet.rows, strict=True):
        result["row"] = row
    return Response(orjson.dumps(body), status_code=202, media_type="application/json")


# -- templates -----------------------------------------------------------------------------


def _about(column: Column) -> str:
    parts = ["required" if column.required else "optional", column.type]
    if column.choices:
        parts.append("one of: " + ", ".join(column.choices))
    if column.description:
        parts.append(column.description)
    if column.name in ("occurred_at", "effective_to"):
        parts.append("RFC 3339 with an offset, as text: 2016-02-27T14:30:00+02:00")
    return "; ".join(parts)


def template_csv(kind: str, hxl: bool = True) -> bytes:
    """The header row (and the hashtag row) of ``kind``'s sheet, UTF-8 with a byte-order
    mark so that Excel reads it as UTF-8."""
    columns = COLUMNS[kind]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([c.name for c in columns])
    if hxl:
        writer.writerow([c.hxl for c in columns])
    return out.getvalue().encode("utf-8-sig")


def template_xlsx(kind: str, hxl: bool = True) -> bytes:
    """``kind``'s sheet as a workbook: the header rows, a drop-down for every column with
    a fixed list of values, and a second sheet saying what each column takes."""
    import openpyxl
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    columns = COLUMNS[kind]
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "reports"
    sheet.append([c.name for c in columns])
    if hxl:
        sheet.append([c.hxl for c in columns])
    first = sheet.max_row + 1
    for index, column in enumerate(columns, start=1):
        letter = get_column_letter(index)
        sheet.cell(1, index).font = Font(bold=True)
        sheet.column_dimensions[letter].width = max(14, len(column.name) + 4)
        if column.choices:
            valid = DataValidation(type="list", formula1='"' + ",".join(column.choices) + '"')
            valid.add(f"{letter}{first}:{letter}{first + 999}")
            sheet.add_data_validation(valid)
        elif column.type == "string":  # text, so that Excel keeps times and ids as written
            for row in range(first, first + 1000):
                sheet.cell(row, index).number_format = "@"
    sheet.freeze_panes = f"A{first}"
    about = book.create_sheet("columns")
    about.append(["column", "hashtag", "what it takes"])
    for column in columns:
        about.append([column.name, column.hxl, _about(column)])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@router.get(
    "/v1/reports/import/template",
    summary="An empty spreadsheet for one kind of report (CSV or .xlsx)",
    response_class=Response,
    responses={
        200: {
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
            },
            "description": "The template: a row of field names and a row of HXL hashtags.",
        },
        **problems(*AUTHENTICATED, 422),
    },
)
async def template(
    request: Request,
    kind: Annotated[str, Query(description="violation, delivery, access_request, ...")],
    format_: Annotated[Literal["csv", "xlsx"], Query(alias="format")] = "csv",
    hxl: bool = True,
) -> Response:
    (await state(request)).auth_any(request)
    check_kind(kind)
    if format_ == "xlsx":
        body, media = await run_in_threadpool(template_xlsx, kind, hxl), XLSX_MEDIA_TYPE
    else:
        body, media = template_csv(kind, hxl), "text/csv; charset=utf-8"
    filename = f"truce-{kind}.{format_}"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    return Response(body, media_type=media, headers=headers)


__all__ = ["router", "template_csv", "template_xlsx"]
