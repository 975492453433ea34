"""Reading spreadsheets into reports (CONTRACT 10), hostile files included: every refusal
is a clear 400, 413 or 422 naming the row and column, before anything is judged."""

from __future__ import annotations

import io
import time
import zipfile
from typing import Any

import hxl
import openpyxl
import pytest

from core.errors import InvalidInput
from core.http import Problem
from schemas import parse_report
from schemas.columns import COLUMNS, HXL_TAGS, normalise_tag
from services.ingest.imports import template_csv, template_xlsx
from services.ingest.sheets import MAX_ROWS, XLSX_MEDIA_TYPE, column_letter, read_sheet

HEADER = "kind,report_id,occurred_at,area,perpetrator,target,category,killed,source,confidence"
ROW = "violation,v-1,2016-02-28T10:15:00+02:00,madaya,gos,civilians,shelling,2,witness,medium"


def xlsx(rows: list[list[Any]], formula: str | None = None) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    if formula:
        sheet[formula] = "=1+1"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def refusal(raw: bytes, media: str = "text/csv") -> list[dict[str, Any]]:
    with pytest.raises(InvalidInput) as caught:
        read_sheet(raw, media)
    return caught.value.errors


def test_every_field_of_every_kind_has_one_valid_hashtag() -> None:
    fields = {column.name for columns in COLUMNS.values() for column in columns}
    assert fields == set(HXL_TAGS)
    assert len({normalise_tag(tag) for tag in HXL_TAGS.values()}) == len(HXL_TAGS)


def test_the_weekly_export_tags_the_same_fields_alike() -> None:
    """The weekly report's HXL CSV and the import read the same tag for the same thing."""
    from services.store.weekly.render import COLUMNS as EXPORTED

    exported = dict(EXPORTED)
    assert exported.pop("party") == HXL_TAGS["perpetrator"]  # a designation's party differs
    shared = {name: tag for name, tag in exported.items() if name in HXL_TAGS}
    assert {"report_id", "area", "occurred_at", "killed", "injured"} <= set(shared)
    assert shared == {name: HXL_TAGS[name] for name in shared}


def test_names_and_typed_cells_become_a_report() -> None:
    sheet = read_sheet(f"{HEADER}\r\n{ROW}\r\n".encode(), "text/csv")
    [item] = sheet.items
    assert item["killed"] == 2
    assert "injured" not in item  # an empty or absent cell takes the field's default
    assert parse_report(item).killed == 2
    assert sheet.rows == [2]
    assert sheet.columns["area"] == ("D", "area")


def test_a_hashtag_row_maps_columns_whatever_their_names() -> None:
    tags = [HXL_TAGS[name] for name in HEADER.split(",")]
    tags[7] = "#affected +num +killed"  # attributes in another order, spaces
    names = [f"Column {i}" for i in range(len(tags))]
    raw = "\ufeff" + ";".join(names) + "\n" + ";".join(tags) + "\n" + ROW.replace(",", ";")
    sheet = read_sheet(raw.encode(), "text/csv")
    assert parse_report(sheet.items[0]).area == "madaya"
    assert sheet.rows == [3]
    assert sheet.columns["killed"] == ("H", "Column 7")


def test_the_templates_are_valid_hxl_and_read_back_as_their_columns() -> None:
    for kind, columns in COLUMNS.items():
        dataset = hxl.data(io.BytesIO(template_csv(kind)), hxl.InputOptions(encoding="utf-8-sig"))
        assert [c.display_tag for c in dataset.columns] == [c.hxl for c in columns]
        book = openpyxl.load_workbook(io.BytesIO(template_xlsx(kind)))
        assert [cell.value for cell in book["reports"][1]] == [c.name for c in columns]
        assert book.sheetnames == ["reports", "columns"]
    with pytest.raises(InvalidInput):  # a template alone holds no report
        read_sheet(template_csv("delivery"), "text/csv")


def test_xlsx_cells_keep_their_types_and_times_need_an_offset() -> None:
    rows = [HEADER.split(","), ROW.split(",")]
    rows[1][7] = 2.0  # Excel's numbers are floats
    sheet = read_sheet(xlsx(rows), XLSX_MEDIA_TYPE)
    assert sheet.items[0]["killed"] == 2
    rows[1][2] = __import__("datetime").datetime(2016, 2, 28, 10, 15)  # a date cell
    [item] = read_sheet(xlsx(rows), XLSX_MEDIA_TYPE).items
    with pytest.raises(ValueError, match="offset"):
        parse_report(item)


def test_unknown_and_repeated_columns_are_named_by_letter() -> None:
    errors = refusal(f"{HEADER},notes,area\r\n{ROW},hello,madaya\r\n".encode())
    assert [(e["row"], e["column"]) for e in errors] == [(1, "K"), (1, "L")]
    assert "notes" in errors[0]["detail"]
    assert errors[1]["field"] == "area"


def test_formula_cells_are_refused() -> None:
    errors = refusal(xlsx([HEADER.split(","), ROW.split(",")], formula="H2"), XLSX_MEDIA_TYPE)
    assert [(e["row"], e["column"]) for e in errors] == [(2, "H")]
    assert "formula" in errors[0]["detail"]


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"kind,report_id\r\nviolation,caf\xe9\r\n", "UTF-8"),  # Latin-1, not UTF-8
        (b"kind,report_id\r\nviolation,\x00\r\n", "NUL"),
        (b'kind,report_id\r\nviolation,"open\r\n', "line"),
    ],
)
def test_unreadable_csv_is_a_400(raw: bytes, words: str) -> None:
    with pytest.raises(Problem) as caught:
        read_sheet(raw, "text/csv")
    assert caught.value.status == 400
    assert words in caught.value.detail


def test_utf16_with_its_mark_is_read() -> None:
    raw = f"{HEADER}\r\n{ROW}\r\n".replace(",", "\t").encode("utf-16")
    assert read_sheet(raw, "text/csv").items[0]["report_id"] == "v-1"


def test_not_a_workbook_is_a_400() -> None:
    for raw in (b"PK\x03\x04 not really", b"hello", zip_of({"a.txt": b"x"})):
        with pytest.raises(Problem) as caught:
            read_sheet(raw, XLSX_MEDIA_TYPE)
        assert caught.value.status == 400


def zip_of(parts: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    return out.getvalue()


def test_a_zip_bomb_is_a_413_before_it_is_unpacked() -> None:
    book = zipfile.ZipFile(io.BytesIO(xlsx([["kind"]])))
    parts = {name: book.read(name) for name in book.namelist()}
    parts["xl/worksheets/sheet1.xml"] += b" " * (200 * 1024 * 1024)  # 200 MiB of blanks
    bomb = zip_of(parts)
    assert len(bomb) < 1024 * 1024
    started = time.monotonic()
    with pytest.raises(Problem) as caught:
        read_sheet(bomb, XLSX_MEDIA_TYPE)
    assert caught.value.status == 413
    assert time.monotonic() - started < 2


def test_xml_entities_are_refused_unexpanded() -> None:
    """A billion laughs: 10^9 'lol's from a few hundred bytes of DTD (defusedxml)."""
    book = zipfile.ZipFile(io.BytesIO(xlsx([["kind"]])))
    parts = {name: book.read(name) for name in book.namelist()}
    entities = '<!ENTITY l0 "lol">' + "".join(
        f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10)
    )
    sheet = parts["xl/worksheets/sheet1.xml"].decode().split("?>", 1)[-1]
    sheet = sheet.replace("<t>kind</t>", "<t>&l9;</t>")
    assert "&l9;" in sheet
    parts["xl/worksheets/sheet1.xml"] = f"<!DOCTYPE w [{entities}]>{sheet}".encode()
    started = time.monotonic()
    with pytest.raises(Problem) as caught:
        read_sheet(zip_of(parts), XLSX_MEDIA_TYPE)
    assert caught.value.status == 400
    assert "EntitiesForbidden" in caught.value.detail
    assert time.monotonic() - started < 2


def test_more_rows_than_a_batch_are_refused_whole() -> None:
    raw = HEADER + "\r\n" + "\r\n".join(ROW.replace("v-1", f"v-{i}") for i in range(MAX_ROWS + 1))
    errors = refusal(raw.encode())
    assert str(MAX_ROWS) in errors[0]["detail"]
    assert len(read_sheet(raw.rsplit("\r\n", 1)[0].encode(), "text/csv").items) == MAX_ROWS


def test_a_sheet_of_empty_rows_is_not_read_forever() -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADER.split(","))
    sheet["A1000000"] = "violation"  # a million rows, all but two empty
    out = io.BytesIO()
    book.save(out)
    started = time.monotonic()
    errors = refusal(out.getvalue(), XLSX_MEDIA_TYPE)
    assert "split" in errors[0]["detail"]
    assert time.monotonic() - started < 10


def test_column_letters() -> None:
    assert [column_letter(i) for i in (0, 25, 26, 51, 52, 701, 702)] == [
        "A", "Z", "AA", "AZ", "BA", "ZZ", "AAA",
    ]  # fmt: skip


def test_the_demo_scenario_as_csv_sheets_is_the_same_reports() -> None:
    """Every submission of the demo, written as the sheet its organisation would import,
    reads back as the very reports (same content hash) the JSON batch carries."""
    from schemas import content_hash
    from services.demo.replay import sheet
    from services.demo.scenario import build_scenario

    scenario = build_scenario(0.05)
    kinds = set()
    for submission in scenario.submissions:
        read = read_sheet(sheet(submission.reports), "text/csv")
        assert len(read.items) == len(submission.reports)
        for item, report in zip(read.items, submission.reports, strict=True):
            assert content_hash(parse_report(item)) == content_hash(parse_report(report))
            kinds.add(report["kind"])
    assert kinds >= {"violation", "delivery", "access_request", "verification", "incident"}
