"""ClickHouse's HTTP interface under ``/clickhouse`` (read-only SQL, services/store/sql.py),
close enough for clickhouse-connect (``proxy_path='/clickhouse'``) and Grafana's ClickHouse
data source (HTTP protocol, path ``/clickhouse``).

ClickHouse's conventions, not ours, hold here, since those clients parse them: the query in
``?query=`` and/or the body, ``default_format`` or a FORMAT clause, the key as the password
of HTTP Basic auth or in ``X-ClickHouse-Key``, ``X-ClickHouse-*`` response headers, and
errors as ``Code: N. DB::Exception: …`` text with ``X-ClickHouse-Exception-Code``."""

from __future__ import annotations

import base64
import binascii
import json

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from core.keys import ApiKey, Role
from services.store.sql import SqlError, SqlQuery, SqlResult, denied
from services.store.state import StoreState, state

router = APIRouter(include_in_schema=False)
ROLES = frozenset({Role.MONITOR, Role.ADMIN})
"""Who may run SQL: monitors (and admins), as for the BI views' data in the API."""
CONTENT_TYPES = {
    "TabSeparated": "text/tab-separated-values; charset=UTF-8",
    "TSV": "text/tab-separated-values; charset=UTF-8",
    "CSV": "text/csv; charset=UTF-8; header=absent",
    "CSVWithNames": "text/csv; charset=UTF-8; header=present",
}


def content_type(fmt: str) -> str:
    if fmt in CONTENT_TYPES:
        return CONTENT_TYPES[fmt]
    if fmt.startswith("JSON"):
        return "application/json; charset=UTF-8"
    if fmt.startswith(("TabSeparated", "TSV")):
        return "text/tab-separated-values; charset=UTF-8"
    if fmt.startswith(("Pretty", "Markdown", "Vertical", "XML", "CSV", "Values")):
        return "text/plain; charset=UTF-8"
    return "application/octet-stream"


def _secret(request: Request) -> str:
    """The key: X-ClickHouse-Key, the password of HTTP Basic auth, ?password= or Bearer."""
    header = request.headers.get("x-clickhouse-key")
    if header:
        return header.strip()
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(value.strip()).decode().partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            return ""
    if scheme.lower() == "bearer":
        return value.strip()
    return request.query_params.get("password", "")


def authenticate(st: StoreState, request: Request) -> ApiKey:
    secret = _secret(request)
    key = st.keys.authenticate(secret) if secret else None
    if key is None:
        raise SqlError(
            516, "AUTHENTICATION_FAILED",
            "Authentication failed: give a Truce monitor key as the password (HTTP Basic) "
            "or in the X-ClickHouse-Key header" if secret else
            "Authentication failed: no key given; use a Truce monitor key as the password",
        )  # fmt: skip
    if st.limiter.acquire(key.name):
        raise SqlError(202, "TOO_MANY_SIMULTANEOUS_QUERIES", "Too many requests for this key")
    if key.role not in ROLES:
        raise denied(f"Not enough privileges: a {key.role.value} key may not run SQL")
    return key


def _query(request: Request, body: bytes) -> SqlQuery:
    params = request.query_params
    if params.get("compress") == "1" or params.get("decompress") == "1":
        raise SqlError(
            36, "BAD_ARGUMENTS",
            "ClickHouse's block compression (compress=1/decompress=1) is not served here: "
            "turn compression off in the client (HTTP Accept-Encoding is fine)",
        )  # fmt: skip
    text = params.get("query", "")
    if body:  # ClickHouse joins the parameter and the body
        sent = body.decode("utf-8", "replace")
        text = f"{text}\n{sent}" if text else sent
    return SqlQuery(
        sql=text,
        default_format=params.get("default_format")
        or request.headers.get("x-clickhouse-format")
        or "TabSeparated",
        database=params.get("database") or request.headers.get("x-clickhouse-database"),
        parameters={k[6:]: v for k, v in params.items() if k.startswith("param_")},
        settings={k: v for k, v in params.items() if not k.startswith("param_")},
    )


def _headers(st: StoreState, query_id: str) -> dict[str, str]:
    return {
        "X-ClickHouse-Query-Id": query_id,
        "X-ClickHouse-Timezone": st.sql.timezone or "UTC",
        "X-ClickHouse-Server-Display-Name": "truce",
    }


def error_response(error: SqlError, headers: dict[str, str], version: str) -> Response:
    return Response(
        f"{error} (version {version or 'unknown'})\n",
        status_code=error.status,
        media_type="text/plain; charset=UTF-8",
        headers={**headers, "X-ClickHouse-Exception-Code": str(error.code)},
    )


def result_response(result: SqlResult, headers: dict[str, str]) -> Response:
    summary = {
        "read_rows": "0", "read_bytes": "0", "written_rows": "0", "written_bytes": "0",
        "total_rows_to_read": "0", "result_rows": "0", "result_bytes": str(len(result.body)),
        "elapsed_ns": str(result.elapsed_ns),
    }  # fmt: skip
    return Response(
        result.body,
        media_type=content_type(result.format),
        headers={
            **headers,
            "X-ClickHouse-Format": result.format,
            "X-ClickHouse-Summary": json.dumps(summary, separators=(",", ":")),
        },
    )


@router.get("/clickhouse/ping")
@router.get("/clickhouse/ping/")
def ping() -> Response:
    """ClickHouse's liveness answer (no key, as on a server)."""
    return Response("Ok.\n", media_type="text/plain; charset=UTF-8")


@router.api_route("/clickhouse", methods=["GET", "POST"])
@router.api_route("/clickhouse/", methods=["GET", "POST"])
async def sql(request: Request) -> Response:
    st = state(request)
    query_id = request.query_params.get("query_id") or ""
    body = await request.body() if request.method == "POST" else b""
    if request.method == "GET" and "query" not in request.query_params:
        return Response("Ok.\n", media_type="text/plain; charset=UTF-8")
    try:
        authenticate(st, request)
        query = _query(request, body)
        result = await run_in_threadpool(st.sql.run, query, query_id or None)
    except SqlError as error:
        return error_response(error, _headers(st, query_id), st.sql.version)
    return result_response(result, _headers(st, result.query_id))
