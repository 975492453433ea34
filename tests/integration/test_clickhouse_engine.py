"""The real ClickHouse engine through clickhouse-connect: Replacing tables, views, migrations."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from core.clickhouse import connect, dsn_database, with_database
from core.errors import MigrationError
from core.migrations import applied, migrate

pytestmark = pytest.mark.integration


@pytest.fixture
def client(clickhouse_root: str) -> Iterator[Client]:
    dsn = with_database(clickhouse_root, f"t_{uuid.uuid4().hex[:12]}")
    ch = connect(dsn)
    try:
        yield ch
    finally:
        ch.command(f"DROP DATABASE IF EXISTS `{dsn_database(dsn)}`")
        ch.close()


def test_connect_creates_the_named_database(client: Client) -> None:
    assert client.query("SELECT currentDatabase()").result_rows[0][0].startswith("t_")


def test_replacing_merge_tree_keeps_latest_version_and_view_follows(client: Client) -> None:
    client.command(
        "CREATE TABLE metric (week String, area LowCardinality(String), violations UInt32,"
        " version UInt64) ENGINE = ReplacingMergeTree(version) ORDER BY (week, area)"
    )
    client.command(
        "CREATE TABLE metric_log (week String, area String, violations UInt32)"
        " ENGINE = MergeTree ORDER BY week"
    )
    client.command(
        "CREATE MATERIALIZED VIEW metric_mv TO metric_log AS"
        " SELECT week, area, violations FROM metric"
    )
    rows = [
        ["2016-W09", "madaya", 3, 2],
        ["2016-W09", "madaya", 5, 1],
        ["2016-W09", "daraya", 1, 1],
    ]
    client.insert("metric", rows, column_names=["week", "area", "violations", "version"])
    client.insert(
        "metric",
        [["2016-W09", "madaya", 3, 2]],
        column_names=["week", "area", "violations", "version"],
    )
    latest = client.query("SELECT area, violations FROM metric FINAL ORDER BY area").result_rows
    assert latest == [("daraya", 1), ("madaya", 3)]
    assert client.query("SELECT count() FROM metric_log").result_rows[0][0] == 4


def _write(directory: Path, name: str, sql: str) -> None:
    directory.mkdir(exist_ok=True)
    (directory / name).write_text(sql)


def test_migrations_apply_once_in_order(client: Client, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    _write(
        folder,
        "0001_reports.sql",
        "-- raw reports\nCREATE TABLE r (id String) ENGINE = MergeTree ORDER BY id;\n",
    )
    _write(
        folder,
        "0002_view.sql",
        "CREATE VIEW r_count AS SELECT count() AS n FROM r;\n"
        "ALTER TABLE r ADD COLUMN kind String;\n",
    )
    assert migrate(client, folder) == [1, 2]
    assert migrate(client, folder) == []
    assert set(applied(client)) == {1, 2}
    columns = [row[0] for row in client.query("DESCRIBE TABLE r").result_rows]
    assert columns == ["id", "kind"]
    _write(folder, "0003_more.sql", "ALTER TABLE r ADD COLUMN area String;")
    assert migrate(client, folder) == [3]


def test_edited_migration_is_refused(client: Client, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    _write(folder, "0001_t.sql", "CREATE TABLE t (a UInt8) ENGINE = MergeTree ORDER BY a")
    migrate(client, folder)
    _write(folder, "0001_t.sql", "CREATE TABLE t (a UInt16) ENGINE = MergeTree ORDER BY a")
    with pytest.raises(MigrationError, match="edited after it was applied"):
        migrate(client, folder)


def test_badly_named_migration_is_refused(client: Client, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    _write(folder, "create.sql", "SELECT 1")
    with pytest.raises(MigrationError, match="NNNN_description"):
        migrate(client, folder)
