"""Spreadsheet import on the running ingest service and the real broker (CONTRACT 10): a
file is one atomic batch, one report per row, refused whole with errors by row and column."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest

from schemas.columns import COLUMNS, HXL_TAGS
from services.ingest.sheets import XLSX_MEDIA_TYPE
from tests.support.ingest import Ingest, violation
from tests.support.problems import assert_problem

pytestmark = pytest.mark.integration

FIELDS = list(violation())


def rows(count: int, **fields: Any) -> list[dict[str, Any]]:
    tag = uuid.uuid4().hex[:8]
    return [violation(f"imp-{tag}-{i}", killed=i, **fields) for i in range(count)]


def as_csv(reports: list[dict[str, Any]], hxl: bool = False, delimiter: str = ",") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter)
    writer.writerow([f"Field {name}" if hxl else name for name in FIELDS])
    if hxl:
        writer.writerow([HXL_TAGS[name] for name in FIELDS])
    for report in reports:
        writer.writerow([report.get(name, "") for name in FIELDS])
    return out.getvalue().encode()


def as_xlsx(reports: list[dict[str, Any]]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(FIELDS)
    for report in reports:
        sheet.append([report[name] for name in FIELDS])  # counts as numbers
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def send(
    ingest: Ingest, body: bytes, media: str = "text/csv", key: str = "sarc", **params: Any
) -> httpx.Response:
    return ingest.post(
        "/v1/reports/import", key, content=body, headers={"Content-Type": media}, params=params
    )


def on_topic(ingest: Ingest) -> dict[tuple[str, int], Any]:
    return {(e.report.report_id, e.report.revision): e for e in ingest.on_topic()}


def assert_accepted(answer: Any, reports: list[dict[str, Any]], first_row: int) -> None:
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert [r["report_id"] for r in body["results"]] == [r["report_id"] for r in reports]
    assert [r["row"] for r in body["results"]] == list(range(first_row, first_row + len(reports)))


def test_csv_with_field_names(ingest: Ingest) -> None:
    reports = rows(3)
    answer = send(ingest, as_csv(reports))
    assert_accepted(answer, reports, first_row=2)
    assert answer.json()["accepted"] == 3
    topic = on_topic(ingest)
    for report in reports:
        envelope = topic[(report["report_id"], 1)]
        assert envelope.org == "sarc"
        assert envelope.report.killed == report["killed"]


def test_csv_with_an_hxl_row_and_semicolons(ingest: Ingest) -> None:
    reports = rows(2)
    answer = send(ingest, as_csv(reports, hxl=True, delimiter=";"))
    assert_accepted(answer, reports, first_row=3)
    topic = on_topic(ingest)
    assert all((r["report_id"], 1) in topic for r in reports)


def test_xlsx(ingest: Ingest) -> None:
    reports = rows(4)
    answer = send(ingest, as_xlsx(reports), XLSX_MEDIA_TYPE)
    assert_accepted(answer, reports, first_row=2)
    topic = on_topic(ingest)
    assert [topic[(r["report_id"], 1)].report.killed for r in reports] == [0, 1, 2, 3]


def test_a_bad_row_rejects_the_whole_file_by_row_and_column(ingest: Ingest) -> None:
    reports = rows(4)
    reports[1]["area"] = "atlantis"
    reports[3]["killed"] = "many"
    before = on_topic(ingest)
    problem = assert_problem(send(ingest, as_csv(reports)), 422)
    located = [(e["row"], e["column"], e["field"]) for e in problem["errors"]]
    assert located == [(3, "D", "area"), (5, "H", "killed")]
    assert "atlantis" in problem["errors"][0]["detail"]
    assert "nothing was published" in problem["detail"]
    after = on_topic(ingest)
    assert after.keys() == before.keys()


def test_a_foreign_row_is_a_403_naming_its_row(ingest: Ingest) -> None:
    theirs = rows(1)
    assert send(ingest, as_csv(theirs), key="wfp").status_code == 202
    mine = rows(2)
    problem = assert_problem(send(ingest, as_csv([mine[0], theirs[0], mine[1]])), 403)
    assert [(e["row"], e["report_id"]) for e in problem["errors"]] == [(3, theirs[0]["report_id"])]
    assert (mine[0]["report_id"], 1) not in on_topic(ingest)


def test_importing_the_same_file_again_gives_duplicates_not_doubles(ingest: Ingest) -> None:
    reports = rows(3)
    body = as_xlsx(reports)
    first = send(ingest, body, XLSX_MEDIA_TYPE).json()
    again = send(ingest, body, XLSX_MEDIA_TYPE)
    assert again.status_code == 202, again.text
    assert (first["accepted"], first["duplicates"]) == (3, 0)
    assert (again.json()["accepted"], again.json()["duplicates"]) == (0, 3)
    assert {r["status"] for r in again.json()["results"]} == {"duplicate"}
    on_log = [
        e for e in ingest.on_topic() if e.report.report_id in {r["report_id"] for r in reports}
    ]
    assert len(on_log) == 3
    as_csv_too = send(ingest, as_csv(reports))  # the same rows as CSV are the same reports
    assert as_csv_too.json()["duplicates"] == 3


def test_the_kind_parameter_fills_a_missing_kind_column(ingest: Ingest) -> None:
    tag = uuid.uuid4().hex[:8]
    body = (
        "report_id,occurred_at,area,agency,modality,status,beneficiaries\r\n"
        f"del-{tag},2016-03-01T08:00:00Z,madaya,WFP,convoy,completed,1200\r\n"
    ).encode()
    assert_problem(send(ingest, body), 422)  # no kind: like a JSON report without one
    answer = send(ingest, body, kind="delivery")
    assert answer.status_code == 202, answer.text
    assert on_topic(ingest)[(f"del-{tag}", 1)].report.beneficiaries == 1200


@pytest.mark.parametrize(
    ("media", "body", "status"),
    [
        ("application/json", b'{"reports": []}', 415),
        ("application/vnd.ms-excel", b"\xd0\xcf\x11\xe0", 415),
        ("text/csv", b"kind,report_id\r\nviolation,caf\xe9\r\n", 400),
        (XLSX_MEDIA_TYPE, b"PK\x03\x04garbage", 400),
        ("text/csv", b"", 422),
    ],
)
def test_unusable_files_change_nothing(
    ingest: Ingest, media: str, body: bytes, status: int
) -> None:
    before = len(ingest.on_topic())
    assert_problem(send(ingest, body, media), status)
    assert len(ingest.on_topic()) == before


def test_a_file_over_the_size_limit_is_413(ingest: Ingest) -> None:
    huge = as_csv(rows(1)) + b"x" * (ingest.settings.max_body_bytes + 1)
    assert_problem(send(ingest, huge), 413)


def test_who_may_import(ingest: Ingest) -> None:
    body = as_csv(rows(1))
    assert_problem(send(ingest, body, key="monitor"), 403)
    assert_problem(ingest.post("/v1/reports/import", None, content=body), 401)


@pytest.mark.parametrize("kind", list(COLUMNS))
def test_templates_are_the_schemas_columns(ingest: Ingest, kind: str) -> None:
    answer = ingest.get(f"/v1/reports/import/template?kind={kind}&format=csv", "wfp")
    assert answer.status_code == 200, answer.text
    assert "attachment" in answer.headers["content-disposition"]
    names, tags = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert names == [c.name for c in COLUMNS[kind]]
    assert tags == [c.hxl for c in COLUMNS[kind]]
    book = ingest.get(f"/v1/reports/import/template?kind={kind}&format=xlsx", "wfp")
    assert book.headers["content-type"] == XLSX_MEDIA_TYPE
    sheet = openpyxl.load_workbook(io.BytesIO(book.content))["reports"]
    assert [c.value for c in sheet[2]] == tags


def test_a_filled_in_template_imports(ingest: Ingest) -> None:
    answer = ingest.get("/v1/reports/import/template?kind=access_request&format=xlsx", "sarc")
    book = openpyxl.load_workbook(io.BytesIO(answer.content))
    sheet = book["reports"]
    rid = f"ar-{uuid.uuid4().hex[:8]}"
    values = {"kind": "access_request", "report_id": rid, "occurred_at": "2016-03-02T09:00:00Z",
              "area": "madaya", "status": "submitted", "beneficiaries_planned": 40000}  # fmt: skip
    for index, cell in enumerate(sheet[1], start=1):
        sheet.cell(3, index, values.get(str(cell.value)))
    out = io.BytesIO()
    book.save(out)
    imported = send(ingest, out.getvalue(), XLSX_MEDIA_TYPE)
    assert imported.status_code == 202, imported.text
    assert on_topic(ingest)[(rid, 1)].report.beneficiaries_planned == 40000


def test_a_template_for_no_kind_is_422(ingest: Ingest) -> None:
    assert_problem(ingest.get("/v1/reports/import/template?kind=rumour", "sarc"), 422)
    assert_problem(ingest.get("/v1/reports/import/template?kind=delivery&format=ods", "sarc"), 422)


def truce_import(ingest: Ingest, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", "import", "--url", ingest.url, *args],
        env={
            **{k: v for k, v in os.environ.items() if k != "TRUCE_API_KEY"},
            "TRUCE_HOME": str(ingest.settings.home),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_truce_import_sends_each_file_and_says_what_became_of_it(
    ingest: Ingest, tmp_path: Path
) -> None:
    first, second = tmp_path / "week9.csv", tmp_path / "week10.xlsx"
    first.write_bytes(as_csv(rows(3)))
    second.write_bytes(as_xlsx(rows(2)))
    done = truce_import(ingest, str(first), str(second), "--key", ingest.keys["sarc"])
    assert done.returncode == 0, done.stderr
    assert "week9.csv: 3 accepted, 0 duplicate(s) (rows 2-4)" in done.stdout
    assert "week10.xlsx: 2 accepted" in done.stdout
    again = truce_import(ingest, str(first), "--key", ingest.keys["sarc"])
    assert "0 accepted, 3 duplicate(s)" in again.stdout


def test_truce_import_names_each_bad_row_on_one_line(ingest: Ingest, tmp_path: Path) -> None:
    reports = rows(3)
    reports[2]["category"] = "rumour"
    bad = tmp_path / "bad.csv"
    bad.write_bytes(as_csv(reports))
    done = truce_import(ingest, str(bad), "--key", ingest.keys["sarc"])
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[0].startswith("error: bad.csv: 422 "), done.stderr
    assert lines[1].startswith("  row 4, column G (category): "), done.stderr
    assert lines[-1].startswith("hint: "), done.stderr
    for report in reports:
        assert (report["report_id"], 1) not in on_topic(ingest)
    for args in ((str(bad),), (str(tmp_path / "missing.csv"), "--key", "k")):
        done = truce_import(ingest, *args)  # no key; no such file
        assert done.returncode == 1, done
        errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1, done.stderr
        assert done.stderr.strip().splitlines()[-1].startswith("hint: ")
