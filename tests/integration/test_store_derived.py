"""A figure added to a figure set reaches the ClickHouse schema without a migration file:
the snapshot table gains its column, the BI view and the API listing show it and list a
row by it (issue 14). The figure set is built here; the product code is the same."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from core.clickhouse import dsn_database, with_database
from schemas.figures import ACCESS, COMPLIANCE, Figure, FigureSet
from schemas.outputs import weekly_record
from services.store import derived
from services.store.database import Database
from services.store.queries import listing

pytestmark = pytest.mark.integration

ADDED = Figure("violations_any", "violation", "every current violation, exempt or not")
WIDER = FigureSet(
    COMPLIANCE.name, COMPLIANCE.keys, (*COMPLIANCE.figures[:2], ADDED, *COMPLIANCE.figures[2:])
)
WEEK = "2016-W09"


@pytest.fixture
def db(clickhouse_root: str) -> Iterator[Database]:
    dsn = with_database(clickhouse_root, f"derived_{uuid.uuid4().hex[:10]}")
    database = Database(dsn)
    database.migrate()
    try:
        yield database
    finally:
        database.client.command(f"DROP DATABASE IF EXISTS `{dsn_database(dsn)}`")
        database.close()


def _columns(db: Database, table: str) -> dict[str, str]:
    return {r["name"]: r["type"] for r in db.rows(f"DESCRIBE TABLE {table}")}


def test_an_added_figure_becomes_a_column_in_the_record_order_and_a_view_column(
    db: Database,
) -> None:
    before = {**COMPLIANCE.zero(), "violations": 1, "killed": 2, "injured": 3}
    db.insert(  # a snapshot written before the figure existed
        "weekly_compliance_snapshots",
        [[WEEK, "madaya", "gos", *before.values(), 1]],
        ["week", "area", "party", *before, "version"],
    )
    derived.apply(db.client, (WIDER, ACCESS))
    derived.apply(db.client, (WIDER, ACCESS))  # idempotent

    record = list(weekly_record(WIDER, "test").model_fields)
    table = _columns(db, "weekly_compliance_snapshots")
    assert list(table) == record == ["week", "area", "party", *WIDER.names, "version"]
    assert table[ADDED.name] == ADDED.column_type
    assert list(_columns(db, "weekly_compliance")) == ["week", "area", "party", *WIDER.names]
    (old,) = db.rows("SELECT * FROM weekly_compliance")
    assert old[ADDED.name] == 0  # DEFAULT 0 until the stream rewrites the row


def test_the_view_and_the_api_listing_list_a_row_by_the_added_figure(db: Database) -> None:
    derived.apply(db.client, (WIDER, ACCESS))
    counts = {**WIDER.zero(), ADDED.name: 1}  # counted by the new figure alone
    db.insert(
        "weekly_compliance_snapshots",
        [[WEEK, "madaya", "gos", *counts.values(), 1]],
        ["week", "area", "party", *counts, "version"],
    )
    assert ADDED.name in WIDER.present_sql()
    (viewed,) = db.rows("SELECT * FROM weekly_compliance")
    assert viewed[ADDED.name] == 1
    listed = db.rows(listing(WIDER), week=WEEK, area="", party="")
    assert listed == [{"area": "madaya", "party": "gos", **counts}]


def test_a_figure_dropped_from_the_set_keeps_its_column_and_leaves_the_view(
    db: Database,
) -> None:
    derived.apply(db.client, (WIDER, ACCESS))
    derived.apply(db.client)
    assert ADDED.name in _columns(db, "weekly_compliance_snapshots")
    assert list(_columns(db, "weekly_compliance")) == ["week", "area", "party", *COMPLIANCE.names]
