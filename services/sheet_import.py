"""`truce import`: send spreadsheets to the ingest API (POST /v1/reports/import, CONTRACT
10) as a partner's client would, one file per request, each accepted whole or not at all."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from core.errors import TruceError

MEDIA_TYPES = {
    ".csv": "text/csv",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
CHUNK = 64 * 1024
ERRORS_SHOWN = 20


class ImportRefused(TruceError):
    """The ingest service refused a file; nothing of it was published."""


def media_type(path: Path) -> str:
    """The file's media type, by its extension; the file must exist."""
    if not path.is_file():
        raise TruceError(f"{path}: no such file", hint="give the path of a .csv or .xlsx file")
    media = MEDIA_TYPES.get(path.suffix.lower())
    if media is None:
        raise TruceError(
            f"{path.name}: only .csv and .xlsx files can be imported",
            hint="save the sheet as 'CSV UTF-8' or as an Excel workbook (.xlsx)",
        )
    return media


def _chunks(data: bytes, on_sent: Callable[[int], None]) -> Iterator[bytes]:
    for start in range(0, len(data), CHUNK):
        chunk = data[start : start + CHUNK]
        yield chunk
        on_sent(len(chunk))


def _where(error: dict[str, Any]) -> str:
    parts = []
    if error.get("row"):
        parts.append(f"row {error['row']}")
    if error.get("column"):
        parts.append(f"column {error['column']}")
    where = ", ".join(parts) or "file"
    if error.get("field"):
        where += f" ({error['field']})"
    return where


def error_lines(problem: dict[str, Any]) -> list[str]:
    """One line per offending cell or row, as a partner fixes them."""
    errors = problem.get("errors") or []
    lines = [
        f"  {_where(e)}: {' '.join(str(e.get('detail') or e.get('msg', '')).split())}"
        for e in errors[:ERRORS_SHOWN]
    ]
    if len(errors) > ERRORS_SHOWN:
        lines.append(f"  ... and {len(errors) - ERRORS_SHOWN} more")
    return lines


def _hint(status: int, problem: dict[str, Any], retry_after: str | None) -> str:
    if status == 401:
        return "pass a partner key with --key or TRUCE_API_KEY"
    if status == 403 and not problem.get("errors"):
        return "importing needs a partner key (or a taskforce key for its own kinds)"
    if status == 503:
        return f"retry in {retry_after or 'a few'} seconds; nothing of the file was accepted"
    if status == 413:
        return "split the file: each is accepted whole or not at all"
    hint = problem.get("hint")
    return str(hint) if hint else "fix those rows and import the file again"


def import_file(
    ingest_url: str,
    key: str,
    path: Path,
    kind: str | None = None,
    on_sent: Callable[[int], None] = lambda _: None,
    timeout_s: float = 120,
) -> dict[str, Any]:
    """The 202 answer for ``path`` (``{"accepted", "duplicates", "results"}``)."""
    media = media_type(path)
    data = path.read_bytes()
    headers = {
        "Authorization": f"Bearer {key}",
        "Content-Type": media,
        "Content-Length": str(len(data)),
    }
    try:
        response = httpx.post(
            f"{ingest_url}/v1/reports/import",
            content=_chunks(data, on_sent),
            headers=headers,
            params={"kind": kind} if kind else None,
            timeout=timeout_s,
        )
    except httpx.HTTPError as exc:
        raise TruceError(
            f"the ingest service at {ingest_url} did not answer: {exc}",
            hint="`truce status` shows whether the stack runs; --url names another server",
        ) from exc
    if response.status_code == 202:
        answer: dict[str, Any] = response.json()
        return answer
    try:
        problem = response.json()
    except ValueError:
        problem = {"detail": response.text[:200]}
    detail = problem.get("detail") or response.reason_phrase
    message = "\n".join([f"{path.name}: {response.status_code} {detail}", *error_lines(problem)])
    hint = _hint(response.status_code, problem, response.headers.get("retry-after"))
    raise ImportRefused(message, hint=hint)
