"""Text cells a spreadsheet would evaluate, neutralised (OWASP's CSV-injection rule).

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read as
a formula by Excel, LibreOffice and Google Sheets (``-2-3`` becomes ``-5``;
``=HYPERLINK(...)`` runs). Such a cell is written with a leading apostrophe, which every
spreadsheet shows as text and drops. Every CSV or HXL we write goes through here; numbers
we produce ourselves (a negative change) are not text and pass unchanged."""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(text: str) -> str:
    """``text`` as a spreadsheet shows it literally."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text
