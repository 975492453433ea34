"""GET /v1/weekly-report/{week}: every format parses and carries the numbers of a known
week (tests/support/store_seed.py) written into the real ClickHouse engine by the store's
real sink from the real broker; content negotiation, errors and roles (CONTRACT section 1)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from html.parser import HTMLParser
from typing import Any

import hxl
import pytest
from fastapi.testclient import TestClient
from httpx import Response
from jsonschema import Draft202012Validator
from markdown_it import MarkdownIt
from rich.console import Console
from rich.markdown import Markdown

from schemas import area_list
from schemas.jsonschema import SCHEMA_DIR
from schemas.weekly_report import WeeklyReport
from services.store.weekly.render import COLUMNS
from tests.support import store_seed as seed
from tests.support.problems import assert_problem

pytestmark = pytest.mark.integration

PATH = f"/v1/weekly-report/{seed.WEEK}"


@dataclass
class Api:
    client: TestClient
    keys: dict[str, str]

    def get(self, path: str, who: str | None, accept: str | None = None, **params: Any) -> Any:
        headers = {} if who is None else {"Authorization": f"Bearer {self.keys.get(who, who)}"}
        if accept is not None:
            headers["Accept"] = accept
        response: Response = self.client.get(path, headers=headers, params=params)
        return response


@pytest.fixture(scope="module")
def api(
    bootstrap: str, clickhouse_root: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Api]:
    home = tmp_path_factory.mktemp("weekly-home")
    with seed.in_process_store(bootstrap, clickhouse_root, home, seed.publish) as running:
        yield Api(running.client, running.keys)


@pytest.fixture(scope="module")
def report(api: Api) -> dict[str, Any]:
    response = api.get(PATH, "monitor", format="json")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# -- JSON ----------------------------------------------------------------------------------
def test_json_matches_the_published_schema(report: dict[str, Any]) -> None:
    schema = json.loads((SCHEMA_DIR / "weekly-report.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    errors = sorted(Draft202012Validator(schema).iter_errors(report), key=str)
    assert not errors, errors
    WeeklyReport.model_validate(report)
    bad = {**report, "access": {**report["access"], "cumulative_approval_rate": 2}}
    assert list(Draft202012Validator(schema).iter_errors(bad))  # the schema does constrain


def test_json_header(report: dict[str, Any]) -> None:
    assert report["week"] == seed.WEEK
    assert report["previous_week"] == seed.PREVIOUS
    assert report["period"] == {"start": "2016-02-29", "end": "2016-03-06"}
    assert report["generated_at"].endswith("Z")


def test_violations_per_party_with_change_and_verified_share(report: dict[str, Any]) -> None:
    section = report["violations"]
    fields = ("party", "violations", "previous_week", "change", "verified", "verified_share",
              "killed", "injured")  # fmt: skip
    rows = [tuple(p[f] for f in fields) for p in section["parties"]]
    assert rows == [
        ("gos", 2, 3, -1, 1, 0.5, 2, 6),  # the retracted one does not count
        ("ru", 1, 0, 1, 1, 1.0, 1, 0),
        ("hzb", 0, 1, -1, 0, None, 0, 0),  # only last week
    ]
    assert section["parties"][0]["name"] == "Government of Syria (Syrian Arab Armed Forces)"
    total = section["total"]
    assert (total["party"], total["violations"], total["previous_week"], total["change"]) == (
        "total", 3, 4, -1,
    )  # fmt: skip
    assert (total["verified"], total["verified_share"]) == (2, 0.6667)
    assert (total["killed"], total["injured"]) == (3, 6)
    assert section["exempt"] == 2


def test_exempt_incidents_are_listed_separately(report: dict[str, Any]) -> None:
    assert report["exempt"] == [
        {"report_id": "v-isil-1", "area": "madaya", "party": "isil", "target": "civilians",
         "reason": "designated_perpetrator", "occurred_at": "2016-03-02T10:00:00Z",
         "killed": 3, "injured": 0, "verification": "unverified"},
        {"report_id": "v-raqqa-1", "area": "raqqa", "party": "gos", "target": "civilians",
         "reason": "designation:des-raqqa", "occurred_at": "2016-03-06T10:00:00Z",
         "killed": 1, "injured": 2, "verification": "unverified"},
    ]  # fmt: skip


def test_besieged_areas_coverage_and_days_since_delivery(report: dict[str, Any]) -> None:
    by_area = {b["area"]: b for b in report["besieged"]}
    assert list(by_area) == [a.code for a in seed_besieged()]
    assert by_area["madaya"] == {
        "area": "madaya", "name": "Madaya", "governorate": "Rural Damascus",
        "deliveries_completed": 2, "deliveries_partial": 1, "deliveries_blocked": 1,
        "deliveries_cancelled": 0, "beneficiaries": 400, "people_in_need": 40000,
        "coverage": 0.01, "last_completed_delivery": "2016-03-02",
        "days_since_last_completed_delivery": 4,
    }  # fmt: skip
    fouah = by_area["fouah"]
    assert (fouah["deliveries_completed"], fouah["deliveries_blocked"]) == (0, 1)
    assert (fouah["beneficiaries"], fouah["coverage"]) == (0, 0.0)
    assert fouah["last_completed_delivery"] == "2016-02-16"
    assert fouah["days_since_last_completed_delivery"] == 19
    kafrayah = by_area["kafrayah"]
    assert kafrayah["last_completed_delivery"] is None
    assert kafrayah["days_since_last_completed_delivery"] is None
    assert kafrayah["people_in_need"] == 7500


def seed_besieged() -> list[Any]:
    from schemas import area_list

    return [a for a in area_list() if a.besieged]


def test_access_requests_in_the_week_and_cumulative(report: dict[str, Any]) -> None:
    assert report["access"] == {
        "week": {"submitted": 3, "approved": 1, "denied": 0, "withdrawn": 1, "pending": 1},
        "cumulative": {"submitted": 6, "approved": 2, "denied": 1, "withdrawn": 1, "pending": 2},
        "cumulative_approval_rate": 0.3333,
    }


def test_alerts_active_during_the_week(report: dict[str, Any]) -> None:
    assert [a["fingerprint"] for a in report["alerts"]] == seed.WEEK_ALERTS
    new = report["alerts"][-1]
    assert new["state"] == "firing"
    assert new["reports"] == 2
    assert new["starts_at"] == "2016-03-01T10:00:00Z"


def test_late_and_revised_reports_since_the_previous_edition(report: dict[str, Any]) -> None:
    assert report["data_quality"] == {
        "since": "2016-02-29T00:00:00Z",
        "until": "2016-03-07T00:00:00Z",
        "edition": None,
        "late_reports": seed.LATE_REPORTS,
        "revised_reports": seed.REVISED_REPORTS,
    }


def test_the_report_agrees_with_the_weekly_metrics(api: Api, report: dict[str, Any]) -> None:
    """Counted from the canonical reports, the report equals the stream's published metrics
    (CONTRACT section 3) for the same week."""
    for week, key in ((seed.WEEK, "violations"), (seed.PREVIOUS, "previous_week")):
        rows = api.get("/v1/metrics/weekly", "monitor", week=week).json()["rows"]
        per_party: dict[str, int] = {}
        for row in rows:
            per_party[row["party"]] = per_party.get(row["party"], 0) + row["violations"]
        assert {p["party"]: p[key] for p in report["violations"]["parties"] if p[key]} == {
            party: n for party, n in per_party.items() if n
        }
        if week == seed.WEEK:
            assert sum(r["violations_exempt"] for r in rows) == report["violations"]["exempt"]
            assert sum(r["killed"] for r in rows) == report["violations"]["total"]["killed"]
    access = api.get("/v1/metrics/access", "monitor", week=seed.WEEK).json()["rows"]
    madaya = next(r for r in access if r["area"] == "madaya")
    besieged = next(b for b in report["besieged"] if b["area"] == "madaya")
    assert madaya["beneficiaries"] == besieged["beneficiaries"]
    assert madaya["deliveries_completed"] == besieged["deliveries_completed"]
    week = report["access"]["week"]
    assert sum(r["requests_approved"] for r in access) == week["approved"]
    assert sum(r["requests_submitted"] for r in access) == week["pending"]
    assert api.get("/v1/verify", "monitor", week=seed.WEEK).json()["ok"] is True


def test_an_empty_week_is_a_report_of_zeros(api: Api) -> None:
    body = api.get("/v1/weekly-report/2015-W53", "monitor").json()
    assert body["period"] == {"start": "2015-12-28", "end": "2016-01-03"}
    assert body["violations"]["parties"] == []
    assert body["violations"]["total"]["verified_share"] is None
    assert body["exempt"] == []
    assert body["access"]["cumulative_approval_rate"] is None
    assert all(b["beneficiaries"] == 0 for b in body["besieged"])
    assert all(b["days_since_last_completed_delivery"] is None for b in body["besieged"])


# -- CSV and HXL ---------------------------------------------------------------------------
def csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_csv_has_one_header_and_the_numbers(api: Api, report: dict[str, Any]) -> None:
    response = api.get(PATH, "monitor", format="csv")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == (
        'attachment; filename="truce-weekly-2016-W09.csv"'
    )
    header, *rows = csv_rows(response.text)
    assert header == [name for name, _ in COLUMNS]
    records = [dict(zip(header, row, strict=True)) for row in rows]
    assert all(r["week"] == seed.WEEK and r["period_start"] == "2016-02-29" for r in records)
    sections = [r["section"] for r in records]
    assert sections.count("violations") == 4  # three parties and the total
    assert sections.count("exempt") == 2
    assert sections.count("besieged") == len(report["besieged"])
    assert sections.count("alert") == 3
    gos = next(r for r in records if r["section"] == "violations" and r["party"] == "gos")
    assert (gos["violations"], gos["previous_week"], gos["change"]) == ("2", "3", "-1")
    assert (gos["verified_share"], gos["killed"], gos["injured"]) == ("0.5", "2", "6")
    madaya = next(r for r in records if r["section"] == "besieged" and r["area"] == "madaya")
    assert (madaya["beneficiaries"], madaya["people_in_need"], madaya["coverage"]) == (
        "400", "40000", "0.01",
    )  # fmt: skip
    assert madaya["days_since_last_completed_delivery"] == "4"
    assert madaya["governorate"] == "Rural Damascus"
    kafrayah = next(r for r in records if r["section"] == "besieged" and r["area"] == "kafrayah")
    assert kafrayah["days_since_last_completed_delivery"] == ""
    cumulative = next(r for r in records if r["section"] == "access_cumulative")
    assert (cumulative["requests_submitted"], cumulative["requests_approved"]) == ("6", "2")
    assert cumulative["approval_rate"] == "0.3333"
    quality = next(r for r in records if r["section"] == "data_quality")
    assert (quality["late_reports"], quality["revised_reports"]) == ("1", "1")
    exempt = next(r for r in records if r["section"] == "exempt")
    assert (exempt["report_id"], exempt["description"]) == ("v-isil-1", "designated_perpetrator")
    assert exempt["occurred_at"] == "2016-03-02T10:00:00Z"
    # events: no incident links the seed's reports, so each non-exempt one is an event
    events = next(r for r in records if r["section"] == "events" and r["party"] == "total")
    assert (events["reports"], events["events"], events["corroborated"]) == ("3", "3", "0")
    assert (events["killed"], events["injured"]) == ("3", "6")
    (sources,) = [r for r in records if r["section"] == "event_sources"]
    assert (sources["sources"], sources["events"]) == ("1", "3")
    (exempt_events,) = [r for r in records if r["section"] == "events_exempt"]
    assert exempt_events["events"] == "2"


def test_hxl_adds_a_row_of_hashtags_an_hxl_parser_reads(api: Api) -> None:
    response = api.get(PATH, "taskforce", format="hxl")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == (
        'attachment; filename="truce-weekly-2016-W09.hxl.csv"'
    )
    header, tags, *rows = csv_rows(response.text)
    assert header == [name for name, _ in COLUMNS]
    plain = csv_rows(api.get(PATH, "taskforce", format="csv").text)
    assert rows == plain[1:]  # same data, one more header row
    for wanted in ("#date", "#adm1", "#loc", "#group", "#affected+killed", "#reached", "#inneed"):
        assert any(t == wanted or t.startswith(wanted + "+") for t in tags), wanted

    dataset = hxl.data(io.BytesIO(response.content), hxl.InputOptions(allow_local=True))
    assert [c.display_tag for c in dataset.columns] == tags
    parsed = list(dataset)
    assert len(parsed) == len(rows)
    madaya = next(r for r in parsed if r.get("#loc+code") == "madaya"
                  and r.get("#meta+section") == "besieged")  # fmt: skip
    assert madaya.get("#reached") == "400"
    assert madaya.get("#inneed") == "40000"
    assert madaya.get("#adm1+name") == "Rural Damascus"
    assert madaya.get("#adm1+code") == "SY03"  # OCHA's P-code of the governorate
    killed = {r.get("#group+code"): r.get("#affected+killed") for r in parsed
              if r.get("#meta+section") == "violations"}  # fmt: skip
    assert killed == {"gos": "2", "ru": "1", "hzb": "0", "total": "3"}


def test_hxl_passes_libhxl_s_validation_with_the_core_schema(api: Api) -> None:
    """What `hxlvalidate` does: the HXL core schema (dates are dates, numbers numbers,
    ...) over every row; the week is a label (#meta+week), its days are #date."""
    response = api.get(PATH, "monitor", format="hxl")
    errors: list[Any] = []
    schema = hxl.schema(callback=errors.append)
    dataset = hxl.data(io.BytesIO(response.content), hxl.InputOptions(allow_local=True))
    schema.validate(dataset)
    refused = [(e.rule.tag_pattern, e.message, e.value) for e in errors
               if e.rule.severity == "error"]  # fmt: skip
    assert refused == []
    rows = list(hxl.data(io.BytesIO(response.content), hxl.InputOptions(allow_local=True)))
    named = [r for r in rows if r.get("#adm1+name")]
    assert named
    assert all((r.get("#adm1+code") or "").startswith("SY") for r in named)


# -- Markdown and HTML ---------------------------------------------------------------------
def test_markdown_tables_parse_and_render_in_a_terminal(api: Api) -> None:
    response = api.get(PATH, "monitor", format="md")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/markdown; charset=utf-8"
    assert response.headers["content-disposition"] == (
        'inline; filename="truce-weekly-2016-W09.md"'
    )
    text = response.text
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    assert sum(t.type == "table_open" for t in tokens) == 7  # events and coverage included
    cells = [t.content for t in tokens if t.type == "inline"]
    gos = cells.index("Government of Syria (Syrian Arab Armed Forces) (`gos`)")
    assert cells[gos + 1 : gos + 8] == ["2", "3", "-1", "1", "50 %", "2", "6"]
    # the events table: no incident links the seed's reports, each is an event of its own
    events = cells.index("Government of Syria (Syrian Arab Armed Forces) (`gos`)", gos + 1)
    assert cells[events + 1 : events + 7] == ["2", "2", "0", "0 %", "2", "6"]
    assert "**3**" in cells  # total violations
    (summary,) = [c for c in cells if "24 h" in c]  # a pipe cannot break the table
    assert summary.startswith("7 violations in")

    console = Console(record=True, width=200, color_system=None)
    console.print(Markdown(text))
    shown = console.export_text()
    assert "Truce weekly report 2016-W09" in shown
    assert "Cumulative approval rate: 33 % (2 of 6 requests approved)" in shown
    assert "40,000" in shown
    assert "7 violations in <b>Madaya</b> | 24 h" in shown  # as written, not as markup
    assert "<b>" not in MarkdownIt("commonmark").enable("table").render(text)


class _Cells(HTMLParser):
    """The text of every table row, keyed by its data-party / data-area attribute (an
    events row by "events:" and its data-events attribute)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, list[str]] = {}
        self._key: str | None = None
        self._in_cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "tr":
            self._key = found.get("data-party") or found.get("data-area")
            if found.get("data-events"):
                self._key = "events:" + str(found["data-events"])
            if self._key:
                self.rows[self._key] = []
        elif tag == "td" and self._key:
            self._in_cell = True
            self.rows[self._key].append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._in_cell = False
        elif tag == "tr":
            self._key = None

    def handle_data(self, data: str) -> None:
        if self._in_cell and self._key:
            self.rows[self._key][-1] += data


def test_html_is_printable_and_escapes_what_partners_wrote(api: Api) -> None:
    response = api.get(PATH, "admin", format="html")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["content-disposition"] == (
        'inline; filename="truce-weekly-2016-W09.html"'
    )
    page = response.text
    assert "@media print" in page
    assert "<b>Madaya</b>" not in page
    assert "7 violations in &lt;b&gt;Madaya&lt;/b&gt;" in page
    assert "://" not in page  # nothing to fetch when printed
    cells = _Cells()
    cells.feed(page)
    assert cells.rows["gos"][1:] == ["2", "3", "-1", "1", "50 %", "2", "6"]
    assert cells.rows["total"][1:] == ["3", "4", "-1", "2", "67 %", "3", "6"]
    assert cells.rows["madaya"][2:] == ["2", "1", "1", "400", "40,000", "1 %", "4"]
    assert cells.rows["kafrayah"][-1] == "never"
    # events: no incident links the seed's reports, so each is an event of its own
    assert cells.rows["events:gos"][1:] == ["2", "2", "0", "0 %", "2", "6"]
    assert cells.rows["events:total"][1:] == ["3", "3", "0", "0 %", "3", "6"]


# -- negotiation, errors, roles ------------------------------------------------------------
@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        (None, "application/json"),
        ("*/*", "application/json"),
        ("text/markdown", "text/markdown; charset=utf-8"),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
         "text/html; charset=utf-8"),
        ("text/csv;q=0.5, text/markdown;q=0.9", "text/markdown; charset=utf-8"),
        ("text/csv", "text/csv; charset=utf-8"),
        ("image/png", "application/json"),
        ("text/html;q=0, application/json", "application/json"),
    ],
)  # fmt: skip
def test_without_format_the_accept_header_chooses(
    api: Api, accept: str | None, media_type: str
) -> None:
    response = api.get(PATH, "monitor", accept=accept)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == media_type
    assert "accept" in response.headers["vary"].lower()


def test_the_format_parameter_wins_over_accept(api: Api) -> None:
    response = api.get(PATH, "monitor", accept="text/html", format="json")
    assert response.headers["content-type"] == "application/json"
    assert "content-disposition" not in response.headers
    assert response.json()["week"] == seed.WEEK


@pytest.mark.parametrize("fmt", ["xml", "JSON", "pdf", "", "csv "])
def test_an_unknown_format_is_422(api: Api, fmt: str) -> None:
    body = assert_problem(api.get(PATH, "monitor", format=fmt), 422)
    assert body["errors"][0]["loc"] == ["query", "format"]


@pytest.mark.parametrize("week", ["2016-W60", "2016-W00", "2016-W53", "2016-W9", "2016W09",
                                  "2016-w09", "last", "2016-W09 "])  # fmt: skip
def test_a_bad_week_is_422(api: Api, week: str) -> None:
    body = assert_problem(api.get(f"/v1/weekly-report/{week}", "monitor"), 422)
    assert body["errors"][0]["loc"] == ["path", "week"]


def test_roles(api: Api) -> None:
    for reader in ("monitor", "taskforce", "admin"):
        for fmt in ("json", "md", "html", "csv", "hxl"):
            assert api.get(PATH, reader, format=fmt).status_code == 200, (reader, fmt)
    assert_problem(api.get(PATH, "sarc"), 403)
    assert_problem(api.get(PATH, None), 401)
    assert_problem(api.get(PATH, "revoked"), 401)
    assert_problem(api.get(PATH, "truce_notakeyatall0000000000000000000"), 401)
    # authentication comes before parameter checks: nothing leaks to a stranger
    assert_problem(api.get("/v1/weekly-report/nonsense", None, format="xml"), 401)


def test_period_dates_are_monday_to_sunday(report: dict[str, Any]) -> None:
    start = date.fromisoformat(report["period"]["start"])
    end = date.fromisoformat(report["period"]["end"])
    assert (start.isoweekday(), end.isoweekday(), (end - start).days) == (1, 7, 6)


# -- coverage (CONTRACT 9) -----------------------------------------------------------------
AREAS = len(area_list())
DASH = "\N{EN DASH}"  # what the Markdown shows instead of a zero for an unmonitored area


def test_coverage_lists_every_area_and_tells_no_reports_apart(report: dict[str, Any]) -> None:
    rows = {c["area"]: c for c in report["coverage"]}
    assert list(rows) == sorted(a.code for a in area_list())
    assert rows["madaya"] == {
        "area": "madaya", "name": "Madaya", "governorate": "Rural Damascus", "besieged": True,
        "monitored": True, "reporting_orgs": 2, "reports": 9,
        "last_report_at": "2016-03-04T10:00:00Z",
    }  # fmt: skip
    assert rows["raqqa"]["monitored"]  # an exempt violation is a report from the area
    kafrayah = rows["kafrayah"]
    assert (kafrayah["monitored"], kafrayah["reports"], kafrayah["last_report_at"]) == (
        False, 0, None,
    )  # fmt: skip
    monitored = {code for code, c in rows.items() if c["monitored"]}
    assert monitored == {"madaya", "daraya", "fouah", "raqqa"}


def test_coverage_equals_the_coverage_endpoint(api: Api, report: dict[str, Any]) -> None:
    served = api.get("/v1/metrics/coverage", "monitor", week=seed.WEEK).json()["rows"]
    fields = ("area", "reporting_orgs", "reports", "last_report_at", "monitored")
    assert [{k: c[k] for k in fields} for c in report["coverage"]] == served


def test_coverage_recounted_from_the_raw_log_agrees(api: Api, report: dict[str, Any]) -> None:
    """An as-of report counts coverage from the raw log's fold (the seed's log holds every
    canonical report's revisions), not from the stream's canonical reports."""
    recounted = api.get(PATH, "monitor", format="json", as_of="2026-01-01T00:00:00Z").json()
    assert recounted["coverage"] == report["coverage"]
    before = api.get(PATH, "monitor", format="json", as_of="2016-03-10T00:00:00Z").json()
    # by 10 March only v-gos-2 of the week had arrived (the rest came on 20 March)
    monitored = [(c["area"], c["reports"]) for c in before["coverage"] if c["monitored"]]
    assert monitored == [("daraya", 1)]


def test_coverage_in_every_format(api: Api) -> None:
    md = api.get(PATH, "monitor", format="md").text
    assert "## Coverage: who reported from each area" in md
    assert f"4 of {AREAS} areas monitored this week" in md
    coverage_part = md[md.index("## Coverage") :]
    kafrayah = next(line for line in coverage_part.splitlines() if line.startswith("| Kafrayah |"))
    assert "**no reports**" in kafrayah
    assert kafrayah.endswith(f"| {DASH} | {DASH} | never |")

    page = api.get(PATH, "monitor", format="html").text
    assert 'class="unmonitored"' in page
    assert '<tr data-coverage="madaya" class="monitored">' in page
    assert "repeating-linear-gradient" in page  # hatched, as on the dashboard's map

    header, *rows = csv_rows(api.get(PATH, "monitor", format="csv").text)
    records = [dict(zip(header, row, strict=True)) for row in rows]
    coverage = {r["area"]: r for r in records if r["section"] == "coverage"}
    assert len(coverage) == AREAS
    madaya = coverage["madaya"]
    assert (madaya["status"], madaya["reporting_orgs"], madaya["reports"]) == (
        "monitored", "2", "9",
    )  # fmt: skip
    assert (madaya["last_report_at"], madaya["besieged"]) == ("2016-03-04T10:00:00Z", "true")
    assert coverage["kafrayah"]["status"] == "no reports"
    assert coverage["kafrayah"]["last_report_at"] == ""

    hxl_text = api.get(PATH, "monitor", format="hxl").content
    dataset = hxl.data(io.BytesIO(hxl_text), hxl.InputOptions(allow_local=True))
    silent = [
        r.get("#loc+code")
        for r in dataset
        if r.get("#meta+section") == "coverage" and r.get("#status") == "no reports"
    ]
    assert "kafrayah" in silent
    assert "madaya" not in silent
