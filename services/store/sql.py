"""Read-only SQL on the live store (the `/clickhouse` endpoint, `truce sql`).

The embedded store can be opened by one process only, so the query service runs BI users'
SQL itself, on two ClickHouse sessions of its own (never the store's): an *inspector*
(``readonly=1``) that parses and resolves the statement, and a *runner* (the row and time
limits, then ``readonly=1``, so no query can change them back). Each statement is checked
by the engine, not by patterns over its text:

1. ``formatQuery`` parses it with ClickHouse's own parser: one statement only (chDB
   would otherwise run every statement of ``a; b``), comments dropped.
2. ``EXPLAIN AST`` (parses, runs nothing) names the statement kind (SELECT or DESCRIBE
   only), any ``SETTINGS`` or ``INTO OUTFILE`` clause, every function and table function.
   Functions that read files or dictionaries and table functions outside a short list are
   refused here, before the next step could evaluate a constant ``file('…')``.
3. ``EXPLAIN QUERY TREE`` resolves names (WITH, aliases, ``IN table``): every table read
   must be a BI view, a reference table or one of a few system tables.
4. The runner executes it; ``readonly=1`` refuses any write or setting change again.

The same code serves a ClickHouse server DSN: the sessions' settings then ride on every
request."""

from __future__ import annotations

import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from clickhouse_connect.driver.client import Client

from core.clickhouse import connect, dsn_database
from core.settings import Settings
from schemas.figures import FIGURE_SETS
from services.store import reference_tables
from services.store.derived import view_name

BI_TABLES = frozenset(
    {*(view_name(f) for f in FIGURE_SETS), "current_reports", "alerts", *reference_tables.TABLES}
)
"""What BI users read: the views of migration 0002/derived.py, alerts (the Grafana
dashboard's panel) and the reference tables."""
SYSTEM_TABLES = frozenset(
    {
        "one", "settings", "functions", "data_type_families", "time_zones",
        "databases", "tables", "columns",
    }
)  # fmt: skip
"""System tables clients read (clickhouse-connect ``system.settings`` on connect; Grafana's
query builder the catalogue, whose rows :func:`catalogue_filters` narrows to ours)."""
TABLE_FUNCTIONS = frozenset(
    {"numbers", "numbers_mt", "zeros", "zeros_mt", "values", "generate_series", "generateseries"}
)
"""Table functions that generate rows; every other one (file, url, s3, remote, mysql,
executable, merge, view, …) reaches files, the network or other tables."""
DENIED_FUNCTIONS = frozenset(
    {"file", "joinget", "joingetornull", "catboostevaluate", "naivebayesclassifier"}
)
"""Ordinary functions that read files, Join tables or models (``dict*`` too)."""
STATEMENTS = frozenset({"SelectWithUnionQuery", "DescribeQuery", "ShowTables"})


def catalogue_filters(database: str) -> dict[str, str]:
    """``additional_table_filters``: the engine shows only the served tables of the store's
    database in the catalogue (``system.tables``, ``columns``, ``databases``, SHOW TABLES)."""
    names = ", ".join(f"'{name}'" for name in sorted(BI_TABLES))
    where = f"database = '{database}'"
    return {
        "system.tables": f"{where} AND name IN ({names})",
        "system.columns": f"{where} AND table IN ({names})",
        "system.databases": f"name = '{database}'",
    }


TRANSPORT_PARAMETERS = frozenset(
    {
        "query", "database", "default_format", "query_id", "session_id", "session_timeout",
        "session_check", "compress", "decompress", "buffer_size", "wait_end_of_query",
        "client_protocol_version", "quota_key", "role", "user", "password",
        "send_progress_in_http_headers", "http_headers_progress_interval_ms",
        "enable_http_compression", "cancel_http_readonly_queries_on_client_close",
        "add_http_cors_header", "http_response_buffer_size",
    }
)  # fmt: skip
"""HTTP parameters of ClickHouse's interface that are not query settings."""
CAPPED_SETTINGS = frozenset({"max_execution_time", "max_result_rows", "max_result_bytes"})
"""Limits a client may send (Grafana sends its query timeout); the endpoint's own apply."""
_FORMAT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
_CODE = re.compile(r"Code: (\d+)\. (DB::Exception: .*?)(?: \(for url .*)?$", re.DOTALL)
_PREFIX = re.compile(r"^(?:Code: \d+\. )?DB::Exception: ")
_NAME = re.compile(r"\(([A-Z_]+)\)(?: \(version [^)]*\))?\.?\s*$")


@dataclass
class SqlError(Exception):
    """A refused or failed statement, as ClickHouse would report it."""

    code: int
    name: str
    message: str

    def __str__(self) -> str:
        return f"Code: {self.code}. DB::Exception: {self.message}. ({self.name})"

    @property
    def status(self) -> int:
        """The HTTP status ClickHouse's HTTP interface gives this error code."""
        return STATUS.get(self.code, 500)


STATUS = {
    62: 400, 47: 400, 46: 400, 43: 400, 115: 400, 456: 400, 36: 400, 73: 400,
    60: 404, 81: 404, 164: 403, 497: 403, 516: 401, 202: 429,
}  # fmt: skip


def readonly(message: str) -> SqlError:
    return SqlError(164, "READONLY", message)


def denied(message: str) -> SqlError:
    return SqlError(497, "ACCESS_DENIED", message)


def engine_error(exc: Exception) -> SqlError:
    """A clickhouse-connect error as the engine's own ``Code: N. DB::Exception: …``."""
    text = str(exc)
    code = getattr(exc, "code", None)
    found = _CODE.search(text)
    body = found.group(2) if found else text
    name_found = _NAME.search(body)
    name = name_found.group(1) if name_found else str(getattr(exc, "name", "") or "UNKNOWN")
    while True:  # chDB nests the message: "Code: 164. DB::Exception: Code: 164. …"
        stripped = _NAME.sub("", _PREFIX.sub("", body, count=1)).rstrip(". ")
        if stripped == body:
            break
        body = stripped
    number = int(code) if code else int(found.group(1)) if found else 1002
    return SqlError(number, name, body)


@dataclass
class SqlQuery:
    """One request to the endpoint: the statement and its HTTP parameters."""

    sql: str
    default_format: str = "TabSeparated"
    database: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)


@dataclass
class SqlResult:
    body: bytes
    format: str
    query_id: str
    elapsed_ns: int


@dataclass
class _Node:
    depth: int
    kind: str
    name: str
    parents: tuple[tuple[str, str], ...]
    """(kind, name) of each ancestor, the nearest last."""

    @property
    def parent(self) -> str:
        return self.parents[-1][0] if self.parents else ""

    def in_set(self) -> bool:
        """An identifier argument of IN, which may name a table (``x IN t``)."""
        return (
            len(self.parents) >= 2
            and self.parents[-1][0] == "ExpressionList"
            and self.parents[-2][0] == "Function"
            and self.parents[-2][1].lower().endswith("in")
        )


def _tree(text: str) -> list[_Node]:
    """EXPLAIN AST output as nodes with their ancestors."""
    nodes: list[_Node] = []
    stack: list[tuple[int, str, str]] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip(" "))
        words = line.strip().split(" ")
        kind = words[0]
        name = words[1] if len(words) > 1 and not words[1].startswith("(") else ""
        while stack and stack[-1][0] >= depth:
            stack.pop()
        nodes.append(_Node(depth, kind, name, tuple((k, n) for _, k, n in stack)))
        stack.append((depth, kind, name))
    return nodes


def _attribute(line_name: str, text: str, key: str) -> str:
    found = re.search(rf"\b{key}: ([^,\s]+)", text)
    return found.group(1) if found else line_name


class SqlEndpoint:
    """The inspector and runner sessions over the store's DSN, opened on first use."""

    def __init__(self, settings: Settings, dsn: str | None = None) -> None:
        self.dsn = dsn or settings.clickhouse_url
        self.max_rows = settings.sql_max_rows
        self.timeout_s = settings.sql_timeout_s
        self._lock = threading.Lock()
        self._inspector: Client | None = None
        self._runner: Client | None = None
        self.database = ""
        self.timezone = "UTC"
        self.version = ""

    def _sessions(self) -> tuple[Client, Client]:
        with self._lock:
            if self._inspector is None or self._runner is None:
                database = dsn_database(self.dsn) or "default"
                if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", database):
                    raise SqlError(81, "UNKNOWN_DATABASE", "the store's database name is invalid")
                filters = catalogue_filters(database)
                inspector = connect(
                    self.dsn,
                    create_database=False,
                    settings={"additional_table_filters": filters, "readonly": 1},
                )
                limits: dict[str, Any] = {
                    "additional_table_filters": filters,
                    "max_result_rows": self.max_rows,
                    "result_overflow_mode": "throw",
                    "max_execution_time": self.timeout_s,
                    "timeout_overflow_mode": "throw",
                    "readonly": 1,
                }
                runner = connect(self.dsn, create_database=False, settings=limits)
                row = inspector.query("SELECT currentDatabase(), timezone(), version()")
                self.database, self.timezone, self.version = row.result_rows[0]
                self._inspector, self._runner = inspector, runner
            return self._inspector, self._runner

    def allowed(self, table: str) -> bool:
        database, _, name = table.rpartition(".")
        if database == "system":
            return name in SYSTEM_TABLES
        return database in ("", self.database) and name in BI_TABLES

    def _check_settings(self, query: SqlQuery) -> None:
        for name in query.settings:
            if name in TRANSPORT_PARAMETERS or name in CAPPED_SETTINGS:
                continue
            raise readonly(
                f"Cannot modify '{name}' setting in readonly mode: the SQL endpoint takes "
                "no settings (its row and time limits are the server's)"
            )
        if query.database and query.database != self.database:
            raise SqlError(
                81, "UNKNOWN_DATABASE",
                f"Database {query.database} does not exist here: the store's tables are in "
                f"{self.database} (leave the database empty)",
            )  # fmt: skip

    def _engine(self, client: Client, sql: str, query: SqlQuery) -> bytes:
        try:
            return client.raw_query(sql, parameters=query.parameters or None)
        except Exception as exc:
            raise engine_error(exc) from exc

    def check(self, query: SqlQuery) -> tuple[str, str]:
        """The one statement to run (without FORMAT) and its output format, or SqlError."""
        inspector, _runner = self._sessions()
        self._check_settings(query)
        if not query.sql.strip():
            raise SqlError(62, "SYNTAX_ERROR", "Empty query")
        try:
            formatted = inspector.query(
                "SELECT formatQuery({q:String})", parameters={"q": query.sql}
            ).result_rows[0][0]
        except Exception as exc:
            raise engine_error(exc) from exc
        ast = _tree(self._engine(inspector, f"EXPLAIN AST {formatted}", query).decode())
        top = ast[0].kind
        if top not in STATEMENTS:
            raise readonly(
                f"Cannot execute {top.removesuffix('Query')} in readonly mode: the SQL "
                "endpoint runs SELECT, DESCRIBE and SHOW TABLES only"
            )
        lines = formatted.rstrip().splitlines()
        if lines and lines[-1].startswith("FORMAT "):
            lines = lines[:-1]
        statement = "\n".join(lines)
        if top == "ShowTables" and statement not in ("SHOW TABLES", "SHOW DATABASES"):
            raise readonly(
                "SHOW takes no clauses here: SELECT from system.tables (or system.databases) "
                "with WHERE, FORMAT or LIKE instead"
            )
        fmt = query.default_format
        for node in ast:
            if node.kind == "Set":
                raise readonly("SETTINGS clauses are not allowed on the SQL endpoint")
            if node.depth == 1 and node.kind == "Literal":
                raise readonly("INTO OUTFILE is not allowed on the SQL endpoint")
            if node.depth == 1 and node.kind == "Identifier":
                fmt = node.name
            if node.kind == "Function":
                self._check_function(node.name, table=node.parent == "TableExpression")
        if not _FORMAT_NAME.match(fmt):
            raise SqlError(73, "UNKNOWN_FORMAT", f"Unknown output format {fmt[:40]!r}")
        named = [
            n.name
            for n in ast
            if (n.kind == "TableIdentifier" or (n.kind == "Identifier" and n.in_set()))
            and not self.allowed(n.name)
        ]
        if top != "SelectWithUnionQuery":  # DESCRIBE a table, SHOW TABLES/DATABASES
            if named:
                raise self._not_served(named[0])
            return statement, fmt
        try:
            tree = inspector.raw_query(
                f"EXPLAIN QUERY TREE {statement}", parameters=query.parameters or None
            ).decode()
        except Exception as exc:
            error = engine_error(exc)
            if named:  # a WITH name, or a table whose data must not reach an error text
                raise denied(
                    f"Not enough privileges or a wrong query ({error.name}): it names "
                    f"{', '.join(named)}, which the SQL endpoint does not serve (it reads "
                    f"{', '.join(sorted(BI_TABLES))})"
                ) from exc
            raise error from exc
        for line in tree.splitlines():
            kind = line.strip().split(" ")[0]
            if kind == "TABLE":
                table = _attribute("", line, "table_name")
                if not self.allowed(table):
                    raise self._not_served(table)
            elif kind == "TABLE_FUNCTION":
                self._check_function(_attribute("", line, "table_function_name"), table=True)
            elif kind == "FUNCTION":
                self._check_function(_attribute("", line, "function_name"), table=False)
        return statement, fmt

    def _not_served(self, table: str) -> SqlError:
        return denied(
            f"Not enough privileges: {table} is not served by the SQL endpoint; it reads the "
            f"BI views and reference tables ({', '.join(sorted(BI_TABLES))})"
        )

    def _check_function(self, name: str, *, table: bool) -> None:
        lowered = name.lower()
        if table and lowered not in TABLE_FUNCTIONS:
            raise denied(
                f"Not enough privileges: table function {name} is not allowed on the SQL "
                f"endpoint (only {', '.join(sorted(TABLE_FUNCTIONS))})"
            )
        if not table and (lowered in DENIED_FUNCTIONS or lowered.startswith("dict")):
            raise denied(f"Not enough privileges: function {name} is not allowed")

    def run(self, query: SqlQuery, query_id: str | None = None) -> SqlResult:
        statement, fmt = self.check(query)
        _inspector, runner = self._sessions()
        started = time.perf_counter_ns()
        body = self._engine(runner, f"{statement}\nFORMAT {fmt}", query)
        return SqlResult(body, fmt, query_id or str(uuid.uuid4()), time.perf_counter_ns() - started)

    def close(self) -> None:
        with self._lock:
            for client in (self._inspector, self._runner):
                if client is not None:
                    client.close()
            self._inspector = self._runner = None
