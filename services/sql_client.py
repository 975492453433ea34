"""`truce sql`: one statement through the query service's read-only SQL endpoint
(`/clickhouse`, services/store/sql.py), as any ClickHouse HTTP client would send it."""

from __future__ import annotations

import re
from typing import Any

import orjson

from core.errors import TruceError
from services.query_client import post

FORMATS = {"table": "JSONCompact", "csv": "CSVWithNames", "tsv": "TSVWithNames", "json": "JSON"}
"""`--format` choices and the ClickHouse output format each asks for."""
HINTS = {
    497: "the SQL endpoint reads the BI views (weekly_compliance, weekly_access, "
    "current_reports), alerts and the reference tables areas and parties",
    164: "SQL here is read-only: one SELECT or DESCRIBE, without SETTINGS",
    62: "check the statement's syntax (one statement, ClickHouse SQL)",
    516: "give a monitor or admin key (--api-key or TRUCE_API_KEY)",
    396: "add a LIMIT or aggregate (the endpoint returns at most TRUCE_SQL_MAX_ROWS rows)",
    159: "narrow the query (the endpoint stops it after TRUCE_SQL_TIMEOUT_S seconds)",
}
_VERSION = re.compile(r" \(version [^)]*\)\s*$")


class SqlRefused(TruceError):
    """The endpoint refused or failed the statement; ``code`` is ClickHouse's."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message, hint=HINTS.get(code, ""))
        self.code = code


def run_sql(query_url: str, key: str, sql: str, fmt: str, timeout_s: float = 120) -> bytes:
    """The body ClickHouse's format for ``fmt`` (a key of :data:`FORMATS`) gives."""
    response = post(
        query_url,
        "/clickhouse",
        timeout_s,
        content=sql.encode(),
        params={"default_format": FORMATS[fmt]},
        headers={"X-ClickHouse-Key": key},
    )
    if response.status_code != 200:
        code = int(response.headers.get("X-ClickHouse-Exception-Code") or 0)
        first = _VERSION.sub("", response.text.strip().splitlines()[0] if response.text else "")
        raise SqlRefused(first or f"the SQL endpoint answered {response.status_code}", code)
    return response.content


def table_rows(body: bytes) -> tuple[list[str], list[list[Any]]]:
    """Column names and rows of a JSONCompact answer."""
    answer = orjson.loads(body)
    return [m["name"] for m in answer["meta"]], answer["data"]
