"""The ClickHouse schema that follows from the figure sets of schemas/figures.py, applied by
:meth:`Database.migrate` after the numbered migrations on every start.

The snapshot tables and BI views were first written by hand in migrations 0001 and 0002;
those files are history now (their checksums are recorded, so they stay as applied). From
them on, each snapshot table gets a column per figure it lacks (``DEFAULT 0``: rows written
before the figure existed read as zero until the stream rewrites them), and the views are
recreated from the figure sets with the API's listing rule (:meth:`FigureSet.present_sql`).
Adding a figure therefore needs no migration file. A figure removed from the sets keeps
its column (data is never dropped here) but leaves the view.

Every name in this DDL is a constant of ours (schemas/figures.py), never user input."""

from __future__ import annotations

from clickhouse_connect.driver.client import Client

from schemas.figures import FIGURE_SETS, FigureSet


def snapshot_table(figures: FigureSet) -> str:
    """The table of the stream's weekly snapshots of one figure set."""
    return f"weekly_{figures.name}_snapshots"


def view_name(figures: FigureSet) -> str:
    """The BI view of one figure set's listed rows."""
    return f"weekly_{figures.name}"


def add_columns(figures: FigureSet, existing: set[str]) -> list[str]:
    """``ALTER TABLE`` statements for the figures the snapshot table lacks, each placed
    after the column before it so that the table keeps the metric record's field order."""
    statements = []
    previous = figures.keys[-1]
    for figure in figures.figures:
        if figure.name not in existing:
            statements.append(
                f"ALTER TABLE {snapshot_table(figures)} ADD COLUMN IF NOT EXISTS "
                f"{figure.name} {figure.column_type} DEFAULT 0 AFTER {previous}"
            )
        previous = figure.name
    return statements


def view(figures: FigureSet) -> str:
    """The BI view: the current snapshot of every listed row (rows without any current
    report are hidden, as in the API)."""
    columns = ", ".join(("week", *figures.keys, *figures.names))
    return (
        f"CREATE OR REPLACE VIEW {view_name(figures)} AS\n"
        f"SELECT {columns}\n"
        f"FROM {snapshot_table(figures)} FINAL\n"
        f"WHERE {figures.present_sql()}"
    )


def statements(figures: FigureSet, existing: set[str]) -> list[str]:
    """What makes one figure set's table and view match it, given the table's columns."""
    return [*add_columns(figures, existing), view(figures)]


def apply(client: Client, sets: tuple[FigureSet, ...] = FIGURE_SETS) -> None:
    """Bring the snapshot tables and views in line with ``sets`` (idempotent)."""
    for figures in sets:
        described = client.query(f"DESCRIBE TABLE {snapshot_table(figures)}")
        existing = {str(row[0]) for row in described.result_rows}
        for statement in statements(figures, existing):
            client.command(statement)
