"""DSN handling: the same code path for embedded chDB and a ClickHouse server."""

from __future__ import annotations

from core.clickhouse import dsn_database, redact, with_database


def test_database_of_embedded_and_server_dsns() -> None:
    assert dsn_database("chdb:///var/truce/clickhouse") is None
    assert dsn_database("chdb:///var/truce/clickhouse?database=truce") == "truce"
    assert dsn_database("http://ch.example:8123/truce") == "truce"
    assert dsn_database("https://ch.example:8443/") is None


def test_with_database_keeps_location() -> None:
    assert with_database("chdb:///x/ch", "db1") == "chdb:///x/ch?database=db1"
    assert with_database("http://u:p@h:8123/old", "new") == "http://u:p@h:8123?database=new"


def test_redact_hides_password() -> None:
    assert redact("https://user:s3cret@h:8443/db") == "https://user:***@h:8443/db"
    assert redact("chdb:///x") == "chdb:///x"
