"""The ClickHouse tables the store writes have exactly the columns of the contract's
models (schemas/outputs.py), so BI users and the code read the same names."""

from __future__ import annotations

import uuid

import pytest

from core.clickhouse import dsn_database, with_database
from schemas import Alert, CanonicalReport, DeadLetter, WeeklyAccess, WeeklyCompliance
from services.store.database import Database
from services.store.rows import TABLES

pytestmark = pytest.mark.integration

MODELS = {
    "canonical_reports": CanonicalReport,
    "weekly_compliance_snapshots": WeeklyCompliance,
    "weekly_access_snapshots": WeeklyAccess,
    "alerts": Alert,
}


def test_table_columns_are_the_model_fields(clickhouse_root: str) -> None:
    dsn = with_database(clickhouse_root, f"schema_{uuid.uuid4().hex[:10]}")
    db = Database(dsn)
    try:
        assert db.migrate()
        assert db.migrate() == []  # idempotent
        for table, columns in TABLES.items():
            described = [r["name"] for r in db.rows(f"DESCRIBE TABLE {table}")]
            assert described == columns, table
        for table, model in MODELS.items():
            assert TABLES[table] == list(model.model_fields), table
        dead = [r["name"] for r in db.rows("DESCRIBE TABLE dead_letters")]
        assert dead[: len(DeadLetter.model_fields)] == list(DeadLetter.model_fields)
        views = {r["name"] for r in db.rows("SHOW TABLES")}
        assert {"weekly_compliance", "weekly_access", "current_reports"} <= views
        times = {r["name"]: r["type"] for r in db.rows("DESCRIBE TABLE canonical_reports")}
        assert times["occurred_at"] == "DateTime64(3, 'UTC')"
        assert times["area"] == "LowCardinality(String)"
    finally:
        db.client.command(f"DROP DATABASE IF EXISTS `{dsn_database(dsn)}`")
        db.close()
