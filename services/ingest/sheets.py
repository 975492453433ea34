"""Spreadsheets as reports (CONTRACT 10): one report per row of a CSV file or of the first
sheet of an ``.xlsx`` workbook, under a header row of field names or a second header row
of HXL hashtags (:mod:`schemas.columns`).

Cells are only converted to the type their field has (``"3"`` to 3 for a count); every
rule is the report models', so a row is judged exactly as the same report sent as JSON.
The file is hostile until read: its size, its unpacked size, its rows and columns are
bounded, formulas are refused (their cached value is whatever the last program to save
the file computed), and a file that cannot be read is a ``400`` naming why."""

from __future__ import annotations

import codecs
import csv
import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any, Final

from core.errors import InvalidInput
from core.http import Problem
from schemas import KINDS, MAX_BATCH
from schemas.columns import BY_NAME, BY_TAG, CellType, normalise_tag

CSV_MEDIA_TYPES: Final = ("text/csv", "application/csv")
XLSX_MEDIA_TYPE: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_ROWS: Final = MAX_BATCH
"""Reports in one file: a file is as atomic as a batch, and as large."""
MAX_COLUMNS: Final = 64
MAX_SCANNED_ROWS: Final = 20 * MAX_ROWS
"""Rows read at most, empty ones included (a sheet may claim a million empty rows)."""
MAX_UNPACKED_BYTES: Final = 64 * 1024 * 1024
"""The most an ``.xlsx`` may unpack to (a zip bomb unpacks to gigabytes)."""
MAX_ZIP_ENTRIES: Final = 1000
TEMPLATE_HINT: Final = "GET /v1/reports/import/template?kind=... gives the columns"

_INTEGER = re.compile(r"^[+-]?\d{1,20}$")
_BOOLEANS: Final = {"true": True, "false": False, "yes": True, "no": False, "1": True, "0": False}
_LIST_SEPARATORS = re.compile(r"[\s,;]+")
_DELIMITERS: Final = (",", ";", "\t")


@dataclass
class Sheet:
    """The reports of a file, with where each came from."""

    items: list[dict[str, Any]] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    """The sheet row number (1-based, as a spreadsheet shows it) of each item."""
    columns: dict[str, tuple[str, str]] = field(default_factory=dict)
    """(column letter, header text) of each field the file has."""

    def locate(self, error: dict[str, Any]) -> dict[str, Any]:
        """A batch error (``{"index", "loc", "msg", ...}``) with its row, column and field."""
        index = error.get("index")
        loc = error.get("loc") or ()
        name = loc[0] if loc and isinstance(loc[0], str) else None
        letter, header = self.columns.get(name or "", (None, None))
        row = self.rows[index] if isinstance(index, int) and index < len(self.rows) else None
        return {
            **error, "row": row, "column": letter, "header": header, "field": name,
            "detail": error.get("msg", ""),
        }  # fmt: skip


def column_letter(index: int) -> str:
    """``A`` for column 0, ``AA`` for column 26."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _cell_error(
    row: int | None, column: int | None, name: str | None, detail: str
) -> dict[str, Any]:
    letter = None if column is None else column_letter(column)
    return {
        "index": None, "loc": [name] if name else [], "msg": detail,
        "row": row, "column": letter, "field": name, "detail": detail,
    }  # fmt: skip


def _refuse(errors: list[dict[str, Any]], what: str) -> InvalidInput:
    return InvalidInput(f"{what}; nothing was published", errors=errors, hint=TEMPLATE_HINT)


# -- reading the cells ---------------------------------------------------------------------


def _csv_text(raw: bytes) -> str:
    """UTF-8 (a byte-order mark allowed), or UTF-16 with its mark (Excel's "Unicode
    text"); anything else is refused rather than guessed."""
    utf16 = raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    encoding = "utf-16" if utf16 else "utf-8-sig"
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise Problem(
            400,
            f"the file is not {encoding.removesuffix('-sig').upper()} text (byte {exc.start} "
            "cannot be read); save it as 'CSV UTF-8'",
        ) from None
    if "\x00" in text:
        raise Problem(400, "the file holds NUL characters: it is not a CSV text file")
    return text


def _csv_rows(raw: bytes) -> Iterator[list[Any]]:
    text = _csv_text(raw)
    first = text.split("\n", 1)[0]
    delimiter = max(_DELIMITERS, key=first.count)  # Excel writes ';' in many locales
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        yield from reader
    except csv.Error as exc:
        line = reader.line_num
        raise Problem(400, f"the CSV file cannot be read at line {line}: {exc}") from None


def _check_zip(raw: bytes) -> None:
    try:
        entries = zipfile.ZipFile(io.BytesIO(raw)).infolist()
    except (zipfile.BadZipFile, ValueError, OSError):
        raise Problem(400, "the file is not an .xlsx workbook (not a zip archive)") from None
    if len(entries) > MAX_ZIP_ENTRIES:
        raise Problem(413, f"the workbook holds more than {MAX_ZIP_ENTRIES} parts")
    unpacked = sum(entry.file_size for entry in entries)  # zipfile stops at the declared size
    if unpacked > MAX_UNPACKED_BYTES:
        raise Problem(
            413,
            f"the workbook unpacks to {unpacked:,} bytes, more than {MAX_UNPACKED_BYTES:,}; "
            "send fewer rows per file",
        )


def _xlsx_cell(cell: Any) -> Any:
    value = cell.value
    if isinstance(value, datetime | date | time):  # a spreadsheet's times have no offset
        return value.isoformat()
    return value


def _unreadable(exc: Exception) -> Problem:
    """A workbook openpyxl cannot read (defusedxml refuses XML entities and DTDs)."""
    cause = exc.__cause__ or exc.__context__ or exc
    reason = f"{type(cause).__name__}: {str(cause).splitlines()[0][:120] if str(cause) else ''}"
    return Problem(
        400,
        f"the .xlsx workbook cannot be read ({reason.rstrip(': ')}); save it again from a "
        "spreadsheet program, as .xlsx",
    )


def _xlsx_rows(raw: bytes, formulas: list[dict[str, Any]]) -> Iterator[list[Any]]:
    """The first sheet's rows; formula cells are listed in ``formulas`` and read as empty."""
    import openpyxl  # ~0.2 s to import: only when a workbook comes

    _check_zip(raw)
    try:
        book = openpyxl.load_workbook(
            io.BytesIO(raw), read_only=True, data_only=False, keep_links=False
        )
    except Exception as exc:  # any failure to parse a hostile file is a 400
        raise _unreadable(exc) from None
    try:
        sheet = book.worksheets[0]
        rows = sheet.iter_rows(min_row=1, max_col=MAX_COLUMNS + 1)
        for number, row in enumerate(rows, start=1):
            values: list[Any] = []
            for index, cell in enumerate(row):
                if getattr(cell, "data_type", None) == "f":
                    detail = "the cell holds a formula; paste its value instead (Paste Special)"
                    formulas.append(_cell_error(number, index, None, detail))
                    values.append(None)
                else:
                    values.append(_xlsx_cell(cell))
            yield values
    except (Problem, InvalidInput):
        raise
    except Exception as exc:
        raise _unreadable(exc) from None
    finally:
        book.close()


# -- cells to report fields ----------------------------------------------------------------


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def convert(value: Any, kind: CellType) -> Any:
    """The cell as its field's JSON value, when it plainly is one; otherwise as it is, for
    the report models to refuse with their own message. ``None``: an empty cell."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        value = value.strip()
        if kind == "list":
            return [part for part in _LIST_SEPARATORS.split(value) if part]
        if kind == "integer" and _INTEGER.match(value):
            return int(value)
        if kind == "number":
            try:
                return float(value)
            except ValueError:
                return value
        if kind == "boolean":
            return _BOOLEANS.get(value.lower(), value)
        return value
    if isinstance(value, bool):
        return value if kind == "boolean" else _text(value).lower()
    if isinstance(value, int | float):
        if kind == "integer" and float(value).is_integer():
            return int(value)
        if kind == "number":
            return float(value)
        if kind == "boolean":
            return {0.0: False, 1.0: True}.get(float(value), value)
        return _text(value) if kind == "string" else value
    return value


def _is_hashtag_row(cells: list[Any]) -> bool:
    texts = [_text(c) for c in cells if _text(c)]
    return bool(texts) and all(t.startswith("#") for t in texts)


def _header(cells: list[Any], row: int, hxl: bool) -> tuple[dict[int, str], list[dict[str, Any]]]:
    """Each column's field (by index) from the header row ``row``, and its errors."""
    fields: dict[int, str] = {}
    errors: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    if len([c for c in cells if _text(c)]) > MAX_COLUMNS:
        return {}, [_cell_error(row, MAX_COLUMNS, None, f"more than {MAX_COLUMNS} columns")]
    for index, cell in enumerate(cells):
        text = _text(cell)
        if not text:
            continue
        name = BY_TAG.get(normalise_tag(text)) if hxl else text.lower()
        if name is None or name not in BY_NAME:
            what = "hashtag" if hxl else "column"
            detail = f"unknown {what} {text[:80]!r}: it names no report field"
            errors.append(_cell_error(row, index, None, detail))
        elif name in seen:
            detail = f"a second {name!r} column (the first is {column_letter(seen[name])})"
            errors.append(_cell_error(row, index, name, detail))
        else:
            seen[name] = index
            fields[index] = name
    if not fields and not errors:
        errors.append(_cell_error(row, None, None, "the header row is empty"))
    return fields, errors


def check_kind(kind: str) -> str:
    """The ``kind`` query parameter, if it is a kind (else a 422)."""
    if kind not in KINDS:
        raise InvalidInput(
            f"kind {kind[:40]!r} is not one of {', '.join(KINDS)}",
            errors=[{"loc": ["query", "kind"], "msg": f"expected one of {list(KINDS)}"}],
        )
    return kind


def read_sheet(raw: bytes, media_type: str, kind: str | None = None) -> Sheet:
    """The file's reports (``kind`` fills an empty or absent ``kind``); ``400`` when the
    file cannot be read, ``413`` past its bounds, ``422`` naming every bad header or cell."""
    if kind is not None:
        check_kind(kind)
    formulas: list[dict[str, Any]] = []
    rows = _xlsx_rows(raw, formulas) if media_type == XLSX_MEDIA_TYPE else _csv_rows(raw)
    lines: list[tuple[int, list[Any]]] = []
    for number, cells in enumerate(rows, start=1):
        if number > MAX_SCANNED_ROWS:
            raise _too_many()
        if any(_text(c) for c in cells):
            lines.append((number, cells))
        if len(lines) > MAX_ROWS + 2:
            raise _too_many()
    if not lines or lines[0][0] != 1:
        raise _refuse([_cell_error(1, None, None, "row 1 must be the header")], "no header row")
    tags_first = _is_hashtag_row(lines[0][1])  # a hashtag row alone, or under the names
    tags_second = not tags_first and len(lines) > 1 and lines[1][0] == 2
    tags_second = tags_second and _is_hashtag_row(lines[1][1])
    hxl = tags_first or tags_second
    header_row, header = lines[1] if tags_second else lines[0]
    fields, errors = _header(header, header_row, hxl)
    names = lines[0][1]
    sheet = Sheet(
        columns={
            name: (column_letter(i), _text(names[i]) if i < len(names) else "")
            for i, name in fields.items()
        }
    )
    for number, cells in lines[2 if tags_second else 1 :]:
        item: dict[str, Any] = {}
        for index, cell in enumerate(cells):
            name = fields.get(index)
            if name is None:
                labelled = index < len(header) and _text(header[index])  # refused above
                if _text(cell) and not hxl and not labelled:  # HXL: untagged is not data
                    detail = "a value in a column without a header"
                    errors.append(_cell_error(number, index, None, detail))
                continue
            value = convert(cell, BY_NAME[name].type)
            if value is not None:
                item[name] = value
        if kind is not None and "kind" not in item:
            item["kind"] = kind
        sheet.items.append(item)
        sheet.rows.append(number)
    errors.extend(formulas)
    if errors:
        what = f"{len(errors)} header(s) or cell(s) are wrong"
        raise _refuse(sorted(errors, key=_position), what)
    if not sheet.items:
        raise _refuse([_cell_error(header_row + 1, None, None, "no report rows")], "no reports")
    if len(sheet.items) > MAX_ROWS:
        raise _too_many()
    return sheet


def _position(error: dict[str, Any]) -> tuple[int, str]:
    letter = error.get("column") or ""
    return error.get("row") or 0, letter.rjust(3)


def _too_many() -> InvalidInput:
    detail = f"a file holds 1 to {MAX_ROWS} reports (one per row); split it"
    return InvalidInput(
        f"{detail}; nothing was published",
        errors=[_cell_error(None, None, None, detail)],
        hint="every file is accepted whole or not at all; send several files",
    )
