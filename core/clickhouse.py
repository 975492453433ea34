"""The only way our code reaches ClickHouse: a clickhouse-connect client built from one DSN.

``chdb:///path`` is the embedded engine (one process may own a data path), an
``http(s)://host:8123/db`` DSN is a server; the calling code is the same.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse, urlunparse

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from core.errors import ClickHouseError

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def dsn_database(dsn: str) -> str | None:
    """The database a DSN names, from ``?database=`` or (server DSNs) the URL path."""
    parsed = urlparse(dsn)
    query = parse_qs(parsed.query)
    if "database" in query:
        return query["database"][0]
    if parsed.scheme.startswith("http") and parsed.path.strip("/"):
        return parsed.path.strip("/").split("/")[0]
    return None


def with_database(dsn: str, database: str) -> str:
    """The same DSN pointing at another database (tests use one per session)."""
    parsed = urlparse(dsn)
    query = {k: v[0] for k, v in parse_qs(parsed.query).items()}
    query["database"] = database
    path = "" if parsed.scheme.startswith("http") else parsed.path
    return f"{parsed.scheme}://{parsed.netloc}{path}?{urlencode(query)}"


def connect(
    dsn: str, *, create_database: bool = True, settings: dict[str, Any] | None = None
) -> Client:
    """Open a client, creating the DSN's database first when it does not exist yet.

    ``settings`` hold for every query of the client, in order (a server gets them with
    each request; chDB applies them to this client's own session, so a ``readonly``
    given last binds that session only)."""
    database = dsn_database(dsn)
    try:
        if database and create_database:
            if not _IDENTIFIER.match(database):
                raise ClickHouseError(f"invalid ClickHouse database name {database!r}")
            admin = clickhouse_connect.get_client(dsn=dsn, database="default")
            try:
                admin.command(f"CREATE DATABASE IF NOT EXISTS `{database}`")
            finally:
                admin.close()
        if urlparse(dsn).scheme.startswith("http"):
            # one client is shared by threads: no server session, so queries may overlap
            return clickhouse_connect.get_client(
                dsn=dsn, autogenerate_session_id=False, settings=settings
            )
        return clickhouse_connect.get_client(dsn=dsn, settings=settings)
    except ClickHouseError:
        raise
    except Exception as exc:
        raise ClickHouseError(
            f"cannot open ClickHouse at {redact(dsn)}: {exc}",
            hint="check TRUCE_CLICKHOUSE_DSN (only one process may open an embedded path)",
        ) from exc


def redact(dsn: str) -> str:
    """The DSN without its password, for messages and logs."""
    parsed = urlparse(dsn)
    if parsed.password:
        netloc = parsed.netloc.replace(f":{parsed.password}@", ":***@")
        return urlunparse(parsed._replace(netloc=netloc))
    return dsn
