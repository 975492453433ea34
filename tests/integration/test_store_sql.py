"""SQL on the live store: the real store process (its own embedded chDB, which no second
process can open) fed through Kafka serves ClickHouse's HTTP interface under /clickhouse.
clickhouse-connect's own client and a Grafana-style request read the BI views and reference
tables while the store runs; every forbidden thing is refused with a ClickHouse error and
leaves the store as it was."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import clickhouse_connect
import httpx
import pytest
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError

from core.kafka import ensure_topics
from core.settings import Settings
from schemas import topic_names
from schemas.reference import area_list, areas, party_list
from services.verify import operator_key
from tests.conftest import isolated_settings
from tests.integration.test_grafana_provisioning import GRAFANA, expand
from tests.support import store_seed as seed
from tests.support.services import running_module, service_env

pytestmark = pytest.mark.integration


@dataclass
class Store:
    settings: Settings
    keys: dict[str, str]

    def get(self, path: str, **params: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.keys['monitor']}"}
        response = httpx.get(self.settings.query_url + path, params=params, headers=headers)
        assert response.status_code == 200, response.text
        return response.json()

    def post(self, sql: str, who: str = "monitor", **params: Any) -> httpx.Response:
        """A Grafana-style request: the SQL as the POST body, the key in X-ClickHouse-Key."""
        headers = {"X-ClickHouse-User": "grafana", "X-ClickHouse-Key": self.keys[who]}
        return httpx.post(
            f"{self.settings.query_url}/clickhouse/", content=sql, params=params, headers=headers
        )

    def client(self, who: str = "monitor") -> Client:
        return clickhouse_connect.get_client(
            host=self.settings.bind_host,
            port=self.settings.query_port,
            username="analyst",
            password=self.keys[who],
            proxy_path="/clickhouse",
        )


@pytest.fixture(scope="module")
def store(bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    home = tmp_path_factory.mktemp("sql-home")
    prefix = f"t{uuid.uuid4().hex[:8]}."
    settings = isolated_settings(
        home, kafka_bootstrap=bootstrap, topic_prefix=prefix, sql_max_rows=5000, sql_timeout_s=2
    )
    names = topic_names(prefix)
    ensure_topics(bootstrap, names.all(), partitions=2, compacted=[names.events, names.metrics])
    keys = seed.store_keys(settings)
    seed.publish(bootstrap, names)
    with running_module(
        "services.store", service_env(settings), f"{settings.query_url}/readyz", home / "s.log"
    ):
        seed.wait_stored(bootstrap, prefix)
        yield Store(settings, keys)


def test_clickhouse_connect_reads_the_bi_views_of_the_running_store(store: Store) -> None:
    assert store.settings.clickhouse_url.startswith("chdb://")  # the embedded default
    client = store.client()
    assert client.server_version.startswith("26.")
    result = client.query(
        "SELECT * EXCEPT week FROM weekly_compliance WHERE week = {week:String} "
        "ORDER BY area, party",
        parameters={"week": seed.WEEK},
    )
    api = store.get("/v1/metrics/weekly", week=seed.WEEK)["rows"]
    assert api
    assert list(result.named_results()) == api
    access = client.query(
        "SELECT * EXCEPT week FROM weekly_access WHERE week = %(week)s ORDER BY area",
        parameters={"week": seed.WEEK},
    )
    assert list(access.named_results()) == store.get("/v1/metrics/access", week=seed.WEEK)["rows"]
    assert client.command("SELECT count() FROM current_reports") > 0
    client.close()


def test_reference_tables_carry_the_names_of_the_codes(store: Store) -> None:
    client = store.client("admin")
    rows = client.query("SELECT code, name, governorate FROM areas ORDER BY code").result_rows
    assert rows == sorted((a.code, a.name, a.governorate) for a in area_list())
    assert client.command("SELECT count() FROM parties") == len(party_list())
    joined = client.query(
        "SELECT a.name AS area_name, p.name AS party_name, sum(violations) AS v "
        "FROM weekly_compliance AS w JOIN areas AS a ON a.code = w.area "
        "JOIN parties AS p ON p.code = w.party WHERE week = {w:String} "
        "GROUP BY area_name, party_name ORDER BY area_name, party_name",
        parameters={"w": seed.WEEK},
    ).result_rows
    api = store.get("/v1/metrics/weekly", week=seed.WEEK)["rows"]
    names = {p.code: p.name for p in party_list()}
    expected: dict[tuple[str, str], int] = {}
    for row in api:
        key = (areas()[row["area"]].name, names[row["party"]])
        expected[key] = expected.get(key, 0) + row["violations"]
    assert [(a, p, v) for a, p, v in joined] == sorted((*k, v) for k, v in expected.items())


def test_a_grafana_style_post_with_format_json(store: Store) -> None:
    response = store.post(
        f"SELECT area, party, violations FROM weekly_compliance "
        f"WHERE week = '{seed.WEEK}' ORDER BY area, party FORMAT JSON"
    )
    assert response.status_code == 200, response.text
    assert response.headers["X-ClickHouse-Format"] == "JSON"
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["X-ClickHouse-Timezone"]
    assert response.headers["X-ClickHouse-Query-Id"]
    assert json.loads(response.headers["X-ClickHouse-Summary"])["written_rows"] == "0"
    body = response.json()
    assert [m["name"] for m in body["meta"]] == ["area", "party", "violations"]
    api = store.get("/v1/metrics/weekly", week=seed.WEEK)["rows"]
    assert body["data"] == [
        {"area": r["area"], "party": r["party"], "violations": r["violations"]} for r in api
    ]


def test_every_grafana_dashboard_query_runs_through_the_endpoint(store: Store) -> None:
    """The provisioned dashboard's queries, as the plugin sends them (expanded, FORMAT
    JSON), against the running store: `truce up` needs no ClickHouse server for Grafana."""
    dashboard = json.loads((GRAFANA / "dashboards" / "truce-compliance.json").read_text())
    variable = store.post(dashboard["templating"]["list"][0]["query"] + " FORMAT JSON")
    assert [r["week"] for r in variable.json()["data"]] == [seed.NEXT, seed.WEEK, seed.PREVIOUS]
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            response = store.post(expand(target["rawSql"]) + "\nFORMAT JSON")
            assert response.status_code == 200, (panel["title"], response.text)
            assert response.json()["data"], panel["title"]


def test_the_catalogue_lists_only_the_served_tables(store: Store) -> None:
    """Grafana's query builder lists databases, tables and columns: only ours appear."""
    client = store.client()
    database = client.command("SELECT currentDatabase()")
    served = {"alerts", "areas", "current_reports", "parties", "weekly_access"}
    served.add("weekly_compliance")
    tables = {row[0] for row in client.query("SELECT name FROM system.tables").result_rows}
    assert tables == served
    assert {r[0] for r in client.query("SHOW TABLES").result_rows} == served
    assert client.query("SELECT name FROM system.databases").result_rows == [(database,)]
    columns = client.query("SELECT DISTINCT table FROM system.columns").result_rows
    assert {row[0] for row in columns} == served
    with pytest.raises(DatabaseError):
        client.query("SHOW TABLES FROM system")
    client.close()


def test_get_with_query_parameter_default_format_and_basic_auth(store: Store) -> None:
    basic = base64.b64encode(f"bi:{store.keys['monitor']}".encode()).decode()
    response = httpx.get(
        f"{store.settings.query_url}/clickhouse",
        params={
            "query": "SELECT code FROM parties ORDER BY code LIMIT 2",
            "default_format": "CSVWithNames",
            "query_id": "q-1",
        },
        headers={"Authorization": f"Basic {basic}"},
    )
    assert response.status_code == 200, response.text
    codes = sorted(p.code for p in party_list())[:2]
    assert response.text.splitlines() == ['"code"', *(f'"{c}"' for c in codes)]
    assert response.headers["X-ClickHouse-Query-Id"] == "q-1"
    assert httpx.get(f"{store.settings.query_url}/clickhouse/ping").text == "Ok.\n"


@pytest.mark.parametrize(
    ("who", "status", "code"),
    [("partner", 403, 497), ("taskforce", 403, 497), ("revoked", 401, 516), (None, 401, 516)],
)
def test_only_monitor_and_admin_keys_run_sql(
    store: Store, who: str | None, status: int, code: int
) -> None:
    keys = {**store.keys, "partner": store.keys["sarc"]}
    headers = {"X-ClickHouse-Key": keys[who]} if who else {}
    response = httpx.post(
        f"{store.settings.query_url}/clickhouse", content="SELECT 1", headers=headers
    )
    assert response.status_code == status
    assert response.headers["X-ClickHouse-Exception-Code"] == str(code)
    assert response.text.startswith(f"Code: {code}. DB::Exception: ")


OUTFILE = Path(tempfile.gettempdir()) / f"truce-sql-{uuid.uuid4().hex}"
FORBIDDEN = f"""
file()          | 497 | table function file  | SELECT * FROM file('/etc/passwd', 'LineAsString')
file() scalar   | 497 | function file        | SELECT file('/etc/hostname')
url()           | 497 | table function url   | SELECT * FROM url('http://127.0.0.1:9/x', CSV)
remote()        | 497 | function remote      | SELECT * FROM remote('127.0.0.1', system.one)
s3()            | 497 | table function s3    | SELECT * FROM s3('http://127.0.0.1:9/b/k', CSV)
executable()    | 497 | function executable  | SELECT * FROM executable('x.sh', TSV, 'a String')
system table    | 497 | system.parts is not  | SELECT name FROM system.parts
base table      | 497 | reports is not       | SELECT * FROM canonical_reports
base in WITH    | 497 | raw_reports is not   | WITH r AS (SELECT * FROM raw_reports) SELECT 1 FROM r
base as scalar  | 497 | reports is not       | SELECT (SELECT any(report_id) FROM canonical_reports)
base as IN set  | 497 | migrations, which    | SELECT 'x' IN schema_migrations
INSERT          | 164 | readonly             | INSERT INTO areas SELECT * FROM areas
CREATE          | 164 | readonly             | CREATE TABLE evil (a UInt8) ENGINE = Memory
DROP            | 164 | readonly             | DROP TABLE areas
ALTER           | 164 | readonly             | ALTER TABLE areas DELETE WHERE 1
SET             | 164 | readonly             | SET readonly = 0
SYSTEM          | 164 | readonly             | SYSTEM DROP MARK CACHE
SETTINGS ro     | 164 | readonly             | SELECT 1 SETTINGS readonly = 0
SETTINGS limit  | 164 | readonly             | SELECT * FROM numbers(9) SETTINGS max_result_rows = 0
multi-statement |  62 | multi-statements     | SELECT 1; DROP TABLE areas
INTO OUTFILE    | 164 | into outfile         | SELECT 1 INTO OUTFILE '{OUTFILE}'
"""
"""name | ClickHouse error code | words of the message | the statement"""
REFUSALS = {
    name: (sql, int(code), words)
    for name, code, words, sql in (
        (part.strip() for part in line.split("|", 3)) for line in FORBIDDEN.strip().splitlines()
    )
}


@pytest.mark.parametrize("name", list(REFUSALS))
def test_forbidden_queries_are_refused_and_change_nothing(store: Store, name: str) -> None:
    sql, code, words = REFUSALS[name]
    client = store.client()
    before = client.command("SELECT count() FROM areas")
    with pytest.raises(DatabaseError) as raised:
        client.query(sql)
    assert raised.value.code == code, str(raised.value)
    assert words.lower() in str(raised.value).lower()
    response = store.post(sql)
    assert response.status_code in (400, 403), response.text
    assert response.headers["X-ClickHouse-Exception-Code"] == str(code)
    assert client.command("SELECT count() FROM areas") == before
    assert client.command("SELECT getSetting('readonly')") == 1
    assert not OUTFILE.exists()
    client.close()


def test_a_settings_parameter_cannot_change_the_session(store: Store) -> None:
    response = store.post("SELECT 1", readonly="0")
    assert response.status_code == 403
    assert "Cannot modify 'readonly'" in response.text
    response = store.post("SELECT 1", max_result_rows="0")  # a client's limit: ours applies
    assert response.status_code == 200, response.text


def test_block_compression_is_refused_not_answered_uncompressed(store: Store) -> None:
    response = store.post("SELECT 1", compress="1")
    assert response.status_code == 400
    assert "compress=1" in response.text
    asked = httpx.post(
        f"{store.settings.query_url}/clickhouse",
        content="SELECT displayName(), version(), revision(), timezone()",  # clickhouse-go's
        headers={"X-ClickHouse-Key": store.keys["monitor"], "X-ClickHouse-Format": "JSONEachRow"},
    )
    assert asked.status_code == 200, asked.text
    assert asked.headers["X-ClickHouse-Format"] == "JSONEachRow"
    assert json.loads(asked.text)["version()"].startswith("26.")


def test_the_row_and_time_limits_hold(store: Store) -> None:
    rows = store.post("SELECT number FROM numbers(5001)")
    assert rows.status_code == 500
    assert rows.headers["X-ClickHouse-Exception-Code"] == "396"  # TOO_MANY_ROWS_OR_BYTES
    assert store.post("SELECT number FROM numbers(5000)").text.count("\n") == 5000
    slow = store.post("SELECT count() FROM numbers_mt(100000000000)")
    assert slow.headers["X-ClickHouse-Exception-Code"] == "159", slow.text  # TIMEOUT_EXCEEDED


def truce_sql(store: Store, *args: str, who: str = "monitor") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **service_env(store.settings), "TRUCE_API_KEY": store.keys[who]}
    return subprocess.run(
        [sys.executable, "-m", "services.cli", "sql", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_truce_sql_prints_a_table_or_csv(store: Store) -> None:
    sql = "SELECT code, name FROM parties ORDER BY code"
    done = truce_sql(store, sql)
    assert done.returncode == 0, done.stderr
    for party in party_list():
        assert party.code in done.stdout
    assert f"{len(party_list())} rows" in done.stderr
    as_csv = truce_sql(store, sql, "--format", "csv")
    assert as_csv.returncode == 0, as_csv.stderr
    expected = [f'"{p.code}","{p.name}"' for p in sorted(party_list(), key=lambda p: p.code)]
    assert as_csv.stdout.splitlines() == ['"code","name"', *expected]
    as_tsv = truce_sql(store, sql, "--format", "tsv")
    assert as_tsv.stdout.splitlines()[0] == "code\tname"


def test_truce_sql_refusals_are_one_line_and_a_hint(store: Store) -> None:
    done = truce_sql(store, "SELECT * FROM canonical_reports")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 2, done.stderr
    assert lines[0].startswith("error: Code: 497.")
    assert "canonical_reports is not served" in lines[0]
    assert lines[1].startswith("hint: the SQL endpoint reads the BI views")
    partner = truce_sql(store, "SELECT 1", who="sarc")
    assert partner.returncode == 1
    assert "a partner key may not run SQL" in partner.stderr


def test_clickhouse_connect_and_grafana_against_truce_up(tmp_path: Path) -> None:
    """`truce up` unchanged (embedded chDB owned by the query service): clickhouse-connect and
    a Grafana-style request get answers through /clickhouse while the stack runs."""
    settings = isolated_settings(tmp_path / "home")
    env = {**os.environ, **service_env(settings)}

    def truce(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "services.cli", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)

    try:
        assert truce("up", "--detach").returncode == 0
        key = operator_key(settings)
        client = clickhouse_connect.get_client(
            host=settings.bind_host, port=settings.query_port, username="bi", password=key,
            proxy_path="/clickhouse",
        )  # fmt: skip
        assert client.command("SELECT count() FROM areas") == len(area_list())
        assert client.query("SELECT * FROM weekly_compliance").result_rows == []
        grafana = Store(settings, {"monitor": key}).post(
            "SELECT name FROM parties ORDER BY name FORMAT JSON"
        )
        assert grafana.status_code == 200, grafana.text
        assert [r["name"] for r in grafana.json()["data"]] == sorted(p.name for p in party_list())
        client.close()
    finally:
        assert truce("down").returncode == 0
