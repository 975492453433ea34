"""The canonical-report record: a report's current state with its classification."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from schemas.weeks import iso_week, parse_utc

SEQ_SHIFT = 40
"""A canonical record's version is ``seq << 40 | offset``: a new state of the report wins
over any offset of an older one."""


def canonical(
    report: Mapping[str, Any],
    *,
    version: int,
    org: str,
    received_at: str,
    exempt_reason: str,
    verification: str,
    links: tuple[str, bool, int] = ("", False, 0),
) -> dict[str, Any]:
    """``links``: (the incident a violation belongs to, whether the report is an event,
    how many organisations back it), as the weekly figures read them."""
    incident, event, sources = links
    kind = str(report["kind"])
    retracted = bool(report.get("retracted", False))
    party = report.get("perpetrator") or report.get("party") or ""
    return {
        "report_id": report["report_id"],
        "version": version,
        "kind": kind,
        "revision": int(report.get("revision", 1)),
        "org": org,
        "received_at": received_at,
        "occurred_at": report["occurred_at"],
        "week": iso_week(parse_utc(str(report["occurred_at"]))),
        "area": report.get("area") or "",
        "party": party,
        "target": report.get("target") or "",
        "category": report.get("category") or "",
        "status": report.get("status") or "",
        "subject": report.get("subject") or "",
        "killed": int(report.get("killed") or 0),
        "injured": int(report.get("injured") or 0),
        "beneficiaries": int(report.get("beneficiaries") or 0),
        "retracted": retracted,
        "counts": not retracted,
        "exempt": bool(exempt_reason),
        "exempt_reason": exempt_reason,
        "verification": verification,
        "incident": incident,
        "event": event,
        "sources": sources,
        "report_json": orjson.dumps(report, option=orjson.OPT_SORT_KEYS).decode(),
    }
