"""The store's one ClickHouse client, its migrations (numbered files, then the DDL derived
from the figure sets) and the calls the rest of the store makes. Calls block (chDB runs
in-process): callers run them in threads, never on the event loop."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from clickhouse_connect.driver.client import Client

from core.clickhouse import connect
from core.migrations import migrate
from services.store import derived, reference_tables

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class Database:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._client: Client | None = None
        self._lock = threading.Lock()

    @property
    def client(self) -> Client:
        with self._lock:
            if self._client is None:
                self._client = connect(self.dsn)
            return self._client

    def migrate(self) -> list[int]:
        """Apply pending migrations, then the schema derived from the figure sets and the
        reference tables; returns the migration versions applied now."""
        newly = migrate(self.client, MIGRATIONS)
        derived.apply(self.client)
        reference_tables.load(self.client)
        return newly

    def insert(self, table: str, rows: list[list[Any]], columns: list[str]) -> None:
        self.client.insert(table, rows, column_names=columns)

    def rows(self, sql: str, **parameters: Any) -> list[dict[str, Any]]:
        result = self.client.query(sql, parameters=parameters)
        names = result.column_names
        return [dict(zip(names, row, strict=True)) for row in result.result_rows]

    def drop_all(self) -> list[str]:
        """Drop every table and view of the database (projections, migration history):
        `truce rebuild` then refills them from the Kafka log. Views go first."""
        names = self.rows(
            "SELECT name FROM system.tables WHERE database = currentDatabase() "
            "ORDER BY engine LIKE '%View' DESC, name"
        )
        for row in names:
            self.client.command(f"DROP TABLE IF EXISTS `{row['name']}` SYNC")
        return [row["name"] for row in names]

    def answers(self) -> bool:
        try:
            return bool(self.client.command("SELECT 1") == 1)
        except Exception:
            return False

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
