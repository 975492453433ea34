"""deploy/grafana/: the data source provisioning points at the official ClickHouse plugin
without a secret in the file, and every query of the dashboard (panels and variables), with
Grafana's macros and variables expanded as the plugin does, runs on the real ClickHouse
engine over the store's schema and gives the numbers of the query API for a known week."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.clickhouse import dsn_database, with_database
from services.store import queries
from services.store.database import Database
from services.store.rows import TABLES
from tests.support import store_seed as seed

pytestmark = pytest.mark.integration

GRAFANA = Path(__file__).resolve().parents[2] / "deploy" / "grafana"
PLUGIN = "grafana-clickhouse-datasource"
RANGE = (datetime(2016, 1, 1, tzinfo=UTC), datetime(2016, 4, 1, tzinfo=UTC))


@pytest.fixture(scope="module")
def db(clickhouse_root: str) -> Iterator[Database]:
    database = Database(with_database(clickhouse_root, f"grafana_{uuid.uuid4().hex[:12]}"))
    database.migrate()
    tables = {
        "canonical_reports": seed.CANONICAL,
        "weekly_compliance_snapshots": [s for s in seed.SNAPSHOTS if hasattr(s, "party")],
        "weekly_access_snapshots": [s for s in seed.SNAPSHOTS if not hasattr(s, "party")],
        "alerts": seed.ALERTS,
    }
    for table, models in tables.items():
        columns = TABLES[table]
        database.insert(table, [[getattr(m, c) for c in columns] for m in models], columns)
    try:
        yield database
    finally:
        database.client.command(f"DROP DATABASE IF EXISTS `{dsn_database(database.dsn)}`")
        database.close()


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        (GRAFANA / "dashboards" / "truce-compliance.json").read_text()
    )
    return loaded


def expand(sql: str, week: str = seed.WEEK) -> str:
    """Grafana's variable and the plugin's $__timeFilter macro, as they expand them."""
    start, end = (int(t.timestamp()) for t in RANGE)
    sql = re.sub(
        r"\$__timeFilter\((\w+)\)",
        lambda m: f"{m.group(1)} >= toDateTime({start}) AND {m.group(1)} <= toDateTime({end})",
        sql,
    )
    return sql.replace("${week}", week)


def panel_rows(db: Database, dashboard: dict[str, Any], title_start: str) -> list[dict[str, Any]]:
    (panel,) = [p for p in dashboard["panels"] if p["title"].startswith(title_start)]
    (target,) = panel["targets"]
    return db.rows(expand(target["rawSql"]))


def test_the_data_source_uses_the_official_plugin_and_no_secret_in_the_file() -> None:
    config = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "truce-clickhouse.yaml").read_text()
    )
    (source,) = config["datasources"]
    assert source["type"] == PLUGIN
    assert source["uid"] == "truce-clickhouse"
    assert source["jsonData"]["protocol"] == "http"
    assert source["jsonData"]["path"] == "/clickhouse"  # the query service's SQL endpoint
    assert "defaultDatabase" not in source["jsonData"]  # the endpoint serves the store's own
    for value in (*source["jsonData"].values(), *source["secureJsonData"].values()):
        if isinstance(value, str) and value not in ("http", "/clickhouse"):
            assert value.startswith("$TRUCE_GRAFANA_"), value  # from the environment


def test_the_dashboard_provider_loads_files() -> None:
    config = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "truce.yaml").read_text())
    (provider,) = config["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"].endswith("/truce")


def test_every_query_names_the_provisioned_data_source(dashboard: dict[str, Any]) -> None:
    sources = [dashboard["templating"]["list"][0]["datasource"]]
    for panel in dashboard["panels"]:
        sources += [panel["datasource"], *(t["datasource"] for t in panel["targets"])]
    assert {(s["type"], s["uid"]) for s in sources} == {(PLUGIN, "truce-clickhouse")}
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])


def test_every_query_runs_on_the_store_schema(db: Database, dashboard: dict[str, Any]) -> None:
    weeks = db.rows(dashboard["templating"]["list"][0]["query"])
    assert [w["week"] for w in weeks] == [seed.NEXT, seed.WEEK, seed.PREVIOUS]
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            assert db.rows(expand(target["rawSql"])), panel["title"]


def test_the_week_tables_equal_the_query_api(db: Database, dashboard: dict[str, Any]) -> None:
    assert panel_rows(db, dashboard, "Week ${week}: violations") == queries.weekly(db, seed.WEEK)
    assert panel_rows(db, dashboard, "Week ${week}: deliveries") == queries.access(db, seed.WEEK)


def test_the_trend_places_each_week_on_its_monday(db: Database, dashboard: dict[str, Any]) -> None:
    rows = panel_rows(db, dashboard, "Violations per week and party")
    series = {(r["time"].date().isoformat(), r["party"]): r["violations"] for r in rows}
    assert series[("2016-02-29", "gos")] == 2
    assert series[("2016-02-22", "gos")] == 3
    assert series[("2016-02-22", "hzb")] == 1
    assert series[("2016-03-07", "gos")] == 1


def test_the_approval_rate_is_the_weekly_reports(db: Database, dashboard: dict[str, Any]) -> None:
    (row,) = panel_rows(db, dashboard, "Access requests approved")
    assert (row["approved"], row["requests"]) == (2, 6)
    assert row["approval_rate"] == pytest.approx(2 / 6)


def test_alerts_show_the_latest_state(db: Database, dashboard: dict[str, Any]) -> None:
    rows = panel_rows(db, dashboard, "Alerts")
    assert len(rows) == len(seed.ALERTS)
    assert rows[0]["summary"] == "spike a-later"
