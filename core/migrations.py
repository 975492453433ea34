"""Ordered, recorded, idempotent ClickHouse DDL migrations.

Files are named ``NNNN_description.sql``; each may hold several statements
separated by ``;`` at line end. Applied versions and a checksum are recorded in
``schema_migrations`` so running twice changes nothing and an edited, already
applied file is reported instead of silently diverging.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from clickhouse_connect.driver.client import Client

from core.errors import MigrationError

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_HISTORY_DDL = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version UInt32,
    name String,
    checksum String,
    applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
) ENGINE = ReplacingMergeTree(applied_at) ORDER BY version
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    def statements(self) -> list[str]:
        parts = re.split(r";\s*(?:\n|$)", self.sql)
        return [p.strip() for p in parts if _strip_comments(p).strip()]


def _strip_comments(sql: str) -> str:
    return "\n".join(line for line in sql.splitlines() if not line.strip().startswith("--"))


def discover(directory: Path) -> list[Migration]:
    """Every migration file of a directory in version order; gaps or twins are errors."""
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(
                f"migration file {path.name} is not named NNNN_description.sql",
                hint="rename it, e.g. 0003_add_alerts.sql",
            )
        found.append(Migration(int(match.group(1)), match.group(2), path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migrations share a version in {directory}")
    return found


def applied(client: Client) -> dict[int, str]:
    """Version → checksum of what has been applied to this database."""
    client.command(_HISTORY_DDL)
    rows = client.query("SELECT version, checksum FROM schema_migrations FINAL").result_rows
    return {int(v): str(c) for v, c in rows}


def migrate(client: Client, directory: Path) -> list[int]:
    """Apply pending migrations in order and return the versions applied now."""
    done = applied(client)
    newly: list[int] = []
    for migration in discover(directory):
        previous = done.get(migration.version)
        if previous is not None:
            if previous != migration.checksum:
                raise MigrationError(
                    f"migration {migration.version:04d}_{migration.name} was edited after it"
                    " was applied",
                    hint="never edit an applied migration; add a new one",
                )
            continue
        for statement in migration.statements():
            try:
                client.command(statement)
            except Exception as exc:
                raise MigrationError(
                    f"migration {migration.version:04d}_{migration.name} failed: {exc}"
                ) from exc
        client.insert(
            "schema_migrations",
            [[migration.version, migration.name, migration.checksum]],
            column_names=["version", "name", "checksum"],
        )
        newly.append(migration.version)
    return newly
